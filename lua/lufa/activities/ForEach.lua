--- ForEach: runs `activities` once per element of `items` (`@item()`), in parallel up to
-- `batchCount` (default 20, max 50) or one at a time when `isSequential`. An inner failure
-- does not stop the other iterations; the ForEach then fails.
local json = require "lufa.json"
local E = require "lufa.error"
local branch = require "lufa.pipeline.branch"
local L = require "lufa.pipeline.lenient"

local M = {}

--- The most elements `items` may hold (ADF's limit).
M.MAX_ITEMS = 100000

function M.scopes(activity)
  return {branch.scope(activity, "activities")}
end

function M.validate(activity, report)
  local tp = activity.typeProperties
  report:require(tp, "items")
  report:require(tp, "activities")
  local seq = L.get(tp, "isSequential")
  if seq ~= nil and L.bool(seq) == nil then
    report:error(".typeProperties.isSequential", "isSequential must be true or false")
  end
  local bc = L.get(tp, "batchCount")
  if bc ~= nil then
    local n = L.int(bc)
    if not n or n < 1 then
      report:error(".typeProperties.batchCount", "batchCount must be a whole number from 1 to 50")
    elseif n > 50 then
      report:warning(".typeProperties.batchCount", "batchCount %d is above ADF's maximum of 50", n)
    end
  end
end

function M.input(ctx, activity)
  return branch.eval_except(ctx, activity, {"activities"})
end

function M.run(ctx, activity)
  local items = ctx:property("items")
  if not L.is_array(items) then
    ctx:fail("InvalidForEachItems", string.format("ForEach items must evaluate to an array, got %s",
      json.type(items) or type(items)))
  end
  local list = L.get(activity.typeProperties, "activities")
  local sequential = L.bool(ctx:property("isSequential")) == true
  local batch = sequential and 1 or (L.int(ctx:property("batchCount")) or 20)
  local n = #items
  if n > M.MAX_ITEMS then
    ctx:fail("InvalidForEachItems", string.format("ForEach items hold %d elements; ADF allows at most %d",
      n, M.MAX_ITEMS))
  end
  local next_index = 0
  local failures = {}
  local function worker()
    while true do
      next_index = next_index + 1
      local i = next_index
      if i > n then return end
      local result = ctx:run_activities(list, {item = items[i], has_item = true, index = i})
      if result.status ~= "Succeeded" then failures[#failures + 1] = {index = i, result = result} end
    end
  end
  local workers = {}
  for w = 1, math.min(batch, n) do workers[w] = ctx:spawn(worker) end
  for _, w in ipairs(workers) do
    local ok, err = pcall(w.wait, w)
    if not ok then error(err, 0) end
  end
  if #failures > 0 then
    table.sort(failures, function(a, b) return a.index < b.index end)
    local first = failures[1]
    local inner = first.result.failed
    error(E.new{kind = "pipeline", code = "inner_failed",
      errorCode = inner and inner.error and inner.error.errorCode or "InnerActivityFailed",
      failureType = "UserError",
      message = string.format("Activity failed because an inner activity failed (%d of %d iterations failed; " ..
        "first: item %d, activity '%s': %s)", #failures, n, first.index - 1, inner and inner.name or "?",
        inner and inner.error and inner.error.message or first.result.status)}, 0)
  end
  return {}
end

return M
