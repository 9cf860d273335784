--- lufa.azureml.v2.bridge: the ADF article's classic activities run against an Azure ML v2 workspace.
-- When the linked service of an `AzureMLBatchExecution` or `AzureMLUpdateResource` activity is an
-- `AzureMLService` (an override changes its type; the pipeline JSON stays as published), the activity maps
-- itself onto v2, with what v2 needs and the classic JSON lacks in `typeProperties.azureMLv2`:
--
-- AzureMLBatchExecution → a command job. `webServiceInputs` become `uri_file` inputs and
-- `webServiceOutputs` `uri_file` outputs of the same names, at `azureml://datastores/{datastore}/paths/{path}`
-- (the FilePath's container is the datastore, unless `azureMLv2.datastores` maps it to another name);
-- `globalParameters` become literal inputs (names in lower case, other characters as "_"). `azureMLv2`:
-- `command`, `environmentId`, `computeId`, optional `codeId`, `experimentName`, `datastores`.
-- Output in the classic shape: `{jobId, statusCode = "Finished", results = {name → {BaseLocation,
-- RelativeLocation}}, ...}` plus `jobName`.
--
-- AzureMLUpdateResource → a model version from `trainedModelFilePath` (same datastore mapping) and a safe
-- rollout of it on an online endpoint. `azureMLv2`: `onlineEndpoint`, `modelName` (default: the
-- trainedModelName in the service's alphabet), `modelType`, `deployment` (the deployment's other properties,
-- e.g. `instanceType`), `sampleRequest`, `expect`, `trafficSteps`, `probesPerStep`, `maxErrorRate`,
-- `deletePrevious`. Output: `{endpointKind = "azureml-v2", trainedModelName, modelName, version, assetId,
-- deployment, rollout}`.
-- @module lufa.azureml.v2.bridge
local lufa = require "lufa"
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"
local jobs = require "lufa.azureml.v2.jobs"
local models = require "lufa.azureml.v2.models"
local rollout = require "lufa.azureml.v2.rollout"
local support = require "lufa.azureml.v2.activity"

local M = {}

local function config(ctx, what, required)
  local cfg = ctx:property("azureMLv2")
  if not L.is_object(cfg) then
    ctx:fail(support.ERROR_CODE, string.format("%s on an AzureMLService workspace needs typeProperties.azureMLv2 " ..
      "(%s; see docs/azureml-v2.md)", what, table.concat(required, ", ")))
  end
  for _, k in ipairs(required) do
    if L.get(cfg, k) == nil then ctx:fail(support.ERROR_CODE, string.format("typeProperties.azureMLv2 needs \"%s\"", k)) end
  end
  return cfg
end

--- "container/dir/file" → the datastore URI of that file, the container and the path in it.
function M.datastore_uri(file_path, datastores)
  local container, path = tostring(file_path):gsub("^/+", ""):match("^([^/]+)/(.+)$")
  if not container then return nil end
  local ds = L.is_object(datastores) and L.get(datastores, container) or container
  return string.format("azureml://datastores/%s/paths/%s", ds, path), container, path
end

--- A global parameter's name as a job input name.
function M.input_name(name)
  local n = tostring(name):lower():gsub("[^%w_]+", "_"):gsub("^_+", ""):gsub("_+$", "")
  return n ~= "" and n or "parameter"
end

local function files(ctx, map, cfg, discriminator)
  local out = json.object{}
  for name, file in pairs(map or {}) do
    local path = L.get(file, "filePath")
    local uri = M.datastore_uri(path, L.get(cfg, "datastores"))
    if not uri then ctx:fail(support.ERROR_CODE, string.format("web-service file '%s': FilePath '%s' must be " ..
      "container/path/file", name, tostring(path))) end
    out[name] = json.object{ [discriminator] = "uri_file", uri = uri }
  end
  return out
end

--- AzureMLBatchExecution on an AzureMLService workspace.
function M.batch_execution(ctx, activity)
  local ws = support.workspace(ctx, activity)
  local cfg = config(ctx, "AzureMLBatchExecution", { "command", "environmentId", "computeId" })
  local tp = ctx.input or json.object{}
  local inputs = files(ctx, L.get(tp, "webServiceInputs"), cfg, "jobInputType")
  for name, v in pairs(L.get(tp, "globalParameters") or {}) do
    inputs[M.input_name(name)] = json.object{ jobInputType = "literal", value = tostring(v) }
  end
  local outputs_map = L.get(tp, "webServiceOutputs")
  local props = json.object{ jobType = "Command", command = L.get(cfg, "command"),
    environmentId = L.get(cfg, "environmentId"), computeId = L.get(cfg, "computeId"), codeId = L.get(cfg, "codeId"),
    experimentName = L.get(cfg, "experimentName"), displayName = ctx.name, inputs = inputs,
    outputs = files(ctx, outputs_map, cfg, "jobOutputType") }
  local started = lufa.now()
  local name, final = support.run_job(ctx, ws, props)
  local results = json.object{}
  for out, file in pairs(outputs_map or {}) do
    local storage = ctx:linked_service(L.get(file, "linkedServiceName"))
    local base = type(storage.base_location) == "function" and storage.base_location() or json.null
    results[out] = json.object{ BaseLocation = base, RelativeLocation = L.get(file, "filePath") }
  end
  return json.object{ jobId = name, jobName = name, statusCode = "Finished", results = results,
    details = json.null, executionDuration = math.floor((lufa.now() - started) * 1000 + 0.5) / 1000,
    properties = L.is_object(final.properties.properties) and final.properties.properties or json.object{} }
end

--- AzureMLUpdateResource on an AzureMLService workspace.
function M.update_resource(ctx, activity)
  local ws = support.workspace(ctx, activity)
  local cfg = config(ctx, "AzureMLUpdateResource", { "onlineEndpoint", "sampleRequest" })
  local trained = ctx:property("trainedModelName")
  local uri = M.datastore_uri(ctx:property("trainedModelFilePath"), L.get(cfg, "datastores"))
  if not uri then ctx:fail(support.ERROR_CODE, "trainedModelFilePath must be container/path/model.ilearner") end
  local model_name = L.get(cfg, "modelName") or jobs.name_for(trained)
  local journaled = ctx:journaled("v2.model")
  local version = journaled and journaled.version
  if version == nil then
    local err
    version, err = models.next_version(ws, model_name)
    if not version then support.fail(ctx, err) end
  end
  ctx:journal("v2.model", { version = version })
  local v, err = models.register(ws, model_name, { model_uri = uri, model_type = L.get(cfg, "modelType"),
    version = version, description = "trained model '" .. tostring(trained) .. "', run " .. tostring(ctx.run_id),
    tags = { ["lufa.run"] = ctx.run_id } })
  if not v then support.fail(ctx, err) end
  ctx:log("info", "registered %s as model %s version %s", uri, model_name, version)

  local deployment = json.object{ model = v.id }
  for k, x in pairs(L.get(cfg, "deployment") or {}) do if k ~= "model" then deployment[k] = x end end
  local steps
  for i, p in ipairs(L.get(cfg, "trafficSteps") or {}) do
    steps = steps or {}
    steps[i] = math.tointeger(L.number(p))
  end
  local expect = L.get(cfg, "expect")
  local dname = jobs.name_for(model_name, "v" .. version):sub(1, 32)
  local report, rerr = rollout.run(ws, { endpoint = L.get(cfg, "onlineEndpoint"), deployment = dname,
    properties = deployment, request = L.get(cfg, "sampleRequest"), steps = steps,
    expect = expect and { equals = L.get(expect, "equals"), contains = L.get(expect, "contains"),
      min = L.number(L.get(expect, "min")), max = L.number(L.get(expect, "max")) } or nil,
    probes = L.int(L.get(cfg, "probesPerStep")), max_error_rate = L.number(L.get(cfg, "maxErrorRate")),
    delete_previous = L.bool(L.get(cfg, "deletePrevious")), log = function(...) ctx:log("info", ...) end,
    journal = function(x) ctx:journal("v2.rollout", x) end, journaled = ctx:journaled("v2.rollout") })
  if not report then
    local evidence = rerr.report and rerr.report.failure and json.encode(rerr.report.failure) or nil
    ctx:fail(support.ERROR_CODE, rerr.message .. (evidence and (". Evidence: " .. evidence) or ""))
  end
  return json.object{ endpointKind = "azureml-v2", trainedModelName = trained, modelName = model_name,
    version = v.name, assetId = v.id, deployment = dname, rollout = json.object(report) }
end

return M
