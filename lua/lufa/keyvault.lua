--- lufa.keyvault: secrets from Azure Key Vault (the secrets REST API, version 7.4).
---
--- Requests go through lufa.http with an Azure AD token for https://vault.azure.net (lufa.aad caches and
--- refreshes it). Errors name the vault, the secret and the vault's answer; they never carry a value.
---
--- Example:
--- ```lua fragment
--- local aad = require "lufa.aad"
--- local keyvault = require "lufa.keyvault"
--- local kv = keyvault.client { vault = "https://myvault.vault.azure.net", credential = aad.default() }
--- local value, err = kv:secret("storage-key")          -- a lufa.secret
--- ```
local json = require "lufa.json"
local options = require "lufa.options"
local secret = require "lufa.secret"
local E = require "lufa.error"
local http = require "lufa.http"

---@class lufa.keyvault
---@field AUDIENCE string the token audience, "https://vault.azure.net"
---@field API_VERSION string the REST API version, "7.4"
local M = {}

M.AUDIENCE = "https://vault.azure.net"
M.API_VERSION = "7.4"
local NAME = "^[%w%-]+$"

--- A client of one vault (`keyvault.client`).
---@class lufa.keyvault.Client
---@field vault string the vault's URL, without a trailing slash
---@field credential lufa.aad.Credential
---@field timeout number seconds per request
local Client = {}
Client.__index = Client

---@class lufa.keyvault.ClientOptions
---@field vault string the vault's URL, e.g. https://name.vault.azure.net
---@field credential lufa.aad.Credential a lufa.aad credential
---@field timeout? number seconds per request (default 30)

--- A Key Vault client. Makes no request.
--- Errors: raises when `vault` is not a URL or `credential` is not a credential.
---@param opts lufa.keyvault.ClientOptions
---@return lufa.keyvault.Client client
function M.client(opts)
  if type(opts) ~= "table" or type(opts.vault) ~= "string" then
    error("bad argument #1 to 'keyvault.client' (table with a 'vault' URL expected)", 2)
  end
  options.check(opts, { "vault", "credential", "timeout" }, "keyvault.client", 2)
  if type(opts.credential) ~= "table" then
    error("bad argument #1 to 'keyvault.client' ('credential' must be a lufa.aad credential)", 2)
  end
  local vault = opts.vault:gsub("%s+$", ""):gsub("^%s+", ""):gsub("/+$", "")
  if not vault:match("^https?://[^/]+") then
    error("bad argument #1 to 'keyvault.client' ('" .. vault .. "' is not a vault URL)", 2)
  end
  return setmetatable({ vault = vault, credential = opts.credential, timeout = opts.timeout or 30 }, Client)
end

local function fail(self, name, code, fmt, ...)
  return nil, E.new{ kind = "keyvault", code = code, vault = self.vault, secret = name,
    message = string.format("Key Vault %s, secret '%s': " .. fmt, self.vault, name, ...) }
end

-- The vault's error body: {"error": {"code", "message", "innererror": {"code"}}}.
local function answer(res)
  local body = res.body and json.decode(res.body)
  local e = type(body) == "table" and body.error
  if type(e) ~= "table" then return nil, nil, nil end
  local inner = type(e.innererror) == "table" and e.innererror.code or nil
  return e.code, inner, e.message
end

local CODES = { [401] = "unauthorized", [403] = "forbidden", [404] = "not_found" }

--- One secret's value.
--- Errors: `nil, err` with `kind` "keyvault"; `code` "forbidden", "disabled", "not_found", "unauthorized",
--- "aad", "http" or "transport"; `status`, `error_code`, `inner_code` as the vault gave them.
---@async
---@param name string the secret's name
---@param version? string a version id (default: the current version)
---@return lufa.secret|nil value the value as a lufa.secret
---@return string|lufa.error id the secret's id (its URL with the version), or the error
function Client:secret(name, version)
  if type(name) ~= "string" or not name:match(NAME) or #name > 127 then
    return fail(self, tostring(name), "argument", "a secret name has 1 to 127 letters, digits and '-'")
  end
  if version ~= nil and (type(version) ~= "string" or not version:match("^%w*$")) then
    return fail(self, name, "argument", "'%s' is not a secret version", tostring(version))
  end
  local auth, aerr = self.credential:authorization(M.AUDIENCE)
  if not auth then
    local r, e = fail(self, name, "aad", "no Azure AD token for %s: %s", M.AUDIENCE, tostring(aerr))
    e.cause = aerr
    return r, e
  end
  local url = self.vault .. "/secrets/" .. name .. (version and version ~= "" and ("/" .. version) or "") ..
    "?api-version=" .. M.API_VERSION
  local res, err = http.request_with_retry({ method = "GET", url = url, timeout = self.timeout,
    headers = { ["Authorization"] = auth, ["Accept"] = "application/json" } })
  if not res then return fail(self, name, "transport", "the vault could not be reached: %s", tostring(err)) end
  if res.status == 200 then
    local body = json.decode(res.body or "")
    if type(body) ~= "table" or type(body.value) ~= "string" then
      return fail(self, name, "http", "the vault answered 200 without a value")
    end
    return secret(body.value), body.id
  end
  local code, inner, message = answer(res)
  local kind = CODES[res.status] or "http"
  if inner == "SecretDisabled" then kind = "disabled" end
  local r, e = fail(self, name, kind, "the vault answered %d %s%s", res.status, code or "(no error code)",
    message and (": " .. message) or "")
  e.status, e.error_code, e.inner_code = res.status, code, inner
  return r, e
end

return M
