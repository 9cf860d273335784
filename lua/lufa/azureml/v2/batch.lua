--- lufa.azureml.v2.batch: batch endpoints of an Azure ML v2 workspace.
--- Invoking posts a job to the endpoint's `scoringUri` with an https://ml.azure.com token (batch endpoints take
--- only Entra tokens) and polls that job on the same host. The invoke POST creates a job with a name the
--- service chooses, so it is repeated only on answers that prove nothing was created (429, 503); a lost answer
--- is reported, never sent again. The default deployment changes by a full PUT of the endpoint (PATCH takes
--- only tags and identity).
---
--- Example:
--- ```lua fragment
--- local batch = require "lufa.azureml.v2.batch"
--- local job = assert(batch.invoke(ws, "churn", { deployment = "churn-v8",
---   inputs = { input_data = { type = "UriFolder", uri = "azureml://datastores/workspaceblobstore/paths/in/" } },
---   outputs = { score = { type = "UriFile", uri = "azureml://datastores/workspaceblobstore/paths/out/s.csv" } } }))
--- assert(batch.wait(ws, job))
--- ```
local http = require "lufa.http"
local options = require "lufa.options"
local json = require "lufa.json"
local E = require "lufa.error"
local workspace = require "lufa.azureml.v2.workspace"
local jobs = require "lufa.azureml.v2.jobs"

---@class lufa.azureml.v2.batch
local M = {}

---@class lufa.azureml.v2.BatchJob
---@field name string the job's name (the service chose it)
---@field endpoint string the endpoint's name
---@field scoring_uri string
---@field job table the invoke answer

local INVOKE_RETRY = { attempts = 6, base_delay = 1, max_delay = 30, retry_unsafe = true, retry_transport = false,
  statuses = { [429] = true, [503] = true } }

local function path_of(name) return "/batchEndpoints/" .. http.urlencode(name) end

--- The endpoint resource, or nil, err.
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param name string
---@return table|nil endpoint
---@return lufa.error? err
function M.endpoint(ws, name)
  return ws:arm("reading batch endpoint " .. name, "GET", path_of(name))
end

-- {name → {type=, uri=, value=}} → the invoke body's PascalCase map.
local function data_map(map, discriminator)
  local out = json.object{}
  for k, v in pairs(map or {}) do
    out[k] = json.object{ [discriminator] = v.type or "UriFolder", Uri = v.uri, Value = v.value, Mode = v.mode }
  end
  return out
end

--- Starts a batch job on the endpoint `name`.
--- Errors: `nil, err` (code "NoScoringUri", "bad_response", or the service's); a lost answer is reported,
--- never sent again.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param name string
---@param o {inputs?: table, outputs?: table, deployment?: string} inputs and outputs: name → `{type = "UriFolder"|"UriFile"|"Literal", uri =, value =}`; deployment: else the endpoint's default
---@return lufa.azureml.v2.BatchJob|nil handle for `wait`
---@return lufa.error? err
function M.invoke(ws, name, o)
  options.check(o, { "inputs", "outputs", "deployment" }, "batch.invoke", 2)
  local ep, err = M.endpoint(ws, name)
  if not ep then return nil, err end
  local uri = type(ep.properties) == "table" and ep.properties.scoringUri
  if type(uri) ~= "string" then
    return nil, E.new{ kind = "azureml", code = "NoScoringUri", message = string.format(
      "batch endpoint %s has no scoringUri (provisioningState %s)", name, tostring(ep.properties and ep.properties.provisioningState)) }
  end
  local body = json.object{ properties = json.object{ InputData = data_map(o.inputs, "JobInputType"),
    OutputData = data_map(o.outputs, "JobOutputType") } }
  local headers = { ["azureml-model-deployment"] = o.deployment }
  local what = "invoking batch endpoint " .. name
  local res, doc = ws:call(what, { method = "POST", url = uri, body = body, headers = headers,
    fresh_connection = true }, workspace.DATA_SCOPE, INVOKE_RETRY)
  if not res then
    if doc.transport then
      doc.message = doc.message .. "; the job may have been created: look at the endpoint's jobs before invoking again"
    end
    return nil, doc
  end
  local job = type(doc) == "table" and (doc.name or (type(doc.id) == "string" and doc.id:match("([^/]+)$")))
  if type(job) ~= "string" then
    return nil, E.new{ kind = "azureml", code = "bad_response", message = what .. ": the answer names no job" }
  end
  return { name = job, endpoint = name, scoring_uri = uri, job = doc }
end

--- Reads a batch job on the endpoint's host (a `read` for jobs.wait).
---@nodiscard
---@param handle lufa.azureml.v2.BatchJob
---@return fun(ws: lufa.azureml.v2.workspace.Workspace, job: string): table?, any read
function M.reader(handle)
  return function(ws, job)
    local url = handle.scoring_uri:gsub("/+$", "") .. "/" .. http.urlencode(job)
    local res, doc, raw = ws:call("reading batch job " .. job, { method = "GET", url = url }, workspace.DATA_SCOPE)
    if not res then return nil, doc, raw end
    return doc, res
  end
end

--- Waits for an invoked job (`handle` from `invoke`); options as for jobs.wait.
--- Errors: `nil, err` as for jobs.wait.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param handle lufa.azureml.v2.BatchJob
---@param opts? lufa.azureml.v2.WaitOptions
---@return table|nil job the final job
---@return lufa.error? err
function M.wait(ws, handle, opts)
  if opts ~= nil then options.check(opts, { "sleep", "timeout", "poll_interval", "on_status" }, "batch.wait", 2) end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.read = M.reader(handle)
  return jobs.wait(ws, handle.name, o)
end

--- Makes `deployment` the endpoint's default (GET, edit defaults.deploymentName, PUT, follow the operation).
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param name string
---@param deployment string
---@return table|nil endpoint
---@return lufa.error? err
function M.set_default(ws, name, deployment)
  local ep, err = M.endpoint(ws, name)
  if not ep then return nil, err end
  local body = json.object{ location = ep.location, tags = ep.tags, identity = ep.identity, kind = ep.kind,
    properties = json.object{ authMode = ep.properties.authMode, description = ep.properties.description,
      defaults = json.object{ deploymentName = deployment } } }
  local doc, res = ws:arm("setting the default deployment of batch endpoint " .. name, "PUT", path_of(name), body)
  if not doc then return nil, res end
  return ws:follow(res, { what = "updating batch endpoint " .. name, resource_path = path_of(name) })
end

return M
