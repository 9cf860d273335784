--- Helpers shared by container activities (IfCondition, Switch, ForEach, Until).
-- @module lufa.pipeline.branch
local json = require "lufa.json"
local E = require "lufa.error"
local L = require "lufa.pipeline.lenient"

local M = {}

--- Evaluate an activity's typeProperties except the listed keys (inner activity lists),
-- which are left out of the result.
function M.eval_except(ctx, activity, keys)
  local skip = {}
  for _, k in ipairs(keys) do skip[k:lower()] = true end
  local partial = json.object{}
  for k, v in pairs(activity.typeProperties) do
    if not skip[k:lower()] then partial[k] = v end
  end
  return ctx:eval(partial)
end

--- Raise the container's failure for a failed branch result (`ctx:run_activities` answer).
function M.check(ctx, result)
  if result.status == "Failed" then
    local inner = result.failed
    local msg = inner and inner.error and inner.error.message or "an inner activity failed"
    error(E.new{kind = "pipeline", code = "inner_failed", errorCode = inner and inner.error and inner.error.errorCode or "InnerActivityFailed",
      failureType = "UserError",
      message = string.format("Activity failed because an inner activity failed; inner activity '%s': %s",
        inner and inner.name or "?", msg)}, 0)
  elseif result.status == "Cancelled" then
    error(E.new{kind = "pipeline", code = "cancelled", message = "inner activities were cancelled"}, 0)
  end
end

--- A required boolean from an evaluated expression (no string coercion, as ADF).
function M.boolean(ctx, value, what)
  if type(value) ~= "boolean" then
    ctx:fail("InvalidExpressionResult", string.format("%s must evaluate to a boolean, got %s",
      what, json.type(value) or type(value)))
  end
  return value
end

--- A scope description for the validator: inner list at `typeProperties.<key>`.
function M.scope(activity, key)
  local list, actual = L.lookup(activity.typeProperties, key)
  if list == nil then return nil end
  return {path = ".typeProperties." .. (actual or key), key = actual or key, activities = list}
end

return M
