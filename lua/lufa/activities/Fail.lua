--- Fail: always fails with the given `message` and `errorCode`.
local json = require "lufa.json"
local E = require "lufa.error"
local L = require "lufa.pipeline.lenient"

local M = {}

function M.validate(activity, report)
  if L.get(activity.typeProperties, "message") == nil then
    report:error(".typeProperties", "Fail requires \"message\"")
  end
  if L.get(activity.typeProperties, "errorCode") == nil then
    report:error(".typeProperties", "Fail requires \"errorCode\"")
  end
end

-- Evaluation problems become ADF's documented fallback messages instead of a crash.
function M.input(ctx, activity)
  local out = json.object{}
  for _, key in ipairs{"message", "errorCode"} do
    local ok, v = pcall(ctx.eval, ctx, L.get(activity.typeProperties, key))
    out[key] = ok and v or nil
  end
  return out
end

function M.run(ctx)
  local message = ctx:property("message")
  local code = ctx:property("errorCode")
  if message == nil then
    message = "Fail message wasn't provided"
  elseif type(message) ~= "string" or message:match("^%s*$") then
    message = string.format("%s fail message parameter couldn't be interpreted as a string", ctx.name)
  end
  if type(code) == "number" then code = tostring(code) end
  if type(code) ~= "string" or code:match("^%s*$") then code = "ErrorCodeNotString" end
  error(E.new{kind = "pipeline", code = "fail", errorCode = code, message = message,
    failureType = "UserError"}, 0)
end

return M
