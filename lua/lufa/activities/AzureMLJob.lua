--- AzureMLJob (a lufa extension): runs an Azure ML v2 job (command or pipeline) in the workspace of the
-- activity's `AzureMLService` linked service and waits for it.
-- typeProperties: `job` (the job's `properties` exactly as the REST API takes them: `jobType`, `command`,
-- `environmentId`, `computeId`, `inputs`, `outputs`, …), optional `jobName` (default: derived from the run,
-- the activity and the attempt, so this attempt always names the same job).
--
-- The job name is journaled before the job is submitted; the submit is a PUT of that name, so an answer lost
-- in transit is resolved by reading the job, and `lufa resume` reconnects to it: one attempt never makes two
-- jobs. A timeout or cancellation of the activity cancels the job. Status changes go to the live view.
-- Output: `{jobName, status, outputs = {name → azureml://jobs/{job}/outputs/{name}}, properties, studioUrl}`.
-- @module lufa.activities.AzureMLJob
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"
local jobs = require "lufa.azureml.v2.jobs"
local support = require "lufa.azureml.v2.activity"

local M = {}

function M.validate(activity, report)
  support.check(activity, report, { "job" })
  support.check_object(activity, report, "job")
  local job = L.get(activity.typeProperties, "job")
  if L.is_object(job) then
    local t = L.get(job, "jobType")
    if t == nil then report:error(".typeProperties.job", "the job needs \"jobType\" (\"Command\" or \"Pipeline\")")
    elseif type(t) == "string" and not t:find("@", 1, true) and t ~= "Command" and t ~= "Pipeline" then
      report:error(".typeProperties.job.jobType", "jobType must be \"Command\" or \"Pipeline\", got '%s'", t)
    end
  end
end

function M.run(ctx, activity)
  local ws = support.workspace(ctx, activity)
  local props = ctx:property("job")
  if not L.is_object(props) then ctx:fail(support.ERROR_CODE, "typeProperties.job must evaluate to an object") end
  local name, final = support.run_job(ctx, ws, props, ctx:property("jobName"))
  local p = final.properties
  local outputs = json.object{}
  for out in pairs(L.is_object(p.outputs) and p.outputs or {}) do outputs[out] = jobs.output_uri(name, out) end
  local studio = L.is_object(p.services) and L.is_object(p.services.Studio) and p.services.Studio.endpoint or json.null
  return json.object{ jobName = name, status = p.status, outputs = outputs,
    properties = L.is_object(p.properties) and p.properties or json.object{}, studioUrl = studio }
end

return M
