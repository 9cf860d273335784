--- WebActivity: calls an HTTP endpoint (method, headers, body, authentication, timeout).
-- Follows ADF: a `202 Accepted` with a `Location` header is polled with GET until it
-- answers otherwise (unless `turnOffAsync`); non-2xx fails with errorCode 2108; the
-- output is the JSON response's properties (a non-object body as `Response`) plus
-- `ADFWebActivityResponseHeaders` and `executionDuration`.
local lufa = require "lufa"
local json = require "lufa.json"
local secret = require "lufa.secret"
local L = require "lufa.pipeline.lenient"

local M = {}

local METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"}
local MAX_TIMEOUT = 600

function M.validate(activity, report)
  local tp = activity.typeProperties
  report:require(tp, "url")
  local method = report:require(tp, "method")
  local canonical = L.enum(method, METHODS)
  if method ~= nil and not canonical then
    report:error(".typeProperties.method", "unknown method '%s': expected GET, POST, PUT, DELETE or PATCH",
      tostring(method))
  end
  local body = L.get(tp, "body")
  if canonical == "GET" and body ~= nil then
    report:error(".typeProperties.body", "a GET request cannot have a body")
  elseif (canonical == "POST" or canonical == "PUT" or canonical == "PATCH") and body == nil then
    report:error(".typeProperties", "WebActivity with method %s requires \"body\"", canonical)
  end
  local t = L.get(tp, "httpRequestTimeout")
  if type(t) == "string" and t:sub(1, 1) ~= "@" then
    local secs, why = L.timespan(t)
    if not secs then report:error(".typeProperties.httpRequestTimeout", "bad httpRequestTimeout: %s", why)
    elseif secs > MAX_TIMEOUT then
      report:warning(".typeProperties.httpRequestTimeout", "ADF allows at most 00:10:00")
    end
  end
  local auth = L.get(tp, "authentication")
  if auth ~= nil then
    local atype = L.enum(L.get(auth, "type"), {"Basic", "MSI", "ServicePrincipal", "UserAssignedManagedIdentity",
      "ClientCertificate"})
    if not atype then
      report:error(".typeProperties.authentication.type",
        "unknown authentication type '%s': expected Basic, MSI, ServicePrincipal or UserAssignedManagedIdentity",
        tostring(L.get(auth, "type")))
    end
  end
end

local function text(v)
  if secret.is(v) then return v end
  if type(v) == "string" then return v end
  if v == nil or v == json.null then return "" end
  return tostring(v)
end

-- The Authorization header value for `authentication` (a secret), or nil.
local function authorization(ctx, auth)
  if auth == nil then return nil end
  local atype = (L.get(auth, "type") or ""):lower()
  if atype == "basic" then
    local crypto = require "lufa.crypto"
    local user, pass = text(L.get(auth, "username")), text(L.get(auth, "password"))
    return secret("Basic ") .. crypto.base64_encode(secret.concat(user, ":", pass))
  end
  local aad = require "lufa.aad"
  local resource = L.get(auth, "resource")
  local cred
  if atype == "msi" or atype == "userassignedmanagedidentity" then
    cred = aad.managed_identity{client_id = L.get(L.get(auth, "credential") or {}, "clientId")}
  elseif atype == "serviceprincipal" then
    cred = aad.client_secret{
      tenant = L.get(auth, "userTenant") or L.get(auth, "tenant"),
      client_id = L.get(auth, "username") or L.get(auth, "servicePrincipalId"),
      client_secret = L.get(auth, "password") or L.get(auth, "servicePrincipalKey"),
    }
  else
    ctx:fail("UnsupportedAuthentication", "WebActivity authentication type '" .. tostring(L.get(auth, "type")) ..
      "' is not supported")
  end
  local header, err = cred:authorization(resource)
  if not header then
    ctx:fail("2108", "could not get a token for the WebActivity: " .. tostring(err and err.message or err))
  end
  return header
end

local function header_table(headers)
  local out = json.object{}
  for k, v in pairs(headers or {}) do
    if type(k) == "string" then out[k] = v end
  end
  return out
end

--- The call a run would make (`lufa run --dry-run`).
function M.dry_run(activity, env)
  local method = L.enum(env.property(activity, "method"), METHODS) or "GET"
  local line = string.format("%s %s", method, env.property(activity, "url"))
  local body = L.get(activity.typeProperties, "body")
  if body ~= nil then line = line .. "   body " .. env.value(body) end
  return {line}
end

function M.run(ctx)
  local http = require "lufa.http"
  local method = L.enum(ctx:property("method"), METHODS) or "GET"
  local url = ctx:property("url")
  local shown_url = tostring(url)
  if secret.is(url) then url = secret.expose(url) end
  local headers = {}
  for k, v in pairs(ctx:property("headers") or {}) do headers[k] = text(v) end
  local body = ctx:property("body")
  if body ~= nil and type(body) ~= "string" and not secret.is(body) then
    body = json.encode(body, {reveal_secrets = true})
    local has_type = false
    for k in pairs(headers) do if k:lower() == "content-type" then has_type = true end end
    if not has_type then headers["Content-Type"] = "application/json" end
  end
  local auth = authorization(ctx, ctx:property("authentication"))
  if auth then headers.Authorization = auth end
  local timeout = 60
  if ctx:property("httpRequestTimeout") then
    timeout = L.timespan(ctx:property("httpRequestTimeout")) or timeout
  end
  local started = lufa.now()
  local opts = {method = method, url = url, headers = headers, body = body, timeout = timeout,
    tls_verify = L.bool(ctx:property("disableCertValidation")) ~= true}
  ctx:log("info", "%s %s", method, shown_url)
  local res, err = http.request(opts)
  local async = L.bool(ctx:property("turnOffAsync")) ~= true
  while res and res.status == 202 and async and res.headers and res.headers["location"] do
    local wait = tonumber(res.headers["retry-after"] or "") or 1
    ctx:sleep(wait)
    res, err = http.request{method = "GET", url = res.headers["location"], headers = {Authorization = auth},
      timeout = timeout, tls_verify = opts.tls_verify}
  end
  if not res then
    ctx:fail("2108", string.format("Error calling the endpoint '%s': %s", shown_url,
      tostring(err and err.message or err)))
  end
  if res.status < 200 or res.status > 299 then
    local snippet = type(res.body) == "string" and res.body:sub(1, 500) or ""
    ctx:fail("2108", string.format("Error calling the endpoint '%s'. Response status code: '%d'. %s",
      shown_url, res.status, snippet))
  end
  local output = json.object{}
  local decoded = type(res.body) == "string" and res.body ~= "" and json.decode(res.body) or nil
  if L.is_object(decoded) then
    for k, v in pairs(decoded) do output[k] = v end
  elseif res.body ~= nil and res.body ~= "" then
    output.Response = decoded ~= nil and decoded or res.body
  end
  output.ADFWebActivityResponseHeaders = header_table(res.headers)
  output.executionDuration = math.floor(lufa.now() - started)
  return output
end

return M
