--- lufa.aad.authority: authority hosts, tenants, token endpoints and the resource/scope forms of a target.
-- Pure functions (no I/O), shared by the credential kinds in lufa.aad.
local authority = {}

--- The public cloud's authority host, used when neither an option nor AZURE_AUTHORITY_HOST names one.
authority.DEFAULT_HOST = "https://login.microsoftonline.com"

-- Hosts that may be reached over plain http: the local stand-ins listen on loopback and nothing there
-- leaves the machine. Anything else must be https, as the Azure SDKs insist.
local LOOPBACK = { ["127.0.0.1"] = true, ["localhost"] = true, ["[::1]"] = true }

--- Whether a URL's host is a loopback address.
-- @tparam string url
-- @treturn boolean
function authority.is_loopback(url)
  local host = url:match("^%a[%w+.-]*://([^/?#]+)")
  if not host then return false end
  host = host:gsub("^[^@]*@", "")
  host = host:match("^(%[[^%]]+%])") or host:match("^([^:]+)")
  return LOOPBACK[host:lower()] == true
end

--- Normalises an authority host: adds `https://` when there is no scheme, drops trailing slashes,
-- refuses a non-https authority unless it is on loopback.
-- @tparam string value e.g. "login.microsoftonline.us" or "https://login.microsoftonline.com/"
-- @treturn string the normalised authority, or nil and a message naming what is wrong
function authority.normalize(value)
  if type(value) ~= "string" or value == "" then return nil, "expected an authority host such as " .. authority.DEFAULT_HOST end
  local v = value:gsub("%s+$", ""):gsub("^%s+", "")
  if not v:find("^%a[%w+.-]*://") then v = "https://" .. v end
  v = v:gsub("/+$", "")
  local scheme, rest = v:match("^(%a[%w+.-]*)://(.+)$")
  if not scheme or rest == "" then return nil, "'" .. value .. "' is not a URL" end
  scheme = scheme:lower()
  if scheme ~= "https" and not (scheme == "http" and authority.is_loopback(v)) then
    return nil, "'" .. value .. "' must use https (plain http is allowed only on loopback)"
  end
  if rest:find("[?#]") then return nil, "'" .. value .. "' must not carry a query or fragment" end
  return scheme .. "://" .. rest
end

--- Checks a tenant (GUID or domain) before it goes into a URL path: letters, digits, '-' and '.' only.
-- @tparam string tenant
-- @treturn string the tenant, or nil and a message
function authority.check_tenant(tenant)
  if type(tenant) ~= "string" or tenant == "" then
    return nil, "expected a tenant id (GUID) or domain such as contoso.onmicrosoft.com"
  end
  if not tenant:find("^[%w%.%-]+$") then
    return nil, "tenant '" .. tenant .. "' may contain only letters, digits, '-' and '.'"
  end
  return tenant
end

--- The token endpoint for a protocol version.
-- @tparam string host normalised authority
-- @tparam string tenant checked tenant
-- @tparam integer version 1 (`/oauth2/token`, resource) or 2 (`/oauth2/v2.0/token`, scope)
function authority.token_endpoint(host, tenant, version)
  return host .. "/" .. tenant .. (version == 1 and "/oauth2/token" or "/oauth2/v2.0/token")
end

-- Resource identifiers whose audience keeps the trailing slash: Entra cuts a scope at its last '/',
-- so these need "//.default" to come back as "<id>/".
local KEEPS_SLASH = {
  ["https://management.core.windows.net/"] = true,
  ["https://database.windows.net/"] = true,
}

--- Whether a target is already in scope form (`…/.default`).
function authority.is_scope(target)
  return target:find("/%.default$") ~= nil
end

--- The v2 scope for a target: a scope stays as it is; a resource loses one trailing '/' and gains
-- "/.default", except identifiers that must keep the slash (classic ARM, SQL), which get "//.default".
-- @tparam string target resource or scope
-- @treturn string scope
function authority.to_scope(target)
  if authority.is_scope(target) then return target end
  if KEEPS_SLASH[target] then return target .. "/.default" end
  return (target:gsub("/$", "")) .. "/.default"
end

--- The v1 resource (and managed-identity resource) for a target: a scope loses its "/.default".
-- @tparam string target resource or scope
-- @treturn string resource
function authority.to_resource(target)
  return target:match("^(.+)/%.default$") or target
end

--- Checks a token target given by a caller: a non-empty string without spaces (one resource only).
-- @return the target, or nil and a message
function authority.check_target(target)
  if type(target) ~= "string" or target == "" then
    return nil, "expected a resource such as https://storage.azure.com/ or a scope such as https://storage.azure.com/.default"
  end
  if target:find("%s") then
    return nil, "'" .. target .. "' names several scopes; a client-credentials token is for one resource"
  end
  return target
end

return authority
