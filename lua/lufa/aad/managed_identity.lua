--- lufa.aad.managed_identity: where and how a managed-identity token is asked for.
-- Azure VM / VMSS: IMDS (`Metadata: true`, api-version 2018-02-01, user-assigned by client_id, object_id or
-- msi_res_id). App Service / Functions: IDENTITY_ENDPOINT with the X-IDENTITY-HEADER secret (api-version
-- 2019-08-01, user-assigned by client_id, principal_id or mi_res_id).
local http = require "lufa.http"
local secret = require "lufa.secret"

local mi = {}

mi.IMDS_URL = "http://169.254.169.254/metadata/identity/oauth2/token"
mi.IMDS_PATH = "/metadata/identity/oauth2/token"

--- Picks the platform and its endpoint.
-- @tparam table opts `endpoint` (an IMDS base or token URL), `client_id` | `object_id` | `resource_id`
-- @tparam function getenv
-- @return `{kind = "imds"|"app_service", url =, header = secret|nil, selector = {name, value}|nil}`
--   or nil and a message
function mi.locate(opts, getenv)
  local given = {}
  for _, k in ipairs{ "client_id", "object_id", "resource_id" } do
    if opts[k] ~= nil then
      if type(opts[k]) ~= "string" or opts[k] == "" then
        return nil, "option '" .. k .. "' must be a non-empty string"
      end
      given[#given + 1] = k
    end
  end
  if #given > 1 then
    return nil, "give at most one of client_id, object_id, resource_id (got " .. table.concat(given, " and ") .. ")"
  end
  local which = given[1]
  local identity_endpoint, identity_header = getenv("IDENTITY_ENDPOINT"), getenv("IDENTITY_HEADER")
  local loc
  if opts.endpoint == nil and identity_endpoint and identity_endpoint ~= "" and identity_header
      and identity_header ~= "" then
    loc = { kind = "app_service", url = identity_endpoint, header = secret(identity_header) }
    local names = { client_id = "client_id", object_id = "principal_id", resource_id = "mi_res_id" }
    if which then loc.selector = { names[which], opts[which] } end
  else
    local url = opts.endpoint or getenv("AZURE_POD_IDENTITY_AUTHORITY_HOST") or mi.IMDS_URL
    if type(url) ~= "string" or not url:find("^https?://") then
      return nil, "option 'endpoint' must be an http(s) URL, got " .. tostring(url)
    end
    url = url:gsub("/+$", "")
    if not url:find("^https?://[^/]+/.") then url = url .. mi.IMDS_PATH end
    loc = { kind = "imds", url = url }
    local names = { client_id = "client_id", object_id = "object_id", resource_id = "msi_res_id" }
    if which then loc.selector = { names[which], opts[which] } end
  end
  return loc
end

--- The request options for a token.
-- @tparam table loc from `locate`
-- @tparam string resource the resource (managed identity takes no scope)
function mi.request(loc, resource)
  local query = { "resource=" .. http.urlencode(resource) }
  local headers
  if loc.kind == "imds" then
    table.insert(query, 1, "api-version=2018-02-01")
    headers = { Metadata = "true" }
  else
    query[#query + 1] = "api-version=2019-08-01"
    headers = { ["X-IDENTITY-HEADER"] = loc.header }
  end
  if loc.selector then query[#query + 1] = loc.selector[1] .. "=" .. http.urlencode(loc.selector[2]) end
  local sep = loc.url:find("?", 1, true) and "&" or "?"
  -- the metadata service is link-local: a configured proxy must never see this request (aad.md §7.1)
  return { method = "GET", url = loc.url .. sep .. table.concat(query, "&"), headers = headers,
    no_proxy = loc.kind == "imds" or nil }
end

return mi
