--- lufa.azureml.v2.online: online endpoints and deployments of an Azure ML v2 workspace.
--- Deployments are created, updated and deleted as long-running operations followed to their terminal
--- provisioning state; the endpoint's `traffic` (live) and `mirrorTraffic` (shadow) maps change by a full
--- PUT of the endpoint (GET, edit, PUT). Scoring goes to the endpoint's `scoringUri` with the credential its
--- `authMode` asks for (an endpoint key, an AML token or an https://ml.azure.com token), optionally pinned to
--- one deployment by the `azureml-model-deployment` header.
---
--- Example:
--- ```lua fragment
--- local online = require "lufa.azureml.v2.online"
--- assert(online.put_deployment(ws, "churn", "green", { model = ..., instanceType = "Standard_DS3_v2" }))
--- assert(online.set_traffic(ws, "churn", { blue = 90, green = 10 }))
--- local answer = assert(online.score(ws, "churn", { data = rows }, { deployment = "green" }))
--- ```
local lufa = require "lufa"
local options = require "lufa.options"
local http = require "lufa.http"
local json = require "lufa.json"
local secret = require "lufa.secret"
local E = require "lufa.error"
local workspace = require "lufa.azureml.v2.workspace"

---@class lufa.azureml.v2.online
local M = {}

-- What GET shows but a PUT does not send back.
local READ_ONLY = { scoringUri = true, swaggerUri = true, provisioningState = true }

local function endpoint_path(e) return "/onlineEndpoints/" .. http.urlencode(e) end
local function deployment_path(e, d) return endpoint_path(e) .. "/deployments/" .. http.urlencode(d) end

--- The endpoint resource, or nil, err.
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param e string the endpoint's name
---@return table|nil endpoint
---@return lufa.error? err
function M.endpoint(ws, e)
  return ws:arm("reading online endpoint " .. e, "GET", endpoint_path(e))
end

--- A deployment resource, or nil, err (err.status 404: none).
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param e string the endpoint's name
---@param d string the deployment's name
---@return table|nil deployment
---@return lufa.error? err
function M.deployment(ws, e, d)
  return ws:arm(string.format("reading deployment %s of online endpoint %s", d, e), "GET", deployment_path(e, d))
end

--- Every deployment of the endpoint (a list of resources), or nil, err.
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param e string the endpoint's name
---@return table[]|nil deployments
---@return lufa.error? err
function M.deployments(ws, e)
  local page, err = ws:arm("listing deployments of online endpoint " .. e, "GET", endpoint_path(e) .. "/deployments")
  if not page then return nil, err end
  return type(page.value) == "table" and page.value or {}
end

--- Creates or updates deployment `d` with `properties` (the deployment's properties: `model`,
--- `instanceType`, `environmentId`, `codeConfiguration`, …; `endpointComputeType` defaults to "Managed"),
--- `opts.sku` (default `{name = "Default", capacity = 1}`), and follows the operation to its end.
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param e string the endpoint's name
---@param d string the deployment's name
---@param properties table
---@param opts? {sku?: table, tags?: table, timeout?: number}
---@return table|nil deployment provisioningState Succeeded
---@return lufa.error? err
function M.put_deployment(ws, e, d, properties, opts)
  opts = options.check(opts or {}, { "sku", "tags", "timeout", "on_poll" }, "online.put_deployment", 2)
  local ep, err = M.endpoint(ws, e)
  if not ep then return nil, err end
  local props = json.object{}
  for k, v in pairs(properties) do props[k] = v end
  props.endpointComputeType = props.endpointComputeType or "Managed"
  local body = json.object{ location = ep.location, properties = props,
    sku = opts.sku or json.object{ name = "Default", capacity = 1 }, tags = opts.tags }
  local what = string.format("deploying %s to online endpoint %s", d, e)
  local doc, res = ws:arm(what, "PUT", deployment_path(e, d), body)
  if not doc then return nil, res end
  return ws:follow(res, { what = what, resource_path = deployment_path(e, d), timeout = opts.timeout,
    on_poll = opts.on_poll })
end

--- Deletes a deployment and follows the deletion (the deployment must have no live traffic); one that
--- does not exist is fine.
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param e string the endpoint's name
---@param d string the deployment's name
---@param opts? {timeout?: number}
---@return any ok true, or the followed operation's result
---@return lufa.error? err
function M.delete_deployment(ws, e, d, opts)
  if opts ~= nil then options.check(opts, { "timeout" }, "online.delete_deployment", 2) end
  local what = string.format("deleting deployment %s of online endpoint %s", d, e)
  local doc, res = ws:arm(what, "DELETE", deployment_path(e, d))
  if not doc then
    if res.status == 404 then return true end
    return nil, res
  end
  if res.status == 202 or res.headers["azure-asyncoperation"] then
    return ws:follow(res, { what = what, timeout = opts and opts.timeout })
  end
  return true
end

local function copy_map(t)
  local out = json.object{}
  for k, v in pairs(type(t) == "table" and t or {}) do out[k] = math.tointeger(v) or v end
  return out
end

--- The endpoint's live and mirrored traffic maps (deployment → percent).
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param e string the endpoint's name
---@return table<string, integer>|nil traffic
---@return table<string, integer>|lufa.error mirror_traffic_or_err
---@return table? endpoint
function M.traffic(ws, e)
  local ep, err = M.endpoint(ws, e)
  if not ep then return nil, err end
  local p = type(ep.properties) == "table" and ep.properties or {}
  return copy_map(p.traffic), copy_map(p.mirrorTraffic), ep
end

--- Sets the traffic map (and the mirror map when `mirror` is given; `{}` clears it): GET the endpoint,
--- replace the maps, PUT it back and follow the update.
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param e string the endpoint's name
---@param traffic table<string, integer> deployment → percent
---@param mirror? table<string, integer>
---@param opts? {timeout?: number}
---@return table|nil endpoint
---@return lufa.error? err
function M.set_traffic(ws, e, traffic, mirror, opts)
  if opts ~= nil then options.check(opts, { "timeout" }, "online.set_traffic", 2) end
  local current, err, ep = M.traffic(ws, e)
  if not current then return nil, err end
  local props = json.object{}
  for k, v in pairs(ep.properties) do if not READ_ONLY[k] then props[k] = v end end
  props.traffic = copy_map(traffic)
  if mirror ~= nil then props.mirrorTraffic = copy_map(mirror) end
  local body = json.object{ location = ep.location, tags = ep.tags, identity = ep.identity, kind = ep.kind,
    properties = props }
  local what = "setting the traffic of online endpoint " .. e
  local doc, res = ws:arm(what, "PUT", endpoint_path(e), body)
  if not doc then return nil, res end
  return ws:follow(res, { what = what, resource_path = endpoint_path(e), timeout = opts and opts.timeout })
end

--- The endpoint's keys `{primaryKey, secondaryKey}` as secrets, or nil, err.
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param e string the endpoint's name
---@return {primaryKey: lufa.secret, secondaryKey: lufa.secret}|nil keys
---@return lufa.error? err
function M.keys(ws, e)
  local doc, err = ws:arm("reading the keys of online endpoint " .. e, "POST", endpoint_path(e) .. "/listKeys",
    nil, { attempts = 4, base_delay = 1, retry_unsafe = true, statuses = workspace.RETRY.statuses })
  if not doc then return nil, err end
  return { primaryKey = doc.primaryKey and secret(doc.primaryKey), secondaryKey = doc.secondaryKey and secret(doc.secondaryKey) }
end

-- "Bearer …" for scoring, by the endpoint's authMode (cached per endpoint for keys and AML tokens).
local function scoring_authorization(ws, e, ep)
  local mode = tostring(ep.properties.authMode or "Key"):lower()
  if mode == "aadtoken" then return ws:authorization(workspace.DATA_SCOPE) end
  ws.scoring_auth = ws.scoring_auth or {}
  local cached = ws.scoring_auth[e]
  if cached and (cached.refresh == nil or lufa.now() < cached.refresh) then return cached.value end
  if mode == "amltoken" then
    local doc, err = ws:arm("getting a scoring token of online endpoint " .. e, "POST", endpoint_path(e) .. "/token",
      nil, { attempts = 4, base_delay = 1, retry_unsafe = true, statuses = workspace.RETRY.statuses })
    if not doc then return nil, err end
    -- refreshed when the service says (refreshAfterTimeUtc, Unix seconds), at the latest after 10 minutes
    local after = tonumber(doc.refreshAfterTimeUtc)
    local refresh = lufa.now() + 600
    if after and after - os.time() < 600 then refresh = lufa.now() + math.max(0, after - os.time()) end
    cached = { value = secret("Bearer " .. tostring(doc.accessToken)), refresh = refresh }
  else
    local keys, err = M.keys(ws, e)
    if not keys then return nil, err end
    cached = { value = secret("Bearer " .. secret.expose(keys.primaryKey)) }
  end
  ws.scoring_auth[e] = cached
  return cached.value
end

--- Scores through the endpoint. `body` is a table (sent as JSON) or a string; `opts.deployment` pins the
--- request to one deployment, bypassing the traffic map.
--- Errors: `nil, err` (err.status the HTTP status).
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param e string the endpoint's name
---@param body table|string
---@param opts? {deployment?: string, timeout?: number, endpoint_resource?: table} `endpoint_resource`: the endpoint already read
---@return any answer the decoded answer
---@return {status: integer, deployment?: string, seconds: number}|lufa.error info_or_err
function M.score(ws, e, body, opts)
  opts = options.check(opts or {}, { "deployment", "endpoint_resource", "timeout" }, "online.score", 2)
  local ep = opts.endpoint_resource
  if not ep then
    local err
    ep, err = M.endpoint(ws, e)
    if not ep then return nil, err end
  end
  local uri = ep.properties.scoringUri
  if type(uri) ~= "string" then
    return nil, E.new{ kind = "azureml", code = "NoScoringUri", message = "online endpoint " .. e .. " has no scoringUri" }
  end
  local auth, aerr = scoring_authorization(ws, e, ep)
  if not auth then return nil, aerr end
  local started = lufa.now()
  local res, err = http.request{ method = "POST", url = uri, timeout = opts.timeout or ws.timeout,
    headers = { ["Authorization"] = auth, ["Content-Type"] = "application/json", ["Accept"] = "application/json",
      ["azureml-model-deployment"] = opts.deployment },
    body = type(body) == "string" and body or json.encode(body) }
  local seconds = lufa.now() - started
  if not res then
    return nil, E.new{ kind = "azureml", code = err.code or "transport", seconds = seconds,
      message = string.format("scoring on online endpoint %s failed: %s", e, tostring(err.message or err)) }
  end
  local info = { status = res.status, deployment = res.headers["azureml-model-deployment"], seconds = seconds }
  if res.status < 200 or res.status > 299 then
    local serr = workspace.service_error(res, "scoring on online endpoint " .. e, uri)
    serr.seconds, serr.deployment = seconds, info.deployment
    return nil, serr
  end
  local doc = res.body ~= "" and json.decode(res.body) or json.null
  if doc == nil then doc = res.body end
  return doc, info
end

--- The last `lines` lines of a deployment's container log (to show why it failed), or nil, err.
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param e string the endpoint's name
---@param d string the deployment's name
---@param lines? integer default 100
---@return string|nil log
---@return lufa.error? err
function M.logs(ws, e, d, lines)
  local doc, err = ws:arm(string.format("reading the logs of deployment %s of online endpoint %s", d, e), "POST",
    deployment_path(e, d) .. "/getLogs", json.object{ containerType = "InferenceServer", tail = lines or 100 },
    { attempts = 3, base_delay = 1, retry_unsafe = true, statuses = workspace.RETRY.statuses })
  if not doc then return nil, err end
  return type(doc.content) == "string" and doc.content or ""
end

return M
