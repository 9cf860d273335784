--- What the pages and the API can change: cancel a run, rerun it (from its failure), start or stop a
-- trigger. Reruns go through the same factory:rerun as `lufa rerun` and execute in this process, on its
-- loop; a run executed elsewhere is cancelled as `lufa runs cancel` does, by a request in the store.
-- @module lufa.serve.actions
local lufa = require "lufa"
local runs = require "lufa.runs"
local rerun = require "lufa.runs.rerun"

local M = {}

--- Cancels run `id`. @return a sentence saying what happened, or nil and why not
function M.cancel(app, id, reason)
  reason = reason or "cancelled from lufa serve"
  local handle = app.handles[id]
  if handle then
    handle:cancel(reason)
    return "cancelling the run"
  end
  app.store:reap()
  local record, info = app.store:get_pipeline_run(id)
  if not record then return nil, "no such run" end
  if record.status == "Interrupted" then
    -- nobody executes it: the store alone makes it final (as lufa runs cancel does)
    record.status, record.lastUpdated = "Cancelled", runs.iso8601()
    record.message = "Pipeline run cancelled (it was interrupted)"
    app.store:put_pipeline_run(record)
    app.store:flush()
    return "the run was interrupted; it is now recorded Cancelled"
  end
  if record.status ~= "InProgress" and record.status ~= "Canceling" and record.status ~= "Queued" then
    return nil, string.format("the run has ended (%s): nothing to cancel", record.status)
  end
  app.store:request_cancel(id, reason)
  app.store:flush()
  return "asked " .. require("lufa.runs.owner").describe(info.owner) .. " to cancel the run"
end

--- Starts a rerun of `id` (`from_failure`: what succeeded keeps its output; `parameters`: secret ones again).
-- @return the new run id, or nil and why not
function M.rerun(app, id, opts)
  local record = app.store:get_pipeline_run(id)
  if not record then return nil, "no such run" end
  local factory, err = rerun.factory_of(app.store, id)
  if not factory then return nil, err end
  local handle, rerr = factory:rerun(id, {from_failure = opts.from_failure, parameters = opts.parameters})
  if not handle then return nil, tostring(rerr) end
  app.store:flush()   -- the new run is on disk before its page is shown
  local new_id = handle.runId
  app.handles[new_id] = handle
  lufa.spawn(function()
    handle:wait()
    app.handles[new_id] = nil
    app.store:flush()
  end)
  if app.log then app.log(string.format("rerun %s of run %s (%s)", new_id, id, opts.from_failure and "from failure" or "all")) end
  return new_id
end

--- Sets a trigger's runtime state (what `lufa trigger start|stop` keeps in the store).
function M.trigger(app, scope, name, action)
  if type(scope) ~= "string" or scope == "" or type(name) ~= "string" or name == "" then
    return nil, "scope and name are needed"
  end
  if action ~= "start" and action ~= "stop" then return nil, "start or stop" end
  app.store:set_trigger_state(scope, name, {runtime_state = action == "start" and "Started" or "Stopped"})
  app.store:flush()
  return string.format("trigger %s %s", name, action == "start" and "started" or "stopped")
end

return M
