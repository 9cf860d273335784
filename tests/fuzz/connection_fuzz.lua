--- Fuzzes Azure Storage connection strings: lufa.blob.connection.parse (as text and as a secret),
-- lufa.blob.client and a storage linked service built from one. Each returns settings or a client, or fails
-- with a lufa.error.
local E = require "lufa.error"
local blob = require "lufa.blob"
local connection = require "lufa.blob.connection"
local secret = require "lufa.secret"
local storage = require "lufa.linked.AzureStorage"

local function parsed(what, settings, err)
  if settings == nil then
    if not E.is(err) then error(what .. " gave nil without a lufa.error: " .. tostring(err)) end
    return
  end
  if type(settings.endpoint) ~= "string" then error(what .. " gave settings without an endpoint") end
  if settings.key == nil and settings.sas == nil then error(what .. " gave settings without a key or a SAS") end
end

local function raises_only_lufa_errors(what, ok, err)
  if not ok and not E.is(err) then error(what .. " raised something else than a lufa.error: " .. tostring(err)) end
end

return function(input)
  parsed("connection.parse", connection.parse(input))
  parsed("connection.parse(secret)", connection.parse(secret(input)))
  raises_only_lufa_errors("blob.client", pcall(blob.client, input))
  raises_only_lufa_errors("AzureStorage.client", pcall(storage.client,
    { name = "ls", properties = { typeProperties = { connectionString = input } } }))
end
