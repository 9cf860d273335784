--- lufa.retrain: the two steps of a retraining job, shared by the ADF activities and Lua scripts.
--- `deploy` points a scoring web service at a trained model in Blob Storage (classic Update Resource or
--- Azure Resource Manager), given the clients of an AzureML and an Azure Storage linked service
--- (`lufa.linked.AzureML`, `lufa.linked.AzureStorage`). See docs/api/azureml.md and docs/retraining.md.
---
--- Example:
--- ```lua fragment
--- local retrain = require "lufa.retrain"
--- local factory = assert(require("lufa.pipeline").load_factory("factory"))
--- local done, err = retrain.deploy {
---   ml = factory:linked_service("ScoringService"), storage = factory:linked_service("Storage"),
---   name = "Churn [trained model]", path = "models/churn/model.ilearner", log = print,
--- }
--- ```
local json = require "lufa.json"
local options = require "lufa.options"
local secret = require "lufa.secret"
local E = require "lufa.error"
local azureml = require "lufa.azureml"

---@class lufa.retrain
---@field CLASSIC_SAS_SECONDS integer how long the SAS handed to a classic service stays valid (15 minutes)
---@field ARM_SAS_SECONDS integer how long the SAS in an ARM web-service definition stays valid (24 hours)
local M = {}

--- How long the SAS handed to the service stays valid: the classic service reads the model during the call;
--- an ARM definition keeps the URL, and the service reads it while provisioning.
M.CLASSIC_SAS_SECONDS = 15 * 60
M.ARM_SAS_SECONDS = 24 * 3600

local function fail(code, fmt, ...)
  return nil, E.new{ kind = "azureml", code = code, message = string.format(fmt, ...) }
end

--- "container/dir/model.ilearner" → "container", "dir/model.ilearner"; nil when there is no container part.
---@nodiscard
---@param path string
---@return string|nil container
---@return string|nil name the blob's name within the container
function M.split_path(path)
  return tostring(path):gsub("^/+", ""):match("^([^/]+)/(.+)$")
end

--- A read-only SAS query string ("?sv=...") for exactly one blob, as a secret.
local function read_sas(blob, seconds)
  local ok, url = pcall(blob.sas, blob, { permissions = "r", expiry = seconds, start = -300 })
  if not ok then return nil, url end
  return secret("?" .. secret.expose(url):match("%?(.+)$"))
end

---@class lufa.retrain.DeployOptions
---@field ml table the AzureML linked-service client (with update_endpoint)
---@field storage table the AzureStorage linked-service client
---@field name string the trained model's name
---@field path string "container/path/model.ilearner"
---@field log? fun(fmt: string, ...: any) progress lines
---@field sleep? fun(seconds: number) waits between polls
---@field journal? fun(value: any) records the ARM update's progress (see lufa.azureml.update_arm)
---@field journaled? any the progress recorded by an earlier attempt

--- Points the scoring web service of `ml` at the model `path` of `storage`, through a read-only SAS.
--- Errors: `nil, err` (kind "azureml"; code "NoUpdateEndpoint", "BadPath", "ModelUnreadable",
--- "ModelNotFound", "NoSas", or the update's own error).
---@async
---@param o lufa.retrain.DeployOptions
---@return table|nil description `{endpointKind, trainedModelName, location, ...}`
---@return lufa.error? err
function M.deploy(o)
  options.check(o, { "ml", "storage", "name", "path", "log", "sleep", "journal", "journaled" }, "retrain.deploy", 2)
  local ml, storage = o.ml, o.storage
  local log = o.log or function() end
  if not ml.update_endpoint then
    return fail("NoUpdateEndpoint", "linked service '%s' has no updateResourceEndpoint; updating a model needs " ..
      "the scoring web service's update endpoint", tostring(ml.name))
  end
  local container, blob_name = M.split_path(o.path)
  if not container then
    return fail("BadPath", "trainedModelFilePath '%s' must be container/path/model.ilearner", tostring(o.path))
  end
  local blob = storage.blob():container(container):blob(blob_name)
  local exists, err = blob:exists()
  if exists == nil then
    return fail("ModelUnreadable", "cannot check the trained model '%s' in linked service '%s': %s", o.path,
      tostring(storage.name), tostring(err))
  elseif not exists then
    return fail("ModelNotFound", "the trained model '%s' does not exist in linked service '%s'; the training " ..
      "job must write it there first", o.path, tostring(storage.name))
  end
  local base = storage.base_location()
  local relative = container .. "/" .. blob_name
  local location = json.object{ BaseLocation = base, RelativeLocation = relative }
  local sas, why = read_sas(blob, ml.is_arm and M.ARM_SAS_SECONDS or M.CLASSIC_SAS_SECONDS)
  if not sas then
    return fail("NoSas", "the web service reads the model through a SAS, which linked service '%s' cannot make " ..
      "(%s); use an account-key connection string", tostring(storage.name), tostring(why))
  end
  if not ml.is_arm then
    log("updating classic endpoint %s to %s%s", ml.update_endpoint:match("^[^?]*"), base, relative)
    local res, uerr = azureml.update_classic{ endpoint = ml.update_endpoint, api_key = ml.api_key, name = o.name,
      base_location = base, relative_location = relative, sas = sas, timeout = ml.request_timeout }
    if not res then return nil, uerr end
    return json.object{ endpointKind = "classic", trainedModelName = o.name, location = location,
      requestId = res.request_id }
  end
  log("updating web service %s to %s%s", ml.update_endpoint:match("^[^?]*"), base, relative)
  local def, uerr = azureml.update_arm{ endpoint = ml.update_endpoint, name = o.name,
    uri = secret.concat(base, relative, sas), location = base .. relative, authorization = ml.authorization, sleep = o.sleep, log = o.log,
    journal = o.journal, journaled = o.journaled, request_timeout = ml.request_timeout }
  if not def then return nil, uerr end
  local props = azureml.member(def, "properties") or {}
  return json.object{ endpointKind = "arm", trainedModelName = o.name, webService = azureml.member(def, "name"),
    provisioningState = azureml.member(props, "provisioningState"), location = location }
end

return M
