--- lufa.blob.connection: Azure Storage connection strings.
-- Parses `Key=Value;...` into the settings a blob client needs. Errors name the part that is missing or
-- malformed and never quote an account key or a SAS signature.
local E = require "lufa.error"
local secret = require "lufa.secret"
local crypto = require "lufa.crypto"

local connection = {}

--- The well-known development-storage account (the emulator's published key, not a secret of anyone's).
connection.DEV_ACCOUNT = "devstoreaccount1"
connection.DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
connection.DEV_ENDPOINT = "http://127.0.0.1:10000/devstoreaccount1"

-- Keys of other services, accepted and ignored.
local IGNORED = { queueendpoint = true, tableendpoint = true, fileendpoint = true, queuesecondaryendpoint = true,
  tablesecondaryendpoint = true, filesecondaryendpoint = true, blobsecondaryendpoint = true }
local KNOWN = { defaultendpointsprotocol = "DefaultEndpointsProtocol", accountname = "AccountName",
  accountkey = "AccountKey", endpointsuffix = "EndpointSuffix", blobendpoint = "BlobEndpoint",
  sharedaccesssignature = "SharedAccessSignature", usedevelopmentstorage = "UseDevelopmentStorage",
  developmentstorageproxyuri = "DevelopmentStorageProxyUri" }

local function fail(fmt, ...)
  return nil, E.new{ kind = "blob", code = "connection_string", message = "connection string: " .. fmt:format(...) }
end

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

--- Checks that a blob endpoint is an http(s) URL with a host; returns it without a trailing "/".
-- @return endpoint, or nil and a reason
function connection.check_endpoint(url)
  if type(url) ~= "string" then return nil, "is not a string" end
  local scheme, host = url:match("^(%a[%w+.-]*)://([^/?#]*)")
  if not scheme then return nil, "is not an absolute URL (expected http://host[:port][/path])" end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then return nil, "uses scheme '" .. scheme .. "' (expected http or https)" end
  if host == "" then return nil, "has no host" end
  if url:find("[?#]") then return nil, "must not carry a query or fragment" end
  return (url:gsub("/$", ""))
end

--- Decodes an account key (base64 text or a secret holding it) into a secret of the raw HMAC key bytes.
-- @return secret, or nil and a reason (which never quotes the key)
function connection.decode_key(key)
  if key == nil then return nil, "is missing" end
  if type(key) ~= "string" and not secret.is(key) then return nil, "must be a string or a lufa.secret" end
  local text = secret.is(key) and key or secret(key)
  local raw = crypto.base64_decode(text)
  if raw == nil then return nil, "is not valid base64" end
  local n = #secret.expose(raw)
  if n == 0 then return nil, "is empty" end
  return raw
end

--- Parses a connection string.
-- @tparam string|secret text the connection string (it usually holds a key, so a secret is welcome)
-- @treturn table `{account=, key= (secret of raw bytes, or nil), endpoint=, sas= (secret token, or nil)}`
-- @return nil, err (`err.kind` "blob", `err.code` "connection_string") naming the missing or malformed part
function connection.parse(text)
  if secret.is(text) then text = secret.expose(text) end
  if type(text) ~= "string" then return fail("expected a string, got %s", type(text)) end
  local values, order = {}, 0
  for pair in (text .. ";"):gmatch("([^;]*);") do
    order = order + 1
    pair = trim(pair)
    if pair ~= "" then
      local k, v = pair:match("^([^=]*)=(.*)$")
      if not k then
        -- never echo the text: it may be a key pasted in the wrong place
        return fail("part %d is not of the form Key=Value", order)
      end
      k = trim(k)
      local lk = k:lower()
      if k == "" then return fail("part %d has an empty key", order) end
      if values[lk] ~= nil then return fail("%s is given twice", KNOWN[lk] or k) end
      if not (KNOWN[lk] or IGNORED[lk]) then
        -- quote the name only when it looks like a setting name: a pasted key must not be echoed
        if #k <= 40 and k:match("^%a+$") then return fail("unknown setting '%s'", k) end
        return fail("part %d has an unknown setting name", order)
      end
      values[lk] = trim(v)
    end
  end

  if (values.usedevelopmentstorage or ""):lower() == "true" then
    local endpoint = connection.DEV_ENDPOINT
    if values.developmentstorageproxyuri then
      local proxy, why = connection.check_endpoint(values.developmentstorageproxyuri)
      if not proxy then return fail("DevelopmentStorageProxyUri %s", why) end
      endpoint = proxy:match("^(.-)/*$") .. "/" .. connection.DEV_ACCOUNT
    end
    return { account = connection.DEV_ACCOUNT, key = crypto.base64_decode(secret(connection.DEV_KEY)),
      endpoint = endpoint }
  elseif values.usedevelopmentstorage and values.usedevelopmentstorage:lower() ~= "false" then
    return fail("UseDevelopmentStorage must be true or false")
  end

  local settings = { account = values.accountname }
  if settings.account == "" then return fail("AccountName is empty") end
  if settings.account and not settings.account:match("^[%w-]+$") then
    return fail("AccountName must hold only letters, digits and '-'")
  end
  if values.accountkey then
    local key, why = connection.decode_key(values.accountkey)
    if not key then return fail("AccountKey %s (AccountKey=<redacted>)", why) end
    settings.key = key
  end
  if values.sharedaccesssignature then
    local sas = values.sharedaccesssignature:gsub("^%?", "")
    if not sas:find("sig=", 1, true) then
      return fail("SharedAccessSignature has no sig= parameter (SharedAccessSignature=<redacted>)")
    end
    settings.sas = secret(sas)
  end
  if settings.key and settings.sas then return fail("give AccountKey or SharedAccessSignature, not both") end

  if values.blobendpoint then
    local endpoint, why = connection.check_endpoint(values.blobendpoint)
    if not endpoint then return fail("BlobEndpoint %s", why) end
    settings.endpoint = endpoint
  else
    if not settings.account then return fail("AccountName is missing (or give BlobEndpoint)") end
    local protocol = (values.defaultendpointsprotocol or "https"):lower()
    if protocol ~= "https" and protocol ~= "http" then
      return fail("DefaultEndpointsProtocol must be http or https")
    end
    local suffix = values.endpointsuffix or "core.windows.net"
    if suffix == "" or suffix:find("[/%s]") then return fail("EndpointSuffix must be a DNS suffix such as core.windows.net") end
    settings.endpoint = ("%s://%s.blob.%s"):format(protocol, settings.account, suffix)
  end
  if settings.key and not settings.account then return fail("AccountName is missing (needed with AccountKey)") end
  if not settings.key and not settings.sas then
    return fail("has neither AccountKey nor SharedAccessSignature")
  end
  if not settings.account then
    -- a SAS connection string may omit the name: take it from the endpoint host (account.blob.suffix)
    settings.account = settings.endpoint:match("^%a+://([%w-]+)%.blob%.")
  end
  return settings
end

return connection
