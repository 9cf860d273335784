--- AzureMLInvokeBatchEndpoint (a lufa extension): starts a job on an Azure ML v2 batch endpoint of the
-- activity's `AzureMLService` workspace and waits for it.
-- typeProperties: `endpointName`; `inputs` and `outputs` (name → `{"type": "UriFile"|"UriFolder"|"Literal",
-- "uri": …, "value": …}`; URIs as `azureml://datastores/…/paths/…`, data-asset ids or https storage URLs);
-- optional `deploymentName` (else the endpoint's default deployment).
-- The invoke POST lets the service choose the job's name, so it is repeated only on answers that prove
-- nothing was made (429, 503); the name is journaled as soon as it is known, and a cancelled activity
-- cancels the job. Output: `{jobName, status, endpointName, deploymentName}`.
-- @module lufa.activities.AzureMLInvokeBatchEndpoint
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"
local support = require "lufa.azureml.v2.activity"

local M = {}

function M.validate(activity, report)
  support.check(activity, report, { "endpointName", "inputs" })
  support.check_object(activity, report, "inputs")
  support.check_object(activity, report, "outputs")
end

local function data_map(ctx, key)
  local out = {}
  for name, v in pairs(ctx:property(key) or {}) do
    if not L.is_object(v) then ctx:fail(support.ERROR_CODE, string.format("typeProperties.%s.%s must be an object", key, name)) end
    out[name] = { type = L.get(v, "type"), uri = L.get(v, "uri"), value = L.get(v, "value"), mode = L.get(v, "mode") }
  end
  return out
end

function M.run(ctx, activity)
  local ws = support.workspace(ctx, activity)
  local endpoint = ctx:property("endpointName")
  local deployment = ctx:property("deploymentName")
  local final, handle = support.run_batch_job(ctx, ws, endpoint, { inputs = data_map(ctx, "inputs"),
    outputs = data_map(ctx, "outputs"), deployment = deployment }, "batch job")
  return json.object{ jobName = handle.name, status = final.properties.status, endpointName = endpoint,
    deploymentName = deployment or json.null }
end

return M
