--- AzureMLRegisterModel (a lufa extension): registers a model version in the workspace of the activity's
-- `AzureMLService` linked service.
-- typeProperties: `modelName`; the model's location: `modelUri` (`azureml://jobs/{job}/outputs/{out}`,
-- `azureml://datastores/{ds}/paths/{p}` or an https blob URL), or `jobName` + `jobOutputName` (a job's
-- output); optional `modelType` ("custom_model" default, "mlflow_model", "triton_model"), `version`
-- (default: the next integer), `description`, `tags`, `properties` (string maps: metrics for promotion).
-- The version chosen is journaled before the PUT, so a resumed run registers the same version, not another.
-- Output: `{modelName, version, assetId, modelUri, modelType, tags, properties}`.
-- @module lufa.activities.AzureMLRegisterModel
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"
local jobs = require "lufa.azureml.v2.jobs"
local models = require "lufa.azureml.v2.models"
local support = require "lufa.azureml.v2.activity"

local M = {}

function M.validate(activity, report)
  support.check(activity, report, { "modelName" })
  local tp = activity.typeProperties
  if L.get(tp, "modelUri") == nil and (L.get(tp, "jobName") == nil or L.get(tp, "jobOutputName") == nil) then
    report:error(".typeProperties", "AzureMLRegisterModel needs \"modelUri\", or \"jobName\" and \"jobOutputName\"")
  end
  for _, k in ipairs{ "tags", "properties" } do support.check_object(activity, report, k) end
  local t = L.get(tp, "modelType")
  if type(t) == "string" and not t:find("@", 1, true) and not models.TYPES[t:lower()] then
    report:error(".typeProperties.modelType", "modelType must be custom_model, mlflow_model or triton_model, got '%s'", t)
  end
end

local function string_map(ctx, key)
  local v = ctx:property(key)
  if v == nil then return nil end
  if not L.is_object(v) then ctx:fail(support.ERROR_CODE, "typeProperties." .. key .. " must evaluate to an object") end
  local out = json.object{}
  for k, x in pairs(v) do
    if type(x) == "table" then
      ctx:fail(support.ERROR_CODE, string.format("typeProperties.%s.%s must be a string or a number", key, k))
    end
    out[k] = tostring(x)
  end
  return out
end

function M.run(ctx, activity)
  local ws = support.workspace(ctx, activity)
  local name = ctx:property("modelName")
  local uri = ctx:property("modelUri")
  if uri == nil then uri = jobs.output_uri(ctx:property("jobName"), ctx:property("jobOutputName")) end
  local version = ctx:property("version")
  local journaled = ctx:journaled("v2.model")
  if version == nil and journaled and journaled.version then version = journaled.version end
  if version == nil then
    local err
    version, err = models.next_version(ws, name)
    if not version then support.fail(ctx, err) end
  end
  version = tostring(version)
  ctx:journal("v2.model", { version = version })
  local v, err = models.register(ws, name, { model_uri = uri, model_type = ctx:property("modelType"),
    version = version, description = ctx:property("description"), tags = string_map(ctx, "tags"),
    properties = string_map(ctx, "properties") })
  if not v then support.fail(ctx, err) end
  ctx:log("info", "registered model %s version %s from %s", name, version, uri)
  local p = v.properties or {}
  return json.object{ modelName = name, version = v.name or version, assetId = v.id, modelUri = p.modelUri,
    modelType = p.modelType, tags = p.tags or json.object{}, properties = p.properties or json.object{} }
end

return M
