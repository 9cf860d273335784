--- The `AzureMLService` linked service: an Azure ML v2 workspace (`Microsoft.MachineLearningServices`).
-- typeProperties as ADF writes them: `subscriptionId`, `resourceGroupName`, `mlWorkspaceName` (required);
-- `servicePrincipalId`, `servicePrincipalKey` (SecureString), `tenant` (a service principal), or
-- `authentication: "MSI"` (the managed identity; `servicePrincipalId` then names a user-assigned one), else
-- the default credential chain (AZURE_* variables, then the managed identity).
-- lufa extensions, for sovereign clouds and the local stand-ins: `managementEndpoint` (default
-- https://management.azure.com), `authorityHost`, `pollIntervalSeconds` (the wait between polls of a job
-- or operation when the service names no Retry-After; default 10).
-- @module lufa.linked.AzureMLService
local secret = require "lufa.secret"
local L = require "lufa.pipeline.lenient"
local endpoint = require "lufa.linked.endpoint"
local workspace = require "lufa.azureml.v2.workspace"

local M = {}

local REQUIRED = { "subscriptionId", "resourceGroupName", "mlWorkspaceName" }

function M.validate(props, report)
  local tp = L.get(props, "typeProperties")
  if tp == nil then
    report:error("", "an AzureMLService linked service needs typeProperties")
    return
  end
  for _, k in ipairs(REQUIRED) do
    if L.get(tp, k) == nil then report:error(".typeProperties", "AzureMLService requires \"%s\"", k) end
  end
  local auth = L.get(tp, "authentication")
  if auth ~= nil and not endpoint.is_expression(auth) and tostring(auth):upper() ~= "MSI" then
    report:error(".typeProperties.authentication", "AzureMLService authentication must be \"MSI\" (or absent " ..
      "for a service principal), got '%s'", tostring(auth))
  end
  local sp = L.get(tp, "servicePrincipalKey") ~= nil
  if sp and (auth == nil) then
    for _, k in ipairs{ "servicePrincipalId", "tenant" } do
      if L.get(tp, k) == nil then report:error(".typeProperties", "a servicePrincipalKey needs \"%s\" too", k) end
    end
  end
  endpoint.validate(report, ".typeProperties.managementEndpoint", L.get(tp, "managementEndpoint"), "AzureMLService")
  endpoint.validate(report, ".typeProperties.authorityHost", L.get(tp, "authorityHost"), "AzureMLService")
  local poll = L.get(tp, "pollIntervalSeconds")
  if poll ~= nil and not endpoint.is_expression(poll) and not (L.number(poll) and L.number(poll) > 0) then
    report:error(".typeProperties.pollIntervalSeconds", "pollIntervalSeconds must be a number of seconds above 0")
  end
end

local function text(service, tp, key)
  local v = L.get(tp, key)
  if v == nil or v == "" then endpoint.require(service, key, nil) end
  return (tostring(v):gsub("^%s+", ""):gsub("%s+$", ""))
end

--- The client: `{name, subscription_id, resource_group, workspace_name, workspace(opts)}`; `workspace` makes
-- (once) the lufa.azureml.v2.workspace client, `opts.sleep` being the activity's.
function M.client(service)
  local tp = service.properties
  local c = { name = service.name, subscription_id = text(service, tp, "subscriptionId"),
    resource_group = text(service, tp, "resourceGroupName"), workspace_name = text(service, tp, "mlWorkspaceName") }
  local management = endpoint.require(service, "managementEndpoint", L.get(tp, "managementEndpoint"), true)
  local authority = L.get(tp, "authorityHost")
  local poll = L.number(L.get(tp, "pollIntervalSeconds"))
  local key = L.get(tp, "servicePrincipalKey")
  local msi = tostring(L.get(tp, "authentication") or ""):upper() == "MSI"
  local opts = { subscription_id = c.subscription_id, resource_group = c.resource_group,
    workspace = c.workspace_name, management_endpoint = management and management:gsub("/+$", ""),
    authority = authority, poll_interval = poll, max_poll_interval = poll and math.max(poll, 60) or nil }
  if msi then
    opts.managed_identity, opts.client_id = true, L.get(tp, "servicePrincipalId")
  elseif key ~= nil then
    opts.client_secret = secret.is(key) and key or secret(tostring(key))
    opts.client_id, opts.tenant = text(service, tp, "servicePrincipalId"), text(service, tp, "tenant")
  end
  local ws
  function c.workspace(o)
    if not ws then ws = workspace.new(opts) end
    if o and o.sleep then ws.sleep = o.sleep end
    return ws
  end
  return c
end

return M
