--- lufa.azureml.v2.activity: what the Azure ML v2 activities share: the workspace of the activity's
-- `AzureMLService` linked service, the checks their validate functions make, and ADF-style failures that
-- carry the service's code and message.
-- @module lufa.azureml.v2.activity
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"
local jobs = require "lufa.azureml.v2.jobs"
local batch = require "lufa.azureml.v2.batch"

local M = {}

--- The ADF error code of Azure ML activity failures.
M.ERROR_CODE = "4101"

--- For validate(): the activity names an AzureMLService linked service, and `required` keys are present.
function M.check(activity, report, required)
  if activity.linkedServiceName == nil then
    report:error("", "%s requires \"linkedServiceName\" (an AzureMLService linked service)", activity.type)
  end
  for _, k in ipairs(required or {}) do
    if L.get(activity.typeProperties, k) == nil then
      report:error(".typeProperties", "%s requires \"%s\"", activity.type, k)
    end
  end
end

--- For validate(): `key` of typeProperties, when given literally, is an object.
function M.check_object(activity, report, key)
  local v = L.get(activity.typeProperties, key)
  if v ~= nil and type(v) ~= "string" and not L.is_object(v) then
    report:error(".typeProperties." .. key, "%s must be an object", key)
  end
end

--- The workspace client of the activity's linked service (sleeping through the activity, so that
-- cancellation interrupts every wait).
function M.workspace(ctx, activity)
  local ml = ctx:linked_service(activity.linkedServiceName)
  if type(ml.workspace) ~= "function" then
    ctx:fail(M.ERROR_CODE, string.format("linked service '%s' is not an AzureMLService linked service",
      tostring(ml.name)))
  end
  return ml.workspace{ sleep = function(s) ctx:sleep(s) end }, ml
end

--- Fails the activity with the error's message (the service's code and message are in it).
function M.fail(ctx, err, prefix)
  ctx:fail(M.ERROR_CODE, (prefix and (prefix .. ": ") or "") .. tostring(err and err.message or err))
end

--- The job name this activity attempt uses: the given one, else derived from run, activity (and its
-- ForEach iteration) and attempt, so a repeated submit of this attempt names the same job.
function M.job_name(ctx, given)
  if type(given) == "string" and given ~= "" then return given end
  local it = ctx.frame and ctx.frame.iteration
  if it then return jobs.name_for(ctx.name, "i" .. it, ctx.run_id, "a" .. tostring(ctx.attempt or 0)) end
  return jobs.name_for(ctx.name, ctx.run_id, "a" .. tostring(ctx.attempt or 0))
end

--- Runs the job `props` (a job's REST `properties`) for this activity attempt and waits for it: the name is
-- journaled before the PUT, a lost answer is resolved by reading the job, a resumed attempt reconnects to the
-- journaled job, and a cancelled activity cancels it. Adds the tags `lufa.run` and `lufa.activity`.
-- @return the job name and the final job (the activity fails otherwise)
function M.run_job(ctx, ws, props, given_name)
  local tags = json.object{}
  for k, v in pairs(L.is_object(props.tags) and props.tags or {}) do tags[k] = v end
  tags["lufa.run"], tags["lufa.activity"] = ctx.run_id, ctx.name
  props.tags = tags

  local journaled = ctx:journaled("v2.job")
  local name
  if journaled and type(journaled.jobName) == "string" then
    name = journaled.jobName
    local job, err = jobs.get(ws, name)
    if not job then
      if err.status ~= 404 then M.fail(ctx, err) end
      -- journaled but never created: the PUT did not arrive; making it now is still the one job
      job, err = jobs.submit(ws, name, props)
      if not job then M.fail(ctx, err) end
    end
    ctx:log("info", "reconnected to job %s (%s)", name, tostring(job.properties and job.properties.status))
  else
    name = M.job_name(ctx, given_name)
    -- on disk before the PUT: whatever happens to its answer, lufa knows which job to look for
    ctx:journal("v2.job", { jobName = name })
    local job, lost = jobs.submit(ws, name, props)
    if not job then M.fail(ctx, lost) end
    if lost then ctx:log("warning", "the answer to submitting job %s was lost; the job exists and is followed", name) end
    ctx:log("info", "submitted job %s", name)
  end

  local ended = false
  ctx:defer(function()
    if ended then return end
    local ok, cerr = jobs.cancel(ws, name)
    if ok then ctx:log("info", "cancelled job %s", name)
    else ctx:log("warning", "could not cancel job %s: %s", name, tostring(cerr)) end
  end)
  local final, werr = jobs.wait(ws, name, {
    on_status = function(status) ctx:log("info", "job %s: %s", name, status) end,
  })
  if not final then
    ended = werr.status_code ~= nil
    M.fail(ctx, werr)
  end
  ended = true
  return name, final
end

--- Invokes a batch endpoint (or reconnects to the job a resumed attempt journaled) and follows the job to
-- its end; a cancelled activity cancels it. `o` as for lufa.azureml.v2.batch.invoke; `what` names the job
-- in logs ("batch job", "pipeline job").
-- @return the final job and the handle (the activity fails otherwise)
function M.run_batch_job(ctx, ws, endpoint, o, what)
  local handle
  local journaled = ctx:journaled("v2.batch")
  if journaled and type(journaled.jobName) == "string" then
    handle = { name = journaled.jobName, endpoint = endpoint, scoring_uri = journaled.scoringUri }
    ctx:log("info", "reconnected to %s %s", what, handle.name)
  else
    local err
    handle, err = batch.invoke(ws, endpoint, o)
    if not handle then M.fail(ctx, err) end
    -- the service chose the name: journaled as soon as it is known
    ctx:journal("v2.batch", { jobName = handle.name, scoringUri = handle.scoring_uri })
    ctx:log("info", "started %s %s on batch endpoint %s%s", what, handle.name, endpoint,
      o.deployment and ("/" .. o.deployment) or "")
  end
  local ended = false
  ctx:defer(function()
    if ended then return end
    local ok, cerr = jobs.cancel(ws, handle.name)
    if ok then ctx:log("info", "cancelled %s %s", what, handle.name)
    else ctx:log("warning", "could not cancel %s %s: %s", what, handle.name, tostring(cerr)) end
  end)
  local final, werr = batch.wait(ws, handle, {
    on_status = function(status) ctx:log("info", "%s %s: %s", what, handle.name, status) end })
  if not final then
    ended = werr.status_code ~= nil
    M.fail(ctx, werr)
  end
  ended = true
  return final, handle
end

return M
