--- AzureMLExecutePipeline: ADF's activity for Azure ML pipelines, with its `AzureMLService` linked service,
-- run against an Azure ML v2 workspace.
-- In Azure ML v1 the activity submits a published pipeline or a pipeline endpoint. In v2, pipeline endpoints
-- became batch endpoints with pipeline-component deployments, so lufa maps the activity's JSON, as ADF
-- writes it, onto a batch-endpoint invoke:
-- * `mlPipelineEndpointId` names the batch endpoint (its name, or its ARM id `…/batchEndpoints/{name}`);
--   `version` names the deployment (else the endpoint's default);
-- * `mlPipelineParameters` (name → value) become `Literal` inputs;
-- * `dataPathAssignments` (name → `{DataStoreName, RelativePath}`) become `UriFolder` inputs
--   `azureml://datastores/{DataStoreName}/paths/{RelativePath}`;
-- * `mlPipelineId` (a v1 published pipeline) has no v2 counterpart and is refused with that reason;
--   `experimentName`, `mlParentRunId` and `continueOnStepFailure` have no place in a batch invoke: they are
--   logged and not sent (docs/azureml-v2.md lists these limits).
-- The job is followed to its end and cancelled when the activity is; the job name is journaled once known.
-- Output: `{runId, jobName, status, endpointName, deploymentName}`.
-- @module lufa.activities.AzureMLExecutePipeline
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"
local support = require "lufa.azureml.v2.activity"

local M = {}

function M.validate(activity, report)
  support.check(activity, report)
  local tp = activity.typeProperties
  if L.get(tp, "mlPipelineEndpointId") == nil then
    if L.get(tp, "mlPipelineId") ~= nil then
      report:error(".typeProperties.mlPipelineId", "mlPipelineId names an Azure ML v1 published pipeline, which " ..
        "has no v2 counterpart; give mlPipelineEndpointId: the batch endpoint with the pipeline-component deployment")
    else
      report:error(".typeProperties", "AzureMLExecutePipeline requires \"mlPipelineEndpointId\" (the batch endpoint)")
    end
  end
  support.check_object(activity, report, "mlPipelineParameters")
  support.check_object(activity, report, "dataPathAssignments")
  for _, k in ipairs{ "mlParentRunId", "continueOnStepFailure" } do
    local v = L.get(tp, k)
    if v ~= nil and v ~= json.null and v ~= false then
      report:warning(".typeProperties." .. k, "%s has no counterpart in an Azure ML v2 batch invoke and is not sent", k)
    end
  end
end

function M.run(ctx, activity)
  local ws = support.workspace(ctx, activity)
  local id = ctx:property("mlPipelineEndpointId")
  if type(id) ~= "string" or id == "" then
    ctx:fail(support.ERROR_CODE, "mlPipelineEndpointId must name the batch endpoint that runs the pipeline")
  end
  local endpoint = id:match("/batchEndpoints/([^/]+)/?$") or id
  local deployment = ctx:property("version")
  if deployment ~= nil then deployment = tostring(deployment) end
  local inputs = {}
  for name, v in pairs(ctx:property("mlPipelineParameters") or {}) do
    inputs[name] = { type = "Literal", value = type(v) == "table" and json.encode(v) or tostring(v) }
  end
  for name, a in pairs(ctx:property("dataPathAssignments") or {}) do
    local ds, rel = L.get(a, "DataStoreName"), L.get(a, "RelativePath")
    if type(ds) ~= "string" or type(rel) ~= "string" then
      ctx:fail(support.ERROR_CODE, string.format("dataPathAssignments.%s needs DataStoreName and RelativePath", name))
    end
    inputs[name] = { type = "UriFolder", uri = string.format("azureml://datastores/%s/paths/%s", ds, (rel:gsub("^/+", ""))) }
  end
  for _, k in ipairs{ "experimentName", "mlParentRunId", "continueOnStepFailure" } do
    local v = ctx:property(k)
    if v ~= nil and v ~= json.null then ctx:log("info", "%s = %s is not sent: a v2 batch invoke has no such field", k, tostring(v)) end
  end

  local final, handle = support.run_batch_job(ctx, ws, endpoint, { inputs = inputs, deployment = deployment },
    "pipeline job")
  return json.object{ runId = handle.name, jobName = handle.name, status = final.properties.status,
    endpointName = endpoint, deploymentName = deployment or json.null }
end

return M
