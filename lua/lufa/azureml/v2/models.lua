--- lufa.azureml.v2.models: model versions in an Azure ML v2 workspace's registry.
--- Registering is `PUT …/models/{name}/versions/{version}` (synchronous). The version is the caller's string:
--- `register` takes the next integer after the highest existing one unless told, and returns it; callers that
--- must survive a restart journal that version before the PUT, so a repeat writes the same version again.
--- Tags and properties (string maps) carry what promotion decisions read (metrics, the run that made it).
---
--- Example:
--- ```lua fragment
--- local models = require "lufa.azureml.v2.models"
--- local v = assert(models.register(ws, "churn", { model_uri = jobs.output_uri(job.name, "model"),
---   model_type = "mlflow_model", properties = { auc = "0.913" } }))
--- print(v.name, v.id)   -- "8", the asset id deployments take
--- ```
local http = require "lufa.http"
local options = require "lufa.options"
local json = require "lufa.json"
local E = require "lufa.error"

---@class lufa.azureml.v2.models
---@field TYPES table<string, true> the modelType values the service knows: custom_model, mlflow_model, triton_model
local M = {}

--- The modelType values the service knows (CLI/SDK spelling; the REST examples' "CustomModel" is the same).
M.TYPES = { custom_model = true, mlflow_model = true, triton_model = true }

local function versions_path(name) return "/models/" .. http.urlencode(name) .. "/versions" end

--- Every version of the model `name` (following nextLink), newest first by integer version.
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param name string
---@return table[]|nil versions the version resources (empty when the model does not exist)
---@return lufa.error? err
function M.list(ws, name)
  local out, url = {}, versions_path(name)
  while url do
    local page, err = ws:arm("listing versions of model " .. name, "GET", url)
    if not page then
      if err.status == 404 and #out == 0 then return out end
      return nil, err
    end
    for _, v in ipairs(type(page.value) == "table" and page.value or {}) do out[#out + 1] = v end
    url = type(page.nextLink) == "string" and page.nextLink or nil
  end
  table.sort(out, function(a, b)
    local x, y = tonumber(a.name), tonumber(b.name)
    if x and y then return x > y end
    return tostring(a.name) > tostring(b.name)
  end)
  return out
end

--- One version, or nil, err (err.status 404 when it does not exist).
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param name string
---@param version string
---@return table|nil version
---@return lufa.error? err
function M.get(ws, name, version)
  return ws:arm(string.format("reading model %s version %s", name, version), "GET",
    versions_path(name) .. "/" .. http.urlencode(tostring(version)))
end

--- The next integer version of `name` ("1" for a new model).
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param name string
---@return string|nil version
---@return lufa.error? err
function M.next_version(ws, name)
  local list, err = M.list(ws, name)
  if not list then return nil, err end
  local max = 0
  for _, v in ipairs(list) do
    local n = math.tointeger(tonumber(v.name))
    if n and n > max then max = n end
  end
  return tostring(max + 1)
end

local function string_map(t, what)
  if t == nil then return nil end
  local out = json.object{}
  for k, v in pairs(t) do
    if type(v) == "table" then error(string.format("%s.%s: expected a string (Azure ML stores %s as strings)",
      what, tostring(k), what), 3) end
    out[k] = tostring(v)
  end
  return out
end

---@class lufa.azureml.v2.RegisterOptions
---@field model_uri string `azureml://jobs/{job}/outputs/{out}`, `azureml://datastores/{ds}/paths/{p}` or an https blob URL
---@field model_type? "custom_model"|"mlflow_model"|"triton_model" default "custom_model"
---@field version? string default the next integer
---@field description? string
---@field tags? table<string, string|number> numbers become strings
---@field properties? table<string, string|number> numbers become strings
---@field flavors? table

--- Registers a model version.
--- Errors: `nil, err` (code "BadModelUri", "BadModelType", or the service's).
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param name string
---@param o lufa.azureml.v2.RegisterOptions
---@return table|nil version the version resource (`name` is the version, `id` the asset id)
---@return lufa.error? err
function M.register(ws, name, o)
  options.check(o, { "model_uri", "model_type", "version", "description", "tags", "properties", "flavors" },
    "models.register", 2)
  if type(o.model_uri) ~= "string" or o.model_uri == "" then
    return nil, E.new{ kind = "azureml", code = "BadModelUri", message = string.format(
      "registering model %s: model_uri is required (a job output, datastore path or blob URL)", name) }
  end
  local mtype = o.model_type or "custom_model"
  if not M.TYPES[mtype:lower()] and mtype ~= "CustomModel" and mtype ~= "MLFlowModel" then
    return nil, E.new{ kind = "azureml", code = "BadModelType", message = string.format(
      "registering model %s: model_type '%s' is not one of custom_model, mlflow_model, triton_model", name, mtype) }
  end
  local version = o.version
  if version == nil then
    local err
    version, err = M.next_version(ws, name)
    if not version then return nil, err end
  end
  -- the container holds the versions; a first registration makes it (a PUT of an existing one is harmless)
  if version == "1" or o.version ~= nil then
    local c, cerr = ws:arm("reading model " .. name, "GET", "/models/" .. http.urlencode(name))
    if not c and cerr.status == 404 then
      c, cerr = ws:arm("creating model " .. name, "PUT", "/models/" .. http.urlencode(name),
        json.object{ properties = json.object{ description = o.description } })
    end
    if not c then return nil, cerr end
  end
  local props = json.object{ modelUri = o.model_uri, modelType = mtype, description = o.description,
    tags = string_map(o.tags, "tags"), properties = string_map(o.properties, "properties"), flavors = o.flavors }
  return ws:arm(string.format("registering model %s version %s", name, version), "PUT",
    versions_path(name) .. "/" .. http.urlencode(tostring(version)), json.object{ properties = props })
end

--- A numeric property of a version (a metric such as "auc"), or nil.
---@nodiscard
---@param version table a version resource
---@param key string
---@return number|nil value
function M.metric(version, key)
  local p = type(version) == "table" and type(version.properties) == "table" and version.properties.properties
  return type(p) == "table" and tonumber(p[key]) or nil
end

return M
