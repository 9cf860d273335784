--- AzureMLUpdateResource: points an Azure ML scoring web service at a newly trained model.
-- typeProperties: `trainedModelName` (the trained-model module / asset name), `trainedModelLinkedServiceName`
-- (the storage linked service holding the model), `trainedModelFilePath` ("container/path/model.ilearner").
-- The activity's AzureML linked service carries `updateResourceEndpoint`:
-- * a classic endpoint URL: PATCH `Resources[{Name, Location{BaseLocation, RelativeLocation, SasBlobToken}}]`
--   with a read-only SAS for exactly that blob, valid for a short time;
-- * an Azure Resource Manager web-service URL: with a service-principal token, GET the definition, replace the
--   location of the Resource asset named `trainedModelName`, PATCH the whole definition back and follow the
--   long-running operation until it Succeeded or Failed.
-- The model blob must exist before the call. The ARM update's progress is journaled in the run store, so a
-- run resumed after lufa stopped follows the update it had sent instead of sending another.
-- With an `AzureMLService` linked service (Azure ML v2) it registers the model version and rolls it out on
-- an online endpoint instead: lufa.azureml.v2.bridge.
-- @module lufa.activities.AzureMLUpdateResource
local L = require "lufa.pipeline.lenient"
local retrain = require "lufa.retrain"
local endpoint = require "lufa.linked.endpoint"

local M = {}

function M.validate(activity, report)
  if activity.linkedServiceName == nil then
    report:error("", "AzureMLUpdateResource requires \"linkedServiceName\" (an AzureML linked service with " ..
      "updateResourceEndpoint)")
  end
  local tp = activity.typeProperties
  for _, k in ipairs{ "trainedModelName", "trainedModelLinkedServiceName", "trainedModelFilePath" } do
    if L.get(tp, k) == nil then report:error(".typeProperties", "AzureMLUpdateResource requires \"%s\"", k) end
  end
  local path = L.get(tp, "trainedModelFilePath")
  if type(path) == "string" and not endpoint.is_expression(path) and not path:lower():match("%.ilearner$") then
    report:warning(".typeProperties.trainedModelFilePath", "'%s' does not name an .ilearner file", path)
  end
end

--- The calls a run would make (`lufa run --dry-run`).
function M.dry_run(activity, env)
  local props = env.linked(activity.linkedServiceName) or {}
  local url = tostring(env.value(L.get(props, "updateResourceEndpoint")) or "(updateResourceEndpoint)")
  local model = string.format("%s in storage %s", env.property(activity, "trainedModelFilePath"),
    tostring(require("lufa.linked").reference_name(L.get(activity.typeProperties, "trainedModelLinkedServiceName"))))
  local name = env.property(activity, "trainedModelName")
  if require("lufa.azureml").is_arm_endpoint(url) then
    return {string.format("GET  %s   the web service definition (Azure Resource Manager)", url),
      string.format("PATCH %s   asset '%s' now at %s (read-only SAS, 24 h)", url, name, model),
      "GET  the Azure-AsyncOperation URL until the provisioning Succeeded or Failed"}
  end
  return {string.format("PATCH %s   resource '%s' now at %s (read-only SAS, 15 min)", url, name, model)}
end

function M.run(ctx, activity)
  local ml = ctx:linked_service(activity.linkedServiceName)
  -- an Azure ML v2 workspace: a model version and a safe rollout (docs/azureml-v2.md)
  if type(ml.workspace) == "function" then return require("lufa.azureml.v2.bridge").update_resource(ctx, activity) end
  if ml.ml_endpoint == nil then
    ctx:fail("4110", string.format("linked service '%s' is not an AzureML linked service", tostring(ml.name)))
  end
  local storage = ctx:linked_service(ctx:property("trainedModelLinkedServiceName"))
  if type(storage.blob) ~= "function" then
    ctx:fail("4110", string.format("trainedModelLinkedServiceName '%s' is not an Azure Storage linked service",
      tostring(storage.name)))
  end
  local out, err = retrain.deploy{ ml = ml, storage = storage, name = ctx:property("trainedModelName"),
    path = ctx:property("trainedModelFilePath"), log = function(...) ctx:log("info", ...) end,
    sleep = function(s) ctx:sleep(s) end,
    journal = function(v) ctx:journal("arm.update", v) end, journaled = ctx:journaled("arm.update") }
  if not out then ctx:fail("4110", err.message) end
  return out
end

return M
