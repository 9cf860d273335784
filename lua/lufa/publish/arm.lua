--- Azure Resource Manager calls on one data factory (Microsoft.DataFactory, api-version 2018-06-01).
-- The endpoint is https://management.azure.com unless `base_url` (or LUFA_ARM_URL) names another, such as
-- the local stand-in; tokens come from a lufa.aad credential for the management audience.
-- @module lufa.publish.arm
local http = require "lufa.http"
local json = require "lufa.json"
local secret = require "lufa.secret"
local E = require "lufa.error"

local M = {}

M.API_VERSION = "2018-06-01"
M.AUDIENCE = "https://management.azure.com/"
M.DEFAULT_URL = "https://management.azure.com"

local Client = {}
Client.__index = Client

--- A client for one factory.
-- @tparam table opts `subscription`, `resource_group`, `factory`, `credential` (lufa.aad), `base_url`
function M.client(opts)
  local base = (opts.base_url or os.getenv("LUFA_ARM_URL") or M.DEFAULT_URL):gsub("/+$", "")
  local factory_path = string.format("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataFactory/factories/%s",
    http.urlencode(opts.subscription), http.urlencode(opts.resource_group), http.urlencode(opts.factory))
  return setmetatable({base = base, factory_path = factory_path, credential = opts.credential,
    factory = opts.factory}, Client)
end

--- The path of a child resource (`segment` "pipelines", …) or of the factory itself (no segment).
function Client:path(segment, name, action)
  local p = self.factory_path
  if segment then p = p .. "/" .. segment end
  if name then p = p .. "/" .. http.urlencode(name) end
  if action then p = p .. "/" .. action end
  return p
end

local function arm_error(method, path, res)
  local doc = res.body and res.body ~= "" and json.decode(res.body) or nil
  local e = type(doc) == "table" and doc.error or nil
  local code = type(e) == "table" and e.code or ("HTTP" .. res.status)
  local message = type(e) == "table" and e.message or (res.body ~= "" and res.body or "no details")
  return E.new{kind = "arm", code = tostring(code), status = res.status,
    message = string.format("%s %s: HTTP %d %s: %s", method, path, res.status, tostring(code), tostring(message))}
end

--- One call. `body` is a JSON table (encoded with its secrets revealed, and sent as a lufa.secret).
-- @return decoded body (or true when empty) and the status; nil and a lufa.error (`status` 404 for a missing
--   resource)
function Client:call(method, path, body)
  local auth, aerr = self.credential:authorization(M.AUDIENCE)
  if not auth then
    return nil, E.new{kind = "arm", code = "auth",
      message = "no Azure AD token for Azure Resource Manager: " .. tostring(aerr)}
  end
  local headers = {Authorization = auth, Accept = "application/json"}
  local payload
  if body ~= nil then
    headers["Content-Type"] = "application/json"
    payload = secret(json.encode(body, {reveal_secrets = true}))
  end
  local res, err = http.request_with_retry({method = method, url = self.base .. path .. "?api-version=" .. M.API_VERSION,
    headers = headers, body = payload, timeout = 60}, {retry_unsafe = method == "POST"})
  if not res then
    return nil, E.new{kind = "arm", code = "transport",
      message = string.format("%s %s: %s", method, path, tostring(err))}
  end
  if res.status >= 300 then return nil, arm_error(method, path, res) end
  if res.body == nil or res.body == "" then return true, res.status end
  local doc, derr = json.decode(res.body)
  if doc == nil then
    return nil, E.new{kind = "arm", code = "response",
      message = string.format("%s %s: the answer is not JSON (%s)", method, path, tostring(derr))}
  end
  return doc, res.status
end

--- GET a resource: its JSON, false when it does not exist, or nil and an error.
function Client:get(segment, name)
  local doc, err = self:call("GET", self:path(segment, name))
  if doc then return doc end
  if err.status == 404 then return false end
  return nil, err
end

return M
