--- lufa.aad: Azure AD (Microsoft Entra ID) access tokens for lufa scripts and modules.
--- Credentials: client secret, client certificate (signed assertion), managed identity (IMDS or App
--- Service), the Azure SDKs' environment variables, and a default chain of the last two. Every credential
--- has `:token(resource_or_scope)` and `:authorization(resource_or_scope)`; tokens are lufa.secret values,
--- cached process-wide, refreshed ahead of expiry, and fetched once however many tasks ask at the same time.
--- See docs/api/aad.md.
---
--- Example:
--- ```lua
--- local aad = require "lufa.aad"
--- print(aad.to_scope("https://storage.azure.com/"), aad.to_resource("https://vault.azure.net/.default"))
--- local cred = aad.client_secret { tenant = "contoso.onmicrosoft.com", client_id = "app", client_secret = "s3cr3t-value" }
--- print(tostring(cred))
--- ```
--- ```text output
--- https://storage.azure.com/.default	https://vault.azure.net
--- lufa.aad.credential: aad.client_secret (tenant contoso.onmicrosoft.com, client app, authority https://login.microsoftonline.com)
--- ```
local crypto = require "lufa.crypto"
local options = require "lufa.options"
local secret = require "lufa.secret"
local E = require "lufa.error"
local authority = require "lufa.aad.authority"
local assertion = require "lufa.aad.assertion"
local cache = require "lufa.aad.cache"
local request = require "lufa.aad.request"
local mi = require "lufa.aad.managed_identity"

---@class lufa.aad
local aad = {}

local JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
local FORM_HEADERS = { ["Content-Type"] = "application/x-www-form-urlencoded", Accept = "application/json" }

--- A credential: what every constructor of lufa.aad returns. `tostring` names its source, tenant and
--- client, never a secret.
---@class lufa.aad.Credential
---@field source string the constructor, e.g. "aad.client_secret"
local Credential = {}
Credential.__index = Credential
Credential.__name = "lufa.aad.credential"

function Credential.__tostring(c)
  local parts = { "lufa.aad.credential: " .. c.source }
  if c.tenant then parts[#parts + 1] = "tenant " .. c.tenant end
  if c.client_id then parts[#parts + 1] = "client " .. c.client_id end
  if c.authority then parts[#parts + 1] = "authority " .. c.authority end
  if c.endpoint then parts[#parts + 1] = "endpoint " .. c.endpoint end
  return parts[1] .. (#parts > 1 and " (" .. table.concat(parts, ", ", 2) .. ")" or "")
end

-- Options every credential takes besides its own.
local COMMON = { retry = "table", refresh_margin = "number", refresh_min_interval = "number", ca_file = "string",
  timeout = "number", env = "env" }

local function getenv_of(env)
  if env == nil then return os.getenv end
  if type(env) == "function" then return env end
  return function(name) return env[name] end
end

-- Checks option types; unknown options are misuse too (a typo must not be silently ignored).
local function check_options(fname, opts, own)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then error(string.format("bad argument #1 to '%s' (table expected, got %s)", fname, type(opts)), 3) end
  for k, v in pairs(opts) do
    local want = own[k] or COMMON[k]
    if not want then
      local known = {}
      for name in pairs(own) do known[#known + 1] = name end
      for name in pairs(COMMON) do known[#known + 1] = name end
      options.check({ [k] = v }, known, fname, 3)
    end
    local ok
    if want == "env" then ok = type(v) == "table" or type(v) == "function"
    elseif want == "string|secret" then ok = type(v) == "string" or secret.is(v)
    elseif want == "boolean" then ok = type(v) == "boolean"
    elseif want == "version" then ok = v == 1 or v == 2
    else ok = type(v) == want end
    if not ok then
      local expected = want == "env" and "table or function" or want == "version" and "1 or 2" or want
      error(string.format("%s: option '%s' must be a %s, got %s", fname, k, expected, type(v)), 3)
    end
  end
  return opts
end

local function new_credential(fields, opts)
  fields.retry = opts.retry
  fields.ca_file = opts.ca_file
  fields.timeout = opts.timeout
  fields.policy = { refresh_margin = opts.refresh_margin, refresh_min_interval = opts.refresh_min_interval }
  return setmetatable(fields, Credential)
end

-- Authority and tenant shared by the secret and certificate credentials; nil and a message when bad.
local function resolve_app(opts, getenv)
  local host, msg = authority.normalize(opts.authority or getenv("AZURE_AUTHORITY_HOST") or authority.DEFAULT_HOST)
  if not host then return nil, "authority: " .. msg end
  local tenant
  tenant, msg = authority.check_tenant(opts.tenant)
  if not tenant then return nil, "tenant: " .. msg end
  if type(opts.client_id) ~= "string" or opts.client_id == "" then
    return nil, "client_id: expected the application (client) id"
  end
  return { authority = host, tenant = tenant, client_id = opts.client_id, version = opts.version or 2 }
end

local function key_of(c, wire, proof)
  return table.concat({ c.source, c.authority or c.endpoint, (c.tenant or ""):lower(), (c.client_id or ""):lower(),
    tostring(c.version or ""), wire, proof }, "\n")
end

---------------------------------------------------------------------------------------------------------
-- Client secret and client certificate

local SECRET_OPTIONS = { tenant = "string", client_id = "string", client_secret = "string|secret",
  authority = "string", version = "version" }

local function build_client_secret(opts, getenv)
  local fields, msg = resolve_app(opts, getenv)
  if not fields then return nil, msg end
  local s = opts.client_secret
  if s == nil or s == "" then return nil, "client_secret: expected the secret's value" end
  fields.source = "aad.client_secret"
  fields.secret = secret.is(s) and s or secret(s)
  fields.proof = crypto.hex(crypto.sha256(fields.secret))
  return new_credential(fields, opts)
end

---@class lufa.aad.CommonOptions
---@field retry? lufa.http.RetryPolicy the token requests' retry policy
---@field refresh_margin? number seconds before expiry at which a token is refreshed
---@field refresh_min_interval? number least seconds between two refreshes of one token
---@field ca_file? string PEM file of CAs to trust
---@field timeout? number seconds per token request
---@field env? table<string, string>|fun(name: string): string? replaces the process environment

---@class lufa.aad.SecretOptions: lufa.aad.CommonOptions
---@field tenant string GUID or domain
---@field client_id string the application (client) id
---@field client_secret string|lufa.secret
---@field authority? string default AZURE_AUTHORITY_HOST, else https://login.microsoftonline.com
---@field version? 1|2 2: the v2 endpoint with a scope (the default); 1: the v1 endpoint with a resource

--- A confidential client authenticating with a client secret. Makes no request.
--- Errors: raises on a missing or malformed option.
---@param opts lufa.aad.SecretOptions
---@return lufa.aad.Credential credential
function aad.client_secret(opts)
  opts = check_options("aad.client_secret", opts, SECRET_OPTIONS)
  local c, msg = build_client_secret(opts, getenv_of(opts.env))
  if not c then error("aad.client_secret: " .. msg, 2) end
  return c
end

local CERT_OPTIONS = { tenant = "string", client_id = "string", certificate = "string",
  private_key = "string|secret", send_x5c = "boolean", use_sha256_thumbprint = "boolean", authority = "string",
  version = "version" }

local function build_client_certificate(opts, getenv)
  local fields, msg = resolve_app(opts, getenv)
  if not fields then return nil, msg end
  if type(opts.certificate) ~= "string" or opts.certificate == "" then
    return nil, "certificate: expected PEM text or the path of a PEM file"
  end
  local material, err = assertion.load(opts.certificate, opts.private_key)
  if not material then return nil, err end
  fields.source = "aad.client_certificate"
  fields.material = material
  fields.send_x5c = opts.send_x5c
  fields.use_sha256_thumbprint = opts.use_sha256_thumbprint
  fields.proof = crypto.hex(material.sha256) .. crypto.hex(crypto.sha256(material.key))
  return new_credential(fields, opts)
end

---@class lufa.aad.CertificateOptions: lufa.aad.CommonOptions
---@field tenant string GUID or domain
---@field client_id string the application (client) id
---@field certificate string PEM text or path; may hold the key too
---@field private_key? string|lufa.secret PEM text, secret or path (default: the certificate file)
---@field send_x5c? boolean add the certificate as `x5c`, for subject-name/issuer trust
---@field use_sha256_thumbprint? boolean name the certificate by `x5t#S256` instead of `x5t`
---@field authority? string as for client_secret
---@field version? 1|2 as for client_secret

--- A confidential client authenticating with a certificate: each token request carries a fresh RS256
--- client assertion whose header names the certificate by `x5t` (SHA-1 thumbprint) or, with
--- `use_sha256_thumbprint`, by `x5t#S256`.
--- Errors: `nil, err` (`kind` "aad"; `code` "file", "certificate", "key", "key_encrypted", "key_mismatch", …)
--- when the certificate or key cannot be used; raises on a missing or malformed option.
---@param opts lufa.aad.CertificateOptions
---@return lufa.aad.Credential|nil credential
---@return lufa.error? err
function aad.client_certificate(opts)
  opts = check_options("aad.client_certificate", opts, CERT_OPTIONS)
  local c, err = build_client_certificate(opts, getenv_of(opts.env))
  if not c then
    if type(err) == "string" then error("aad.client_certificate: " .. err, 2) end
    return nil, err
  end
  return c
end

-- The form fields proving the client's identity for one request.
local function client_proof_fields(c, url)
  if c.secret then return { { "client_secret", c.secret } } end
  local jwt, err = assertion.sign(c.material, { client_id = c.client_id, audience = url,
    use_sha256_thumbprint = c.use_sha256_thumbprint, send_x5c = c.send_x5c })
  if not jwt then return nil, err end
  return { { "client_assertion_type", JWT_BEARER }, { "client_assertion", jwt } }
end

local function fetch_app_token(c, wire)
  local url = authority.token_endpoint(c.authority, c.tenant, c.version)
  local fields = { { "grant_type", "client_credentials" }, { "client_id", c.client_id } }
  local function body()
    local proof, err = client_proof_fields(c, url)
    if not proof then return nil, err end
    local all = { table.unpack(fields) }
    for _, f in ipairs(proof) do all[#all + 1] = f end
    all[#all + 1] = { c.version == 1 and "resource" or "scope", wire }
    return request.form(all), proof[#proof][2]
  end
  local form, proof_value = body()
  if not form then return nil, proof_value end
  local opts = { method = "POST", url = url, headers = FORM_HEADERS, body = form, ca_file = c.ca_file,
    timeout = c.timeout }
  local ctx = { source = c.source, target = wire, url = url, secrets = { proof_value }, retry = c.retry }
  if c.material then
    -- an assertion is single-use (its jti is remembered): sign a fresh one for every retry
    ctx.before_retry = function()
      local fresh, fresh_proof = body()
      if fresh then
        opts.body = fresh
        ctx.secrets[#ctx.secrets + 1] = fresh_proof
      end
    end
  end
  return request.send(opts, ctx)
end

---------------------------------------------------------------------------------------------------------
-- Managed identity

local MI_OPTIONS = { client_id = "string", object_id = "string", resource_id = "string", endpoint = "string",
  probe = "boolean" }

local function build_managed_identity(opts, getenv)
  local loc, msg = mi.locate(opts, getenv)
  if not loc then return nil, msg end
  local fields = {
    source = loc.kind == "imds" and "aad.managed_identity (IMDS)" or "aad.managed_identity (App Service)",
    location = loc, endpoint = loc.url, client_id = opts.client_id, probe = opts.probe,
    proof = loc.selector and (loc.selector[1] .. "=" .. loc.selector[2]) or "system",
  }
  return new_credential(fields, opts)
end

---@class lufa.aad.ManagedIdentityOptions: lufa.aad.CommonOptions
---@field client_id? string a user-assigned identity (at most one of client_id, object_id, resource_id)
---@field object_id? string a user-assigned identity by object id
---@field resource_id? string a user-assigned identity by ARM resource id
---@field endpoint? string IMDS base or token URL (default AZURE_POD_IDENTITY_AUTHORITY_HOST, else http://169.254.169.254)
---@field probe? boolean the first request is one quick try and an unreachable endpoint is "unavailable"

--- A managed identity: App Service / Functions when IDENTITY_ENDPOINT and IDENTITY_HEADER are set (and no
--- `endpoint` is given), else the VM's IMDS. Default: the system-assigned identity.
--- Errors: raises on malformed options.
---@param opts? lufa.aad.ManagedIdentityOptions
---@return lufa.aad.Credential credential
function aad.managed_identity(opts)
  opts = check_options("aad.managed_identity", opts, MI_OPTIONS)
  local c, msg = build_managed_identity(opts, getenv_of(opts.env))
  if not c then error("aad.managed_identity: " .. msg, 2) end
  return c
end

-- What tells "no managed identity here" apart from a real failure while probing.
local function unavailable(err)
  return err.cause ~= nil or err.status == 400 or err.status == 404
end

local function fetch_mi_token(c, wire)
  local resource = authority.to_resource(wire)
  local opts = mi.request(c.location, resource)
  opts.ca_file, opts.timeout = c.ca_file, c.timeout
  local ctx = { source = c.source, target = resource, url = c.location.url, retry = c.retry,
    secrets = c.location.header and { c.location.header } or nil,
    default_retry = c.location.kind == "imds" and request.IMDS_RETRY or request.AAD_RETRY }
  local probing = c.probe and not c.probed
  if probing then
    ctx.retry = { attempts = 1 }
    opts.connect_timeout = 1
  end
  local tok, err = request.send(opts, ctx)
  if tok then c.probed = true end
  if probing and err and unavailable(err) then err.unavailable = true end
  return tok, err
end

---------------------------------------------------------------------------------------------------------
-- Tokens

-- The target as sent on the wire: v2 app credentials take a scope, v1 and managed identity a resource.
local function wire_target(c, target)
  if c.location or c.version == 1 then return authority.to_resource(target) end
  return authority.to_scope(target)
end

--- An access token, from the process-wide cache when it is fresh enough.
--- Errors: `nil, err` (`kind` "aad"; `code` the AADSTS code such as "AADSTS7000215", else the service's
--- error or a transport code; `error`, `description`, `correlation_id`, `trace_id`, `status`); raises when
--- `resource_or_scope` is not a single resource or scope.
---@async
---@param resource_or_scope string e.g. "https://storage.azure.com/" or "https://storage.azure.com/.default"
---@return lufa.secret|nil token
---@return integer|lufa.error expires_on Unix seconds, or the error
function Credential:token(resource_or_scope)
  if getmetatable(self) ~= Credential then error("bad self to 'token' (lufa.aad.credential expected; use cred:token)", 2) end
  local target, msg = authority.check_target(resource_or_scope)
  if not target then error("bad argument #1 to 'token' (" .. msg .. ")", 2) end
  if self.sources then return self:_chain_token(target) end
  local wire = wire_target(self, target)
  local fetch = self.location and fetch_mi_token or fetch_app_token
  return cache.get(key_of(self, wire, self.proof), function() return fetch(self, wire) end, self.policy)
end

--- The value of an Authorization header for the resource: "Bearer <token>", as a lufa.secret.
--- Errors: as `token`.
---@async
---@param resource_or_scope string
---@return lufa.secret|nil value the header's value
---@return integer|lufa.error expires_on Unix seconds, or the error
function Credential:authorization(resource_or_scope)
  local tok, expires_on = self:token(resource_or_scope)
  if not tok then return nil, expires_on end
  return "Bearer " .. tok, expires_on
end

---------------------------------------------------------------------------------------------------------
-- Environment and the default chain

local ENV_OPTIONS = { authority = "string", version = "version" }

local function environment(opts, getenv)
  local function var(name)
    local v = getenv(name)
    if v == "" then return nil end
    return v
  end
  local tenant, client = var("AZURE_TENANT_ID"), var("AZURE_CLIENT_ID")
  local secret_value, cert_path = var("AZURE_CLIENT_SECRET"), var("AZURE_CLIENT_CERTIFICATE_PATH")
  local fail = function(code, message)
    return nil, E.new{ kind = "aad", code = code, unavailable = code == "unavailable", source = "aad.environment",
      message = "aad.environment: " .. message }
  end
  if not (tenant and client and (secret_value or cert_path)) then
    local missing = {}
    if not tenant then missing[#missing + 1] = "AZURE_TENANT_ID" end
    if not client then missing[#missing + 1] = "AZURE_CLIENT_ID" end
    if not (secret_value or cert_path) then missing[#missing + 1] = "AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH" end
    return fail("unavailable", "not configured (missing " .. table.concat(missing, ", ") .. ")")
  end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.tenant, o.client_id = tenant, client
  local c, err
  if secret_value then
    o.client_secret = secret(secret_value)
    c, err = build_client_secret(o, getenv)
  else
    o.certificate = cert_path
    local chain = (var("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN") or ""):lower()
    o.send_x5c = chain == "true" or chain == "1"
    c, err = build_client_certificate(o, getenv)
  end
  if not c then
    if type(err) == "string" then return fail("config", err) end
    err.message = "aad.environment: " .. err.message
    return nil, err
  end
  return c
end

---@class lufa.aad.EnvironmentOptions: lufa.aad.CommonOptions
---@field authority? string as for client_secret
---@field version? 1|2 as for client_secret

--- A credential from the Azure SDKs' environment variables: AZURE_TENANT_ID and AZURE_CLIENT_ID with
--- AZURE_CLIENT_SECRET (client secret) or else AZURE_CLIENT_CERTIFICATE_PATH (a PEM holding the certificate
--- and its key; AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=true adds `x5c`); AZURE_AUTHORITY_HOST. The `env` option
--- replaces the process environment: a table of variables or a function like os.getenv.
--- Errors: `nil, err` (`code` "unavailable" when the variables are not set, "config" when they are
--- malformed, or a certificate error).
---@param opts? lufa.aad.EnvironmentOptions
---@return lufa.aad.Credential|nil credential
---@return lufa.error? err
function aad.environment(opts)
  opts = check_options("aad.environment", opts, ENV_OPTIONS)
  local o = {}
  for k, v in pairs(opts) do if k ~= "env" then o[k] = v end end
  return environment(o, getenv_of(opts.env))
end

---@class lufa.aad.DefaultOptions: lufa.aad.CommonOptions
---@field endpoint? string for the managed identity

--- The default chain: the environment credential, then a managed identity (user-assigned by
--- AZURE_CLIENT_ID when that is set). The first source that produces a token is used from then on; its
--- errors list what each source said (`err.sources`).
---@param opts? lufa.aad.DefaultOptions
---@return lufa.aad.Credential credential
function aad.default(opts)
  opts = check_options("aad.default", opts, { endpoint = "string" })
  local getenv = getenv_of(opts.env)
  local common = {}
  for k in pairs(COMMON) do common[k] = opts[k] end
  local sources = {}
  local env_cred, env_err = environment(common, getenv)
  sources[1] = env_cred and { cred = env_cred } or { name = "aad.environment", err = env_err }
  local mi_opts = {}
  for k, v in pairs(common) do mi_opts[k] = v end
  mi_opts.endpoint, mi_opts.probe, mi_opts.client_id = opts.endpoint, true, getenv("AZURE_CLIENT_ID")
  if mi_opts.client_id == "" then mi_opts.client_id = nil end
  local mi_cred, mi_msg = build_managed_identity(mi_opts, getenv)
  sources[2] = mi_cred and { cred = mi_cred }
    or { name = "aad.managed_identity", err = E.new{ kind = "aad", code = "config", message = mi_msg } }
  return setmetatable({ source = "aad.default", sources = sources }, Credential)
end

function Credential:_chain_token(target)
  if self.chosen then return self.chosen:token(target) end
  local said = {}
  local last
  for _, s in ipairs(self.sources) do
    local tok, expires_on, err
    if s.cred then
      tok, err = s.cred:token(target)
      if tok then
        expires_on = err
        self.chosen = s.cred
        return tok, expires_on
      end
    else
      err = s.err
    end
    said[#said + 1] = { source = s.cred and s.cred.source or s.name, error = err }
    last = err
    if not err.unavailable and s.cred then break end
  end
  local lines = {}
  for _, a in ipairs(said) do lines[#lines + 1] = tostring(a.error) end
  return nil, E.new{
    kind = "aad", code = last.unavailable and "unavailable" or last.code, status = last.status,
    error = last.error, description = last.description, correlation_id = last.correlation_id,
    trace_id = last.trace_id, sources = said,
    message = "aad.default: no credential produced a token: " .. table.concat(lines, "; "),
  }
end

--- Forgets every cached token (the next request goes to the service).
function aad.clear_cache()
  cache.clear()
end

--- The v2 scope for a target: a scope stays as it is; a resource loses one trailing '/' and gains
--- "/.default", except identifiers that must keep the slash (classic ARM, SQL), which get "//.default".
---@nodiscard
---@param target string resource or scope
---@return string scope
aad.to_scope = authority.to_scope
--- The v1 resource (and managed-identity resource) for a target: a scope loses its "/.default".
---@nodiscard
---@param target string resource or scope
---@return string resource
aad.to_resource = authority.to_resource

return aad
