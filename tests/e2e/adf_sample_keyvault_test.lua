-- The ADF sample factory run by `lufa run` with its keys held in the Key Vault stand-in
-- (examples/adf-retraining/local-keyvault.json: every key an AzureKeyVaultSecret reference), as a new
-- user would: store the keys with `demo.lua vault`, run, and find the keys nowhere in what lufa printed
-- or recorded. The vault's request log shows each secret fetched once per run.
local json = require "lufa.json"
local emulators = require "tests.support.emulators"

local sample = emulators.sample
local emu, data_dir, gens

local function vault_gets()
  local names = {}
  for _, r in ipairs(emu:requests{ service = "keyvault" }) do
    if r.route == "keyvault.secret" and r.status == 200 then names[#names + 1] = r.path:match("/secrets/([^/?]+)") end
  end
  table.sort(names)
  return names
end

describe("the ADF sample with its keys in Key Vault", function()
  setup(function()
    emu, data_dir, gens = emulators.start_with_data(200)
  end)

  teardown(function() emulators.stop_with_data(emu, data_dir) end)

  it("runs after demo.lua vault stored the keys, fetching each once, printing and recording none", function()
    emu:upload(sample.INPUT, gens[2].file)
    local stored = emu:lufa{ "examples/adf-retraining/demo.lua", "vault" }
    assert.are.equal(0, stored.status, stored.output)
    emu:clear_requests()
    local store = data_dir .. "/runs.db"
    local r = emu:run_sample(sample.KEYVAULT_OVERRIDE, { "--json", "--store", store })
    assert.are.equal(0, r.status, r.output)
    assert.are.equal("Succeeded", r.json.pipelineRun.status)
    assert.are.same({ "scoring-api-key", "scoring-principal-key", "storage-connection-string", "training-api-key" },
      vault_gets())
    local recorded = emu:lufa{ "runs", "show", r.json.pipelineRun.runId, "--store", store, "--json" }
    assert.are.equal(0, recorded.status, recorded.output)
    for name, value in pairs(emu:secrets()) do
      assert.is_falsy(r.output:find(value, 1, true), name .. " printed")
      assert.is_falsy(recorded.output:find(value, 1, true), name .. " recorded")
    end
  end)

  it("fails naming the linked service, the secret and the vault's answer when a key is missing", function()
    emu:reset()
    local r = emu:run_sample(sample.KEYVAULT_OVERRIDE, { "--json" })
    assert.are.equal(1, r.status, r.output)
    local train = emulators.activity_run(r.json, sample.TRAINING)
    assert.are.equal("Failed", train.status)
    local message = json.encode(train.error)
    assert.is_truthy(message:find("secret 'training-api-key'", 1, true), message)
    assert.is_truthy(message:find("Key Vault linked service 'KeyVault'", 1, true), message)
    assert.is_truthy(message:find("404 SecretNotFound", 1, true), message)
  end)
end)
