--- Fuzzes SAS URLs and endpoint URLs: lufa.blob.client{sas_url = …}, a storage linked service with a
-- sasUri, the endpoint checks of lufa.blob.connection and lufa.linked.endpoint, and lufa.redact on the text.
-- Each returns a value or (nil and a reason), or fails with a lufa.error.
local E = require "lufa.error"
local blob = require "lufa.blob"
local connection = require "lufa.blob.connection"
local endpoint = require "lufa.linked.endpoint"
local redact = require "lufa.redact"
local storage = require "lufa.linked.AzureStorage"

local function raises_only_lufa_errors(what, ok, err)
  if not ok and not E.is(err) then error(what .. " raised something else than a lufa.error: " .. tostring(err)) end
end

local function checked(what, url, why)
  if url == nil then
    if type(why) ~= "string" then error(what .. " gave nil without a reason") end
  elseif type(url) ~= "string" or not url:match("^[Hh][Tt][Tt][Pp][Ss]?://") then
    error(what .. " accepted something that is not an http(s) URL: " .. tostring(url))
  end
end

return function(input)
  raises_only_lufa_errors("blob.client{sas_url}", pcall(blob.client, { sas_url = input }))
  local ok, c = pcall(storage.client, { name = "ls", properties = { typeProperties = { sasUri = input } } })
  raises_only_lufa_errors("AzureStorage.client{sasUri}", ok, c)
  if ok then
    raises_only_lufa_errors("base_location", pcall(c.base_location))
    raises_only_lufa_errors("bes_reference", pcall(c.bes_reference, "container/model.ilearner"))
    raises_only_lufa_errors("blob()", pcall(c.blob))
  end
  checked("connection.check_endpoint", connection.check_endpoint(input))
  checked("endpoint.check", endpoint.check(input))
  local text = redact.text(input)
  if type(text) ~= "string" then error("redact.text gave " .. type(text)) end
end
