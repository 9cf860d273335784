--- The `AzureKeyVault` linked service: a vault other linked services take secrets from
-- (`{"type": "AzureKeyVaultSecret", "store": {"referenceName": …}, "secretName": …, "secretVersion": …}`).
-- typeProperties: `baseUrl` (https://name.vault.azure.net). lufa reaches the vault with lufa.aad's default
-- chain (the environment credential, then the managed identity), as ADF uses the factory's managed
-- identity; `servicePrincipalId` + `servicePrincipalKey` + `tenant` (and `authorityHost`) name a service
-- principal instead.
-- @module lufa.linked.AzureKeyVault
local secret = require "lufa.secret"
local L = require "lufa.pipeline.lenient"
local endpoint = require "lufa.linked.endpoint"
local keyvault = require "lufa.keyvault"

local M = {}

function M.validate(props, report)
  local tp = L.get(props, "typeProperties")
  if L.get(tp or {}, "baseUrl") == nil then
    report:error(".typeProperties", "AzureKeyVault requires \"baseUrl\" (https://<vault>.vault.azure.net)")
    return
  end
  endpoint.validate(report, ".typeProperties.baseUrl", L.get(tp, "baseUrl"), "AzureKeyVault")
  local sp_id = L.get(tp, "servicePrincipalId")
  if sp_id ~= nil and (L.get(tp, "servicePrincipalKey") == nil or L.get(tp, "tenant") == nil) then
    report:error(".typeProperties", "servicePrincipalId needs \"servicePrincipalKey\" and \"tenant\" too")
  end
end

--- The client: `{name, vault, secret(name, version)}`; `secret` gives a lufa.secret or nil, err.
function M.client(service)
  local tp = service.properties
  local c = { name = service.name }
  c.vault = endpoint.require(service, "baseUrl", L.get(tp, "baseUrl"))
  local aad = require "lufa.aad"
  local credential
  local sp_id = L.get(tp, "servicePrincipalId")
  if sp_id ~= nil then
    local key = L.get(tp, "servicePrincipalKey")
    credential = aad.client_secret{ tenant = tostring(L.get(tp, "tenant")), client_id = tostring(sp_id),
      client_secret = secret.is(key) and key or secret(tostring(key)), authority = L.get(tp, "authorityHost") }
  else
    credential = aad.default()
  end
  local kv = keyvault.client{ vault = tostring(c.vault), credential = credential }
  function c.secret(name, version) return kv:secret(name, version) end
  return c
end

return M
