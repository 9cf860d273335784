--- Wait: succeeds after `waitTimeInSeconds` (integer, numeric string or expression).
local L = require "lufa.pipeline.lenient"

local M = {}

function M.validate(activity, report)
  local v = report:require(activity.typeProperties, "waitTimeInSeconds")
  if v ~= nil and not (type(v) == "string" and v:find("@", 1, true)) and not L.is_object(v) then
    local n = L.number(v)
    if not n or n < 0 then
      report:error(".typeProperties.waitTimeInSeconds", "waitTimeInSeconds must be a number of seconds (0 or more)")
    end
  end
end

function M.run(ctx)
  local n = L.number(ctx:property("waitTimeInSeconds"))
  if not n or n < 0 then
    ctx:fail("InvalidWaitTime", "waitTimeInSeconds must evaluate to a number of seconds (0 or more)")
  end
  ctx:sleep(n)
  return {}
end

return M
