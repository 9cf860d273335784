--- IfCondition: runs `ifTrueActivities` or `ifFalseActivities` by a boolean expression.
local branch = require "lufa.pipeline.branch"
local L = require "lufa.pipeline.lenient"

local M = {}
local LISTS = {"ifTrueActivities", "ifFalseActivities"}

function M.scopes(activity)
  return {branch.scope(activity, LISTS[1]), branch.scope(activity, LISTS[2])}
end

function M.validate(activity, report)
  report:require(activity.typeProperties, "expression")
end

function M.input(ctx, activity)
  return branch.eval_except(ctx, activity, LISTS)
end

function M.run(ctx, activity)
  local value = branch.boolean(ctx, ctx:property("expression"), "IfCondition expression")
  local list = L.get(activity.typeProperties, value and LISTS[1] or LISTS[2])
  if list then
    local result = ctx:run_activities(list)
    branch.check(ctx, result)
  end
  return {}
end

return M
