--- AppendVariable: appends `value` to an Array variable.
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"

local M = {}

-- Only the run's variables change: a rerun runs it again rather than reusing its recorded output.
M.replay = true

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
