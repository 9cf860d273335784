--- ADF's status rules: dependency conditions and the leaf rule for a scope's outcome.
-- @module lufa.pipeline.status
local M = {}

--- The status an activity presents to its dependants (Inactive counts as onInactiveMarkAs;
-- Cancelled counts as Failed).
function M.effective(result)
  local s = result.status
  if s == "Inactive" then return result.inactive_status or "Succeeded" end
  if s == "Cancelled" or s == "TimedOut" then return "Failed" end
  return s
end

--- Whether a final status satisfies one dependency's condition set
-- (conditions within one dependency are OR; Completed = Succeeded or Failed).
function M.satisfies(status, conditions)
  if conditions[status] then return true end
  if conditions.Completed and (status == "Succeeded" or status == "Failed") then return true end
  return false
end

--- Whether an activity may run: every dependency (AND) satisfied.
-- @param deps list of `{target = spec, conditions = set}`
-- @param results map spec → result with `.status`
function M.ready_to_run(deps, results)
  for _, d in ipairs(deps) do
    local r = results[d.target]
    if not r or not M.satisfies(M.effective(r), d.conditions) then return false end
  end
  return true
end

--- The outcome of a scope by ADF's leaf rule (adf-pipelines.md §2.4).
-- Leaves are activities nobody in the scope depends on; a Skipped leaf is replaced by the
-- activities it depends on, recursively; the scope succeeded iff every node reached did.
-- @param scope compiled scope (`list` of specs with `deps`)
-- @param results map spec → result
-- @return "Succeeded" or "Failed", and the first failing spec (or nil)
function M.leaf_rule(scope, results)
  local depended = {}
  for _, spec in ipairs(scope.list) do
    for _, d in ipairs(spec.deps) do
      if d.target then depended[d.target] = true end
    end
  end
  local seen = {}
  local failing
  local function evaluate(spec)
    if seen[spec] then return end
    seen[spec] = true
    local r = results[spec]
    local s = r and M.effective(r) or "Skipped"
    if s == "Skipped" then
      for _, d in ipairs(spec.deps) do
        if d.target then evaluate(d.target) end
      end
    elseif s ~= "Succeeded" then
      failing = failing or spec
    end
  end
  for _, spec in ipairs(scope.list) do
    if not depended[spec] then evaluate(spec) end
  end
  return failing and "Failed" or "Succeeded", failing
end

return M
