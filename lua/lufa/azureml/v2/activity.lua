--- lufa.azureml.v2.activity: what the Azure ML v2 activities share: the workspace of the activity's
-- `AzureMLService` linked service, the checks their validate functions make, and ADF-style failures that
-- carry the service's code and message.
-- @module lufa.azureml.v2.activity
local L = require "lufa.pipeline.lenient"
local jobs = require "lufa.azureml.v2.jobs"

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

return M
