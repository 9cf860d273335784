--- Cancellation groups: the tasks of one pipeline run, one activity or one container
-- branch. Cancelling a group cancels its tasks and every subgroup; draining a group
-- waits until its supervisors (tasks that record results and are never cancelled) end.
-- @module lufa.pipeline.group
local lufa = require "lufa"

local Group = {}
Group.__index = Group

local M = {}

--- A new group, a child of `parent` (nil for a run's root group).
function M.new(parent)
  local g = setmetatable({parent = parent, children = {}, tasks = {}, supervisors = {}}, Group)
  if parent then
    parent.children[g] = true
    if parent.cancelled then g.cancelled = parent.cancelled end
  end
  return g
end

--- Spawn a cancellable task in this group (activity attempts, helpers, timers).
function Group:spawn(fn, ...)
  local tasks = self.tasks
  local task
  task = lufa.spawn(function(...)
    local results = table.pack(pcall(fn, ...))
    tasks[task] = nil
    if not results[1] then error(results[2], 0) end
    return table.unpack(results, 2, results.n)
  end, ...)
  tasks[task] = true
  if self.cancelled then task:cancel(self.cancelled) end
  return task
end

--- Spawn a supervisor: a task that cancellation does not interrupt; `drain` waits for it.
function Group:supervise(fn, ...)
  local supervisors = self.supervisors
  local task
  task = lufa.spawn(function(...)
    local results = table.pack(pcall(fn, ...))
    supervisors[task] = nil
    if not results[1] then error(results[2], 0) end
    return table.unpack(results, 2, results.n)
  end, ...)
  supervisors[task] = true
  return task
end

--- Cancel every task in this group and its subgroups (idempotent).
-- @param reason a short string recorded as the cause ("cancelled", "timeout", …)
function Group:cancel(reason)
  if self.cancelled then return end
  self.cancelled = reason or "cancelled"
  for task in pairs(self.tasks) do
    task:cancel(self.cancelled)
  end
  for child in pairs(self.children) do
    child:cancel(self.cancelled)
  end
end

--- Wait until every supervisor in this group and its subgroups has ended.
function Group:drain()
  for child in pairs(self.children) do child:drain() end
  while true do
    local task = next(self.supervisors)
    if not task then break end
    pcall(task.wait, task)
    self.supervisors[task] = nil
  end
end

--- Detach this group from its parent (once its work is over), so groups do not pile up.
function Group:close()
  if self.parent then self.parent.children[self] = nil end
end

return M
