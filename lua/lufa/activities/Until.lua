--- Until: runs `activities`, then evaluates `expression`; repeats until it is true or
-- `timeout` (d.hh:mm:ss, default 7 days) passes. Inner failures do not stop the loop.
local json = require "lufa.json"
local branch = require "lufa.pipeline.branch"
local L = require "lufa.pipeline.lenient"

local M = {}

function M.scopes(activity)
  return {branch.scope(activity, "activities")}
end

function M.validate(activity, report)
  local tp = activity.typeProperties
  report:require(tp, "expression")
  report:require(tp, "activities")
  local t = L.get(tp, "timeout")
  if type(t) == "string" and t:sub(1, 1) ~= "@" then
    local _, why = L.timespan(t)
    if why then report:error(".typeProperties.timeout", "bad timeout: %s", why) end
  end
end

function M.input(ctx, activity)
  return branch.eval_except(ctx, activity, {"activities", "expression"})
end

function M.run(ctx, activity)
  local timeout = 7 * 86400
  local t = ctx:property("timeout")
  if t ~= nil then
    local secs, why = L.timespan(t)
    if not secs then ctx:fail("InvalidTimeout", "Until timeout: " .. why) end
    timeout = secs
  end
  local list = L.get(activity.typeProperties, "activities")
  local group = ctx:new_group()
  local timed_out = false
  local watchdog = ctx:spawn(function()
    ctx:sleep(timeout)
    timed_out = true
    group:cancel("timeout")
  end)
  local iterations, failed = 0, nil
  while true do
    iterations = iterations + 1
    local result = ctx:run_activities(list, {group = group})
    if result.status == "Failed" then failed = failed or result end
    if timed_out then break end
    local done = ctx:eval(L.get(activity.typeProperties, "expression"))
    if branch.boolean(ctx, done, "Until expression") then break end
    if timed_out then break end
  end
  watchdog:cancel("finished")
  if timed_out then
    ctx:fail("UntilTimedOut", string.format("Until '%s' timed out after %s seconds (%d iterations)",
      ctx.name, tostring(timeout), iterations))
  end
  if failed then branch.check(ctx, failed) end
  return json.object{iterations = iterations}
end

return M
