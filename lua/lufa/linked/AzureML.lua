--- The `AzureML` linked service: an Azure ML Studio (classic) web service.
-- typeProperties: `mlEndpoint` (the BES URL), `apiKey`, `updateResourceEndpoint` (classic endpoint PATCH URL,
-- or an Azure Resource Manager web-service URL), and for the latter `servicePrincipalId`,
-- `servicePrincipalKey`, `tenant`. Secrets may be plain strings or SecureString objects.
-- The Azure AD authority host is lufa's optional `authorityHost`, else AZURE_AUTHORITY_HOST, else the
-- public cloud's. lufa's optional `requestTimeout` is the seconds one HTTP request to the service (or to
-- Azure AD for it) may take before it counts as lost (default 60).
-- @module lufa.linked.AzureML
local secret = require "lufa.secret"
local L = require "lufa.pipeline.lenient"
local azureml = require "lufa.azureml"
local endpoint = require "lufa.linked.endpoint"

local M = {}

local ARM_RESOURCE = "https://management.azure.com/"

local function as_secret(v)
  if v == nil or secret.is(v) then return v end
  return secret(tostring(v))
end

function M.validate(props, report)
  local tp = L.get(props, "typeProperties")
  if tp == nil then
    report:error("", "an AzureML linked service needs typeProperties")
    return
  end
  if L.get(tp, "mlEndpoint") == nil then report:error(".typeProperties", "AzureML requires \"mlEndpoint\"") end
  if L.get(tp, "apiKey") == nil then report:error(".typeProperties", "AzureML requires \"apiKey\"") end
  endpoint.validate(report, ".typeProperties.mlEndpoint", L.get(tp, "mlEndpoint"), "AzureML")
  endpoint.validate(report, ".typeProperties.authorityHost", L.get(tp, "authorityHost"), "AzureML")
  local timeout = L.get(tp, "requestTimeout")
  if timeout ~= nil and not endpoint.is_expression(timeout) and
      not (type(timeout) == "number" and timeout > 0 and timeout <= 3600) then
    report:error(".typeProperties.requestTimeout", "AzureML requestTimeout must be a number of seconds " ..
      "above 0 and at most 3600 (got %s)", type(timeout) == "string" and string.format("%q", timeout) or tostring(timeout))
  end
  local update = L.get(tp, "updateResourceEndpoint")
  endpoint.validate(report, ".typeProperties.updateResourceEndpoint", update, "AzureML")
  if type(update) == "string" and not endpoint.is_expression(update) and azureml.is_arm_endpoint(update) then
    for _, k in ipairs{ "servicePrincipalId", "servicePrincipalKey", "tenant" } do
      if L.get(tp, k) == nil then
        report:error(".typeProperties", "an Azure Resource Manager updateResourceEndpoint needs \"%s\"", k)
      end
    end
  end
end

--- The client: `{name, ml_endpoint, api_key, update_endpoint, is_arm, request_timeout, batch(), scoring(),
-- authorization()}`.
function M.client(service)
  local tp = service.properties
  local c = { name = service.name }
  c.ml_endpoint = endpoint.require(service, "mlEndpoint", L.get(tp, "mlEndpoint"))
  c.api_key = as_secret(L.get(tp, "apiKey"))
  if c.api_key == nil then endpoint.require(service, "apiKey", nil) end
  c.update_endpoint = endpoint.require(service, "updateResourceEndpoint", L.get(tp, "updateResourceEndpoint"), true)
  c.is_arm = c.update_endpoint ~= nil and azureml.is_arm_endpoint(c.update_endpoint)
  local sp_id, sp_key, tenant = L.get(tp, "servicePrincipalId"), as_secret(L.get(tp, "servicePrincipalKey")),
    L.get(tp, "tenant")
  local authority = L.get(tp, "authorityHost")
  c.request_timeout = tonumber(L.get(tp, "requestTimeout"))

  function c.batch(opts)
    opts = opts or {}
    return azureml.batch{ endpoint = c.ml_endpoint, api_key = c.api_key, poll_interval = opts.poll_interval,
      max_poll_interval = opts.max_poll_interval, timeout = c.request_timeout }
  end

  function c.scoring()
    return azureml.scoring{ endpoint = c.ml_endpoint, api_key = c.api_key, timeout = c.request_timeout }
  end

  --- "Bearer <token>" for Azure Resource Manager, from the service principal (cached and refreshed by lufa.aad;
  -- `fresh` drops the cached tokens first, after the service refused one as expired).
  local credential
  function c.authorization(fresh)
    if fresh then require("lufa.aad").clear_cache() end
    if not credential then
      for k, v in pairs{ servicePrincipalId = sp_id, servicePrincipalKey = sp_key, tenant = tenant } do
        if v == nil then endpoint.require(service, k, nil) end
      end
      credential = require("lufa.aad").client_secret{ tenant = tostring(tenant):gsub("^%s+", ""):gsub("%s+$", ""),
        client_id = tostring(sp_id), client_secret = sp_key, authority = authority, timeout = c.request_timeout }
    end
    return credential:authorization(ARM_RESOURCE)
  end

  return c
end

return M
