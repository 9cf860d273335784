--- Switch: runs the case whose `value` equals the `on` expression (exact, case-sensitive
-- string match), else `defaultActivities`.
local json = require "lufa.json"
local branch = require "lufa.pipeline.branch"
local L = require "lufa.pipeline.lenient"

local M = {}

function M.scopes(activity)
  local out = {}
  for i, case in L.items(L.get(activity.typeProperties, "cases")) do
    local list, key = L.lookup(case, "activities")
    if list ~= nil then
      out[#out + 1] = {path = string.format(".typeProperties.cases[%d].%s", i - 1, key), activities = list}
    end
  end
  out[#out + 1] = branch.scope(activity, "defaultActivities")
  return out
end

function M.validate(activity, report)
  report:require(activity.typeProperties, "on")
  local cases = L.get(activity.typeProperties, "cases")
  if cases ~= nil and not L.is_array(cases) then
    report:error(".typeProperties.cases", "cases must be an array of {value, activities}")
  end
  local seen = {}
  for i, case in L.items(cases) do
    local v = L.get(case, "value")
    if type(v) ~= "string" then
      report:error(string.format(".typeProperties.cases[%d].value", i - 1), "a case needs a string \"value\"")
    elseif seen[v] then
      report:error(string.format(".typeProperties.cases[%d].value", i - 1), "duplicate case value '%s'", v)
    else
      seen[v] = true
    end
  end
end

function M.input(ctx, activity)
  return ctx:eval(json.object{on = L.get(activity.typeProperties, "on")})
end

local function text(v)
  if type(v) == "string" then return v end
  if v == true then return "True" elseif v == false then return "False" end
  if type(v) == "number" then return tostring(v) end
  return nil
end

function M.run(ctx, activity)
  local on = text(ctx:property("on"))
  if on == nil then ctx:fail("InvalidExpressionResult", "Switch 'on' must evaluate to a string") end
  local list = L.get(activity.typeProperties, "defaultActivities")
  for _, case in L.items(L.get(activity.typeProperties, "cases")) do
    if L.get(case, "value") == on then
      list = L.get(case, "activities")
      break
    end
  end
  if list then branch.check(ctx, ctx:run_activities(list)) end
  return {}
end

return M
