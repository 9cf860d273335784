-- lufa.azureml's pure parts: URL normalisation, the model swap in a web-service definition (with JSON
-- fidelity: nothing else changes), and the classic/ARM decision.
local azureml = require "lufa.azureml"
local json = require "lufa.json"

local DEFINITION = [[{
  "id": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.MachineLearning/webServices/ws",
  "name": "ws", "type": "Microsoft.MachineLearning/webServices", "location": "South Central US",
  "tags": {},
  "properties": {
    "packageType": "Graph", "provisioningState": "Succeeded", "title": "Rentals", "readOnly": false,
    "realtimeConfiguration": {"maxConcurrentCalls": 4},
    "assets": {
      "asset1": {"name": "Import Data", "type": "Module", "locationInfo": {"uri": "aml://module/1", "credentials": ""}},
      "asset2": {"name": "Rentals Model [trained model]", "type": "Resource",
                 "locationInfo": {"uri": "https://old.blob.core.windows.net/m/old.ilearner"},
                 "outputPorts": {"Results dataset": {"type": "Dataset"}}},
      "asset3": {"Name": "Other [trained model]", "Type": "Resource", "LocationInfo": {"Uri": "https://x/y.ilearner"}}
    },
    "package": {"nodes": {"node1": {"assetId": "asset1", "parameters": {}}}, "edges": [], "graphParameters": {}},
    "parameters": {"Holdout fraction": {"value": 0.2}}, "exampleRequest": null
  }
}]]

local function deep_equal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b or (a ~= a and b ~= b) end
  if json.type(a) ~= json.type(b) then return false end
  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

describe("lufa.azureml", function()
  it("normalises BES URLs with or without /jobs, api-version and surrounding spaces", function()
    local base = "https://ussouthcentral.services.azureml.net/workspaces/ws/services/svc"
    assert.equal(base, azureml.service_base(base .. "/jobs"))
    assert.equal(base, azureml.service_base("  " .. base .. "/jobs?api-version=2.0 "))
    assert.equal(base, azureml.service_base(base .. "/execute?api-version=2.0&details=true"))
    assert.equal(base, azureml.service_base(base .. "/"))
    assert.has_error(function() azureml.service_base("not a url") end)
  end)

  it("tells an Azure Resource Manager update endpoint from a classic one", function()
    assert.is_true(azureml.is_arm_endpoint("https://management.azure.com/subscriptions/s/resourceGroups/r/" ..
      "providers/Microsoft.MachineLearning/webServices/w?api-version=2016-05-01-preview"))
    assert.is_false(azureml.is_arm_endpoint(
      "https://management.azureml.net/workspaces/ws/webservices/svc/endpoints/endpoint2"))
  end)

  it("swaps only the named model's location; the rest of the definition survives decode → encode", function()
    local def = assert(json.decode(DEFINITION))
    assert(azureml.set_model_location(def, "Rentals Model [trained model]", "https://new/m/new.ilearner"))
    local round = assert(json.decode(json.encode(def)))
    local expected = assert(json.decode(DEFINITION))
    expected.properties.assets.asset2.locationInfo.uri = "https://new/m/new.ilearner"
    assert.is_true(deep_equal(expected, round))
    -- fidelity details an ARM PATCH depends on
    assert.equal("array", json.type(round.properties.package.edges))
    assert.equal("object", json.type(round.tags))
    assert.equal("integer", json.type(round.properties.realtimeConfiguration.maxConcurrentCalls))
    assert.equal(json.null, round.properties.exampleRequest)
  end)

  it("matches member names in any case, as Azure's own examples mix them", function()
    local def = assert(json.decode(DEFINITION))
    assert(azureml.set_model_location(def, "Other [trained model]", "https://new/other.ilearner"))
    assert.equal("https://new/other.ilearner", def.properties.assets.asset3.LocationInfo.Uri)
    assert.is_nil(def.properties.assets.asset3.LocationInfo.uri)
  end)

  it("names the trained models that exist when the asked one is missing", function()
    local def = assert(json.decode(DEFINITION))
    local ok, err = azureml.set_model_location(def, "ADFV2Sample Model [trained model]", "https://x")
    assert.is_nil(ok)
    assert.equal("TrainedModelNotFound", err.code)
    assert.matches("'ADFV2Sample Model %[trained model%]'", err.message)
    assert.matches("'Other %[trained model%]', 'Rentals Model %[trained model%]'", err.message)
    assert.same({ "Other [trained model]", "Rentals Model [trained model]" }, azureml.resource_assets(def))
  end)

  it("keeps API keys out of the client's printed form", function()
    local bes = azureml.batch{ endpoint = "https://h/workspaces/w/services/s/jobs", api_key = "k3y-value" }
    assert.equal("<redacted>", tostring(bes.authorization))
    assert.not_matches("k3y%-value", tostring(bes.authorization))
  end)
end)
