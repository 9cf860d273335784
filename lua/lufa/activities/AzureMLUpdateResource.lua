--- AzureMLUpdateResource: points an Azure ML scoring web service at a newly trained model.
-- typeProperties: `trainedModelName` (the trained-model module / asset name), `trainedModelLinkedServiceName`
-- (the storage linked service holding the model), `trainedModelFilePath` ("container/path/model.ilearner").
-- The activity's AzureML linked service carries `updateResourceEndpoint`:
-- * a classic endpoint URL: PATCH `Resources[{Name, Location{BaseLocation, RelativeLocation, SasBlobToken}}]`
--   with a read-only SAS for exactly that blob, valid for a short time;
-- * an Azure Resource Manager web-service URL: with a service-principal token, GET the definition, replace the
--   location of the Resource asset named `trainedModelName`, PATCH the whole definition back and follow the
--   long-running operation until it Succeeded or Failed.
-- The model blob must exist before the call.
-- @module lufa.activities.AzureMLUpdateResource
local json = require "lufa.json"
local secret = require "lufa.secret"
local L = require "lufa.pipeline.lenient"
local azureml = require "lufa.azureml"
local endpoint = require "lufa.linked.endpoint"

local M = {}

--- How long the SAS handed to the service stays valid: the classic service reads the model during the call;
-- an ARM definition keeps the URL, and the service reads it while provisioning.
M.CLASSIC_SAS_SECONDS = 15 * 60
M.ARM_SAS_SECONDS = 24 * 3600

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

local function split_path(path)
  local container, name = path:gsub("^/+", ""):match("^([^/]+)/(.+)$")
  return container, name
end

--- A read-only SAS query string ("?sv=...") for exactly one blob, as a secret.
local function read_sas(blob, seconds)
  local url = assert(blob:sas{ permissions = "r", expiry = seconds, start = -300 })
  local token = secret.expose(url):match("%?(.+)$")
  return secret("?" .. token)
end

function M.run(ctx, activity)
  local ml = ctx:linked_service(activity.linkedServiceName)
  if ml.ml_endpoint == nil then
    ctx:fail("4110", string.format("linked service '%s' is not an AzureML linked service", tostring(ml.name)))
  end
  if not ml.update_endpoint then
    ctx:fail("4110", string.format("linked service '%s' has no updateResourceEndpoint; AzureMLUpdateResource " ..
      "needs the scoring web service's update endpoint", ml.name))
  end
  local name = ctx:property("trainedModelName")
  local path = ctx:property("trainedModelFilePath")
  local storage = ctx:linked_service(ctx:property("trainedModelLinkedServiceName"))
  if type(storage.blob) ~= "function" then
    ctx:fail("4110", string.format("trainedModelLinkedServiceName '%s' is not an Azure Storage linked service",
      tostring(storage.name)))
  end
  local container, blob_name = split_path(tostring(path))
  if not container then
    ctx:fail("4110", string.format("trainedModelFilePath '%s' must be container/path/model.ilearner", tostring(path)))
  end
  local blob = storage.blob():container(container):blob(blob_name)
  local exists, err = blob:exists()
  if exists == nil then
    ctx:fail("4110", string.format("cannot check the trained model '%s' in linked service '%s': %s", path,
      storage.name, tostring(err)))
  elseif not exists then
    ctx:fail("4110", string.format("the trained model '%s' does not exist in linked service '%s'; the training " ..
      "activity must write it there first", path, storage.name))
  end
  local base = storage.base_location()
  local relative = container .. "/" .. blob_name
  if not ml.is_arm then
    ctx:log("info", "updating classic endpoint %s to %s%s", ml.update_endpoint:match("^[^?]*"), base, relative)
    local res, uerr = azureml.update_classic{ endpoint = ml.update_endpoint, api_key = ml.api_key, name = name,
      base_location = base, relative_location = relative, sas = read_sas(blob, M.CLASSIC_SAS_SECONDS) }
    if not res then ctx:fail("4110", uerr.message) end
    return json.object{ endpointKind = "classic", trainedModelName = name,
      location = json.object{ BaseLocation = base, RelativeLocation = relative }, requestId = res.request_id }
  end
  ctx:log("info", "updating web service %s to %s%s", ml.update_endpoint:match("^[^?]*"), base, relative)
  local uri = base .. relative .. read_sas(blob, M.ARM_SAS_SECONDS)
  local def, uerr = azureml.update_arm{ endpoint = ml.update_endpoint, name = name, uri = uri,
    authorization = function() return ml.authorization() end, sleep = function(s) ctx:sleep(s) end }
  if not def then ctx:fail("4110", uerr.message) end
  local props = azureml.member(def, "properties") or {}
  return json.object{ endpointKind = "arm", trainedModelName = name, webService = azureml.member(def, "name"),
    provisioningState = azureml.member(props, "provisioningState"),
    location = json.object{ BaseLocation = base, RelativeLocation = relative } }
end

return M
