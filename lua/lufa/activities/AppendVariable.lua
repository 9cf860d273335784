--- AppendVariable: appends `value` to an Array variable.
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"

local M = {}

function M.validate(activity, report)
  report:require(activity.typeProperties, "variableName")
  report:require(activity.typeProperties, "value")
end

function M.run(ctx)
  local name = ctx:property("variableName")
  local value = ctx:property("value")
  if value == nil then value = json.null end
  local list = ctx:append_variable(name, value)
  return {name = name, value = value, count = #list}
end

return M
