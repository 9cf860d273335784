--- lufa.azureml.v2.workspace: a client for one Azure ML v2 workspace (`Microsoft.MachineLearningServices`).
--- Holds the workspace's coordinates and credential, and makes the two kinds of call the other v2 modules
--- build on: the management plane (Azure Resource Manager, token audience https://management.azure.com) and
--- the endpoints' data plane (batch invoke, online scoring; audience https://ml.azure.com). Errors carry the
--- service's code and message; 429/5xx are retried with backoff, honouring Retry-After.
---
--- Example:
--- ```lua fragment
--- local workspace = require "lufa.azureml.v2.workspace"
--- local ws = workspace.new{ subscription_id = sub, resource_group = "rg", workspace = "ws1",
---   tenant = "contoso.onmicrosoft.com", client_id = id, client_secret = key }   -- or managed_identity = true
--- local job = assert(ws:arm("reading job train-1", "GET", "/jobs/train-1"))
--- ```
local lufa = require "lufa"
local options = require "lufa.options"
local http = require "lufa.http"
local json = require "lufa.json"
local secret = require "lufa.secret"
local E = require "lufa.error"

---@class lufa.azureml.v2.workspace
---@field API_VERSION string the ARM api-version, "2024-04-01"
---@field MANAGEMENT_ENDPOINT string "https://management.azure.com"
---@field MANAGEMENT_SCOPE string the management plane's token scope
---@field DATA_SCOPE string the endpoints' data plane's token scope, "https://ml.azure.com/.default"
---@field RETRY lufa.http.RetryPolicy the calls' default retry policy (429, 409 and 5xx)
local M = {}

M.API_VERSION = "2024-04-01"
M.MANAGEMENT_ENDPOINT = "https://management.azure.com"
M.MANAGEMENT_SCOPE = "https://management.azure.com/.default"
M.DATA_SCOPE = "https://ml.azure.com/.default"

-- Reads, PUTs and DELETEs are safe to repeat; 409 is "another operation is in progress" on ARM.
local RETRY = { attempts = 6, base_delay = 1, max_delay = 30,
  statuses = { [408] = true, [409] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true } }
M.RETRY = RETRY

--- A client for one workspace (`workspace.new`).
---@class lufa.azureml.v2.workspace.Workspace
---@field subscription_id string
---@field resource_group string
---@field name string the workspace's name
---@field credential table what gives tokens (`authorization(scope)`)
local Workspace = {}
Workspace.__index = Workspace

local function need(opts, key)
  local v = opts[key]
  if type(v) ~= "string" or v == "" then
    error(string.format("lufa.azureml.v2.workspace: '%s' is required (a non-empty string)", key), 3)
  end
  return v
end

--- The credential the options ask for: given, service principal, managed identity or the default chain.
local function credential_of(opts)
  if opts.credential then return opts.credential end
  local aad = require "lufa.aad"
  if opts.client_secret ~= nil then
    local s = opts.client_secret
    return aad.client_secret{ tenant = need(opts, "tenant"), client_id = need(opts, "client_id"),
      client_secret = secret.is(s) and s or secret(tostring(s)), authority = opts.authority }
  end
  if opts.managed_identity then
    return aad.managed_identity{ client_id = opts.client_id, endpoint = opts.identity_endpoint }
  end
  return aad.default{ endpoint = opts.identity_endpoint }
end

---@class lufa.azureml.v2.WorkspaceOptions
---@field subscription_id string
---@field resource_group string
---@field workspace string the workspace's name
---@field credential? table any object with `authorization(scope)`, e.g. from lufa.aad
---@field tenant? string with client_id and client_secret: a service principal
---@field client_id? string the service principal, or a user-assigned managed identity
---@field client_secret? string|lufa.secret
---@field authority? string another cloud, or the stand-ins
---@field managed_identity? boolean use a managed identity
---@field identity_endpoint? string the managed identity's endpoint
---@field management_endpoint? string default https://management.azure.com
---@field api_version? string default 2024-04-01
---@field timeout? number seconds per request (default 60)
---@field poll_interval? number seconds a long-running operation waits between polls when the service names no Retry-After (default 10)
---@field max_poll_interval? number seconds (default 60)
---@field sleep? fun(seconds: number) default lufa.sleep
---@field retry? lufa.http.RetryPolicy

--- A workspace client; makes no request. Without `credential`, `client_secret` or `managed_identity` the
--- default chain of lufa.aad is used.
--- Errors: raises on a missing coordinate or a management_endpoint that is not a URL without a path.
---@param opts lufa.azureml.v2.WorkspaceOptions
---@return lufa.azureml.v2.workspace.Workspace ws
function M.new(opts)
  if type(opts) ~= "table" then error("lufa.azureml.v2.workspace: expected a table of options", 2) end
  options.check(opts, { "subscription_id", "resource_group", "workspace", "credential", "tenant", "client_id",
    "client_secret", "authority", "managed_identity", "identity_endpoint", "management_endpoint", "api_version",
    "timeout", "poll_interval", "max_poll_interval", "sleep", "retry" }, "lufa.azureml.v2.workspace", 2)
  local self = setmetatable({
    subscription_id = need(opts, "subscription_id"), resource_group = need(opts, "resource_group"),
    name = need(opts, "workspace"),
    management = (opts.management_endpoint or M.MANAGEMENT_ENDPOINT):gsub("/+$", ""),
    api_version = opts.api_version or M.API_VERSION, timeout = opts.timeout or 60,
    poll_interval = opts.poll_interval or 10, max_poll_interval = opts.max_poll_interval or 60,
    sleep = opts.sleep or lufa.sleep, retry = opts.retry or RETRY,
  }, Workspace)
  if not self.management:match("^https?://[^/]+$") then
    error(string.format("lufa.azureml.v2.workspace: management_endpoint '%s' must be a URL with no path " ..
      "(such as https://management.azure.com)", self.management), 2)
  end
  self.credential = credential_of(opts)
  return self
end

--- The ARM id of the workspace, or of a resource under it (`path` such as "/models/churn/versions/8").
---@nodiscard
---@param path? string
---@return string id
function Workspace:resource_id(path)
  return string.format("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.MachineLearningServices/workspaces/%s%s",
    self.subscription_id, self.resource_group, self.name, path or "")
end

--- The management-plane URL of a path under the workspace, with the api-version (and `query`, a string).
---@nodiscard
---@param path? string
---@param query? string
---@return string url
function Workspace:url(path, query)
  return self.management .. self:resource_id(path) .. "?api-version=" .. self.api_version ..
    (query and ("&" .. query) or "")
end

--- The text of an ARM error envelope with the service's code and message, as an error value.
---@nodiscard
---@param res lufa.http.Response|nil the answer, or nil for a transport failure
---@param what string what was being done, for the message
---@param url string
---@return lufa.error err kind "azureml"
function M.service_error(res, what, url)
  local code, message = "HTTP" .. res.status, nil
  local body = res.body and res.body ~= "" and json.decode(res.body) or nil
  local err = type(body) == "table" and body.error
  if type(err) == "table" then
    code = type(err.code) == "string" and err.code or code
    message = type(err.message) == "string" and err.message or nil
  end
  message = message or (res.body and #res.body > 0 and res.body:sub(1, 300)) or "no details in the response"
  return E.new{ kind = "azureml", code = code, status = res.status, service_message = message,
    request_id = res.headers["x-ms-request-id"],
    message = string.format("%s failed: Azure ML answered %d %s: %s", what, res.status, code, message),
    url = url and url:match("^[^?]*") }
end

local function transport_error(err, what, url)
  return E.new{ kind = "azureml", code = err.code or "transport", transport = true,
    message = string.format("%s failed: %s (%s)", what, tostring(err.message or err), url:match("^[^?]*")) }
end

--- "Bearer <token>" for `scope` (a secret); `fresh` forgets cached tokens first.
--- Errors: `nil, err` (code "token").
---@async
---@param scope string
---@param fresh? boolean
---@return lufa.secret|nil authorization
---@return lufa.error? err
function Workspace:authorization(scope, fresh)
  if fresh then require("lufa.aad").clear_cache() end
  local a, err = self.credential:authorization(scope)
  if not a then
    return nil, E.new{ kind = "azureml", code = "token", message = string.format(
      "no Azure AD token for %s: %s", scope, tostring(err and err.message or err)) }
  end
  return a
end

--- One call with a token for `scope`: retried per `policy`, a 401 tried once more with a fresh token.
--- `opts` as for lufa.http.request (`body` a table is sent as JSON, secrets revealed on the wire only).
--- Errors: `nil, err, res`.
---@async
---@param what string what is being done, for messages
---@param opts lufa.http.RequestOptions
---@param scope string
---@param policy? lufa.http.RetryPolicy
---@return lufa.http.Response|nil res
---@return any body_or_err the decoded body (json.null for none), or the error
---@return lufa.http.Response? res on failure, the answer
function Workspace:call(what, opts, scope, policy)
  opts.headers = opts.headers or {}
  opts.headers["Accept"] = "application/json"
  if type(opts.body) == "table" then
    opts.body = json.encode(opts.body, { reveal_secrets = true })
    opts.headers["Content-Type"] = "application/json"
  end
  opts.timeout = opts.timeout or self.timeout
  local res, err
  for attempt = 1, 2 do
    local auth, aerr = self:authorization(scope or M.MANAGEMENT_SCOPE, attempt == 2)
    if not auth then return nil, aerr end
    opts.headers["Authorization"] = auth
    res, err = http.request_with_retry(opts, policy or self.retry)
    if not res then return nil, transport_error(err, what, opts.url) end
    if res.status ~= 401 then break end
  end
  if res.status < 200 or res.status > 299 then return nil, M.service_error(res, what, opts.url), res end
  if res.body == nil or res.body == "" then return res, json.null end
  local doc, derr = json.decode(res.body)
  if doc == nil then
    return nil, E.new{ kind = "azureml", code = "bad_response", status = res.status, message = string.format(
      "%s: the answer from %s is not JSON (%s)", what, opts.url:match("^[^?]*"), tostring(derr)) }, res
  end
  return res, doc
end

--- A management-plane call on a path under the workspace (or a full URL, such as an operation's).
--- `opts`: `query` (extra query string), `fresh_connection` (a request that must not be silently re-sent
--- by the transport on a reused connection).
--- Errors: `nil, err, res`.
---@async
---@param what string what is being done, for messages
---@param method string
---@param path string
---@param body? table|string
---@param policy? lufa.http.RetryPolicy
---@param opts? {query?: string, fresh_connection?: boolean}
---@return any body the decoded body, or nil
---@return lufa.http.Response|lufa.error res_or_err
---@return lufa.http.Response? res on failure, the answer
function Workspace:arm(what, method, path, body, policy, opts)
  opts = opts or {}
  local url = path:match("^https?://") and path or self:url(path, opts.query)
  local res, doc, raw = self:call(what, { method = method, url = url, body = body,
    fresh_connection = opts.fresh_connection }, M.MANAGEMENT_SCOPE, policy)
  if not res then return nil, doc, raw end
  return doc, res
end

--- Follows a long-running operation started by `res` (a PUT, PATCH, DELETE or POST answer) to its end:
--- the `Azure-AsyncOperation` status document when there is one, else the `Location` URL (202 while running),
--- else the resource's own `provisioningState` read at `resource_path`. Waits what `Retry-After` says (else
--- the workspace's poll_interval), until `x-ms-async-operation-timeout` or `opts.timeout` (s, default 1800).
--- Errors: `nil, err`.
---@async
---@param res lufa.http.Response
---@param opts? {what?: string, resource_path?: string, on_poll?: fun(status: string), timeout?: number} `resource_path`: GET after success, its provisioningState must be Succeeded
---@return table|true|nil resource the resource (with `resource_path`), or true
---@return lufa.error? err
function Workspace:follow(res, opts)
  local what = opts.what or "the operation"
  local deadline = lufa.now() + (M.iso_duration(res.headers["x-ms-async-operation-timeout"]) or opts.timeout or 1800)
  if opts.timeout then deadline = math.min(deadline, lufa.now() + opts.timeout) end
  local delay = self.poll_interval
  local function wait(hint_res)
    local hint = hint_res and http.retry_after(hint_res.headers["retry-after"])
    local d = hint or delay
    if lufa.now() + d > deadline then
      return nil, E.new{ kind = "azureml", code = "timeout", message = string.format("%s did not finish in time", what) }
    end
    self.sleep(d)
    delay = math.min(self.max_poll_interval, delay * 1.5)
    return true
  end
  local async, location = res.headers["azure-asyncoperation"], res.headers["location"]
  if async then
    local last = res
    while true do
      local ok, terr = wait(last)
      if not ok then return nil, terr end
      local st, pres = self:arm("polling " .. what, "GET", async)
      if not st then return nil, pres end
      last = pres
      local status = type(st) == "table" and st.status or nil
      if opts.on_poll then opts.on_poll(status) end
      if status == "Succeeded" then break end
      if status == "Failed" or status == "Canceled" or status == "Cancelled" then
        local e = type(st.error) == "table" and st.error or {}
        return nil, E.new{ kind = "azureml", code = tostring(e.code or ("Operation" .. status)),
          service_message = e.message, message = string.format("%s %s: %s", what, status:lower(),
            tostring(e.message or e.code or "no details given")) }
      end
    end
  elseif location and res.status == 202 then
    local last = res
    while true do
      local ok, terr = wait(last)
      if not ok then return nil, terr end
      local doc, pres, raw = self:arm("polling " .. what, "GET", location)
      if not doc then return nil, pres, raw end
      last = pres
      if opts.on_poll then opts.on_poll(pres.status) end
      if pres.status ~= 202 then break end
    end
  end
  if not opts.resource_path then return true end
  while true do
    local doc, err = self:arm("reading " .. opts.resource_path, "GET", opts.resource_path)
    if not doc then return nil, err end
    local state = type(doc.properties) == "table" and doc.properties.provisioningState or nil
    if state == nil or state == "Succeeded" then return doc end
    if state == "Failed" or state == "Canceled" then
      return nil, E.new{ kind = "azureml", code = "Provisioning" .. state, resource = doc,
        message = string.format("%s: provisioningState is %s", what, state) }
    end
    local ok, terr = wait(nil)
    if not ok then return nil, terr end
  end
end

--- Seconds in an ISO 8601 duration such as "PT2H" or "P1DT30M", or nil.
---@nodiscard
---@param text any
---@return number|nil seconds
function M.iso_duration(text)
  if type(text) ~= "string" then return nil end
  local days, time = text:match("^P(%d*%.?%d*)D?T?(.*)$")
  if not days then return nil end
  if text:match("^P%d") and not text:match("^P[%d.]+D") then return nil end
  local total = (tonumber(days) or 0) * 86400
  for n, unit in time:gmatch("([%d.]+)([HMS])") do
    total = total + tonumber(n) * ({ H = 3600, M = 60, S = 1 })[unit]
  end
  return total > 0 and total or nil
end

return M
