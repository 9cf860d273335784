--- Rerunning and resuming recorded pipeline runs.
-- A rerun is a new run in the same run group with the same parameters (ADF's "Rerun"); from the failure
-- (or from a named activity) the top-level activities that succeeded and do not depend on what runs again
-- keep their recorded outputs and are not executed. A resume continues an interrupted run under its own id:
-- what succeeded stands, and the activities that were executing reconnect to the remote work they
-- journaled (lufa.pipeline.context `ctx:journaled`).
-- @module lufa.runs.rerun
local E = require "lufa.error"
local secret = require "lufa.secret"

local M = {}

local MARKER = tostring(secret("x"))

local function rerun_error(code, fmt, ...)
  return E.new{kind = "runs", code = code, message = string.format(fmt, ...)}
end

--- The top-level activities whose recorded output stands when `plan` runs again.
-- @param records the earlier run's activity records (creation order)
-- @param mode `{from_failure = true}`, `{from = "ActivityName"}` or `{resume = true}`
-- @return name (lower case) → Succeeded record; or nil and a lufa.error (unknown activity)
function M.reuse_set(plan, records, mode)
  local top, last = {}, {}
  for _, spec in ipairs(plan.scope.list) do top[spec.name:lower()] = spec end
  for _, r in ipairs(records) do
    local key = type(r.activityName) == "string" and r.activityName:lower()
    if key and top[key] and r.iteration == nil then last[key] = r end
  end
  local again = {}
  if mode.from then
    local spec = top[mode.from:lower()]
    if not spec then
      local names = {}
      for _, s in ipairs(plan.scope.list) do names[#names + 1] = s.name end
      return nil, rerun_error("unknown_activity", "pipeline '%s' has no top-level activity '%s'; it has: %s",
        plan.name, mode.from, table.concat(names, ", "))
    end
    again[spec] = true
  else
    for key, spec in pairs(top) do
      if not last[key] or last[key].status ~= "Succeeded" then again[spec] = true end
    end
  end
  -- what depends on an activity that runs again runs again too
  local changed = true
  while changed do
    changed = false
    for _, spec in ipairs(plan.scope.list) do
      if not again[spec] then
        for _, d in ipairs(spec.deps) do
          if d.target and again[d.target] then
            again[spec], changed = true, true
            break
          end
        end
      end
    end
  end
  local reuse = {}
  for key, spec in pairs(top) do
    if not again[spec] and last[key] and last[key].status == "Succeeded" then reuse[key] = last[key] end
  end
  return reuse
end

--- The names of the secret parameters a rerun of a run with this origin must be given again (sorted).
function M.secret_parameters(origin)
  local names = {}
  for k, v in pairs(type(origin) == "table" and type(origin.parameters) == "table" and origin.parameters or {}) do
    if v == MARKER then names[#names + 1] = k end
  end
  table.sort(names)
  return names
end

--- The parameters to run with again: those the earlier run was given, secrets given again by the caller.
-- @return name → value, or nil and a lufa.error naming the secret parameters that must be given again
function M.parameters(origin, given)
  local out, missing = {}, {}
  for k, v in pairs(type(origin) == "table" and type(origin.parameters) == "table" and origin.parameters or {}) do
    if v == MARKER then missing[k] = true else out[k] = v end
  end
  for k, v in pairs(given or {}) do
    out[k] = v
    missing[k] = nil
  end
  local names = {}
  for k in pairs(missing) do names[#names + 1] = k end
  if #names > 0 then
    table.sort(names)
    return nil, rerun_error("secret_parameters", "the run was given secret parameters, which the store does not " ..
      "keep: give them again (--param %s=...)", table.concat(names, "=... --param "))
  end
  return out
end

local function load_prior(store, run_id)
  local prior, info = store:get_pipeline_run(run_id)
  if not prior then return nil, rerun_error("not_found", "no run '%s' in the store", tostring(run_id)) end
  return prior, info
end

local function plan_of(factory, prior)
  local plan = factory:plan(prior.pipelineName)
  if not plan then
    return nil, rerun_error("no_pipeline", "run %s is of pipeline '%s', which the factory no longer has",
      prior.runId, tostring(prior.pipelineName))
  end
  return plan
end

--- Starts a rerun of `run_id` on `factory`.
-- @param opts `from_failure`, `from` (activity name), `parameters` (secrets again, or changes), `on_event`
-- @return run handle, or nil and a lufa.error
function M.rerun(factory, store, run_id, opts)
  opts = opts or {}
  local prior, info = load_prior(store, run_id)
  if not prior then return nil, info end
  if prior.status == "InProgress" or prior.status == "Canceling" then
    return nil, rerun_error("running", "run %s is still %s; wait for it, or cancel it first (lufa runs cancel %s)",
      prior.runId, prior.status, prior.runId)
  end
  local plan, perr = plan_of(factory, prior)
  if not plan then return nil, perr end
  local params, err = M.parameters(info.origin, opts.parameters)
  if not params then return nil, err end
  local reuse
  if opts.from_failure or opts.from then
    reuse, err = M.reuse_set(plan, store:activity_runs(prior.runId),
      {from_failure = opts.from_failure, from = opts.from})
    if not reuse then return nil, err end
  end
  local origin = info.origin or {}
  origin.rerunOf = prior.runId
  local handle, serr = factory:start(prior.pipelineName, {parameters = params, store = store,
    group_id = prior.runGroupId or prior.runId, reuse = reuse, origin = origin, on_event = opts.on_event})
  if not handle then return nil, serr end
  prior.isLatest = false
  store:put_pipeline_run(prior)
  return handle
end

--- Continues an interrupted run under its own id.
-- @param opts `parameters` (secrets again), `on_event`
-- @return run handle, or nil and a lufa.error (still running elsewhere, ended, unknown)
function M.resume(factory, store, run_id, opts)
  opts = opts or {}
  store:reap()
  local prior, info = load_prior(store, run_id)
  if not prior then return nil, info end
  if prior.status == "InProgress" or prior.status == "Canceling" then
    return nil, rerun_error("running", "run %s is still executing in %s; stop it (lufa runs cancel %s) or wait",
      prior.runId, require("lufa.runs.owner").describe(info.owner), prior.runId)
  elseif prior.status ~= "Interrupted" then
    return nil, rerun_error("ended", "run %s has ended (%s): nothing to resume; 'lufa rerun %s --from-failure' " ..
      "runs what did not succeed again", prior.runId, tostring(prior.status), prior.runId)
  end
  local plan, perr = plan_of(factory, prior)
  if not plan then return nil, perr end
  local params, err = M.parameters(info.origin, opts.parameters)
  if not params then return nil, err end
  local records = store:activity_runs(prior.runId)
  local reuse = M.reuse_set(plan, records, {resume = true})
  local resumed_from = {}
  for _, r in ipairs(records) do
    local key = type(r.activityName) == "string" and r.activityName:lower()
    if key and r.iteration == nil and not reuse[key] and (r.status == "Interrupted" or r.status == "InProgress") then
      resumed_from[key] = r.activityRunId
    end
  end
  local handle, serr = factory:start(prior.pipelineName, {parameters = params, store = store, resume = prior,
    reuse = reuse, resumed_from = resumed_from, origin = info.origin, on_event = opts.on_event})
  if not handle then return nil, serr end
  -- a run stopped while it was being cancelled finishes its cancellation: remote work is reconnected, then
  -- cancelled through the activities' own cleanups
  if info.cancel then handle:cancel(info.cancel) end
  return handle
end

--- The factory a recorded run was started from, loaded as it was then (its folder, override and activity
-- folders), recording into `store`; what `lufa rerun`, `lufa resume` and `lufa serve` run again.
-- @param opts `override`, `activities` (a list): given ones replace the recorded ones; `how` ("rerun" or
--   "resume", for the message when a script ran the run)
-- @return factory, nil, its warnings; or nil and a message (a script ran the run: one line; the factory no
--   longer loads or validates: its problems, one a line)
function M.factory_of(store, run_id, opts)
  opts = opts or {}
  local pipeline = require "lufa.pipeline"
  local _, info = store:get_pipeline_run(run_id)
  local origin = info and info.origin or {}
  if not origin.factory then
    return nil, string.format("run %s was not started from a factory folder (a script ran it); %s it from " ..
      "that script with factory:%s(run_id)", run_id, opts.how or "rerun", opts.how or "rerun")
  end
  local activities = opts.activities
  if (not activities or #activities == 0) and type(origin.activities) == "table" then activities = origin.activities end
  local factory, problems = pipeline.load_factory(origin.factory, {override = opts.override or origin.override,
    activity_folders = activities, store = store})
  if not factory then return nil, pipeline.format_problems(problems) end
  problems = factory:validate()
  for _, p in ipairs(problems) do
    if p.trigger and p.severity == "error" then p.severity = "warning" end  -- a broken trigger does not stop a rerun
  end
  if pipeline.has_errors(problems) then return nil, pipeline.format_problems(problems) end
  return factory, nil, problems
end

return M
