-- No secret of the sample's linked services leaks: API keys, the service principal's secret, the storage
-- account key and the SAS signatures lufa makes or receives are looked for, by value, in everything a user
-- or a program gets: `lufa run` output (stdout and stderr, text and --json, successful and failed runs),
-- `lufa validate`, and in-process run records and events.
local json = require "lufa.json"
local http = require "lufa.http"
local aad = require "lufa.aad"
local pipeline = require "lufa.pipeline"
local lufa = require "lufa"
local emulators = require "tests.support.emulators"

local sample = emulators.sample
local emu, data_dir, gens

-- The forms a secret can take in text: as is, JSON-escaped, URL-encoded.
local function forms(value)
  local out = { value }
  local escaped = json.encode(value):sub(2, -2)
  if escaped ~= value then out[#out + 1] = escaped end
  local encoded = http.urlencode(value)
  if encoded ~= value then out[#out + 1] = encoded end
  return out
end

-- Every secret value to look for, name → value.
local function secret_values(extra)
  local s = emu:secrets()
  local n = 0
  for _ in pairs(s) do n = n + 1 end
  assert(n == 7, "the stand-ins' env lacks some of the secrets to look for")
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

-- Fails naming the secret and where it appeared.
local function assert_clean(text, where, secrets)
  for name, value in pairs(secrets) do
    for _, form in ipairs(forms(value)) do
      local at = text:find(form, 1, true)
      assert.is_nil(at, string.format("%s leaks %s at byte %s: ...%s...", where, name, tostring(at),
        at and text:sub(math.max(1, at - 60), at - 1) or ""))
    end
  end
  -- shapes no output should have whatever the values: a SAS signature, an account key, a bearer token
  for sig in text:gmatch("[%?&]sig=([^&\"'%s]*)") do
    assert.is_true(sig == "" or sig == "REDACTED" or sig:find("redacted", 1, true) ~= nil,
      where .. " has a SAS signature: sig=" .. sig:sub(1, 6) .. "...")
  end
  for key in text:gmatch("AccountKey=([^;\"'%s]*)") do
    assert.is_true(key:find("redacted", 1, true) ~= nil or key == "key", where .. " has an account key")
  end
  assert.is_nil(text:find("eyJ[%w_-]+%.eyJ[%w_-]+%."), where .. " has a JSON Web Token")
end

-- The SAS signature in the URI lufa gave the ARM web service for the model (the service keeps it).
local function arm_model_sas()
  local cred = aad.client_secret{ tenant = emu.env.LUFA_EMU_TENANT_ID, client_id = emu.env.LUFA_EMU_CLIENT_ID,
    client_secret = emu.env.LUFA_EMU_CLIENT_SECRET, authority = emu.env.LUFA_EMU_AAD_AUTHORITY }
  local res = assert(http.request{ url = emu.env.LUFA_EMU_ML_ARM_UPDATE_URL,
    headers = { Authorization = assert(cred:authorization("https://management.azure.com/")) } })
  assert.are.equal(200, res.status, res.body)
  local sig
  for _, asset in pairs(json.decode(res.body).properties.assets) do
    local uri = asset.locationInfo and asset.locationInfo.uri
    if type(uri) == "string" and uri:find("newModelForArm", 1, true) then sig = uri:match("[%?&]sig=([^&]+)") end
  end
  assert.is_string(sig, "the web service's model URI carries no SAS")
  return (sig:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Loads the sample in this process with an override file's placeholders filled in.
local function load_sample(override_file, edit)
  local override = emu:substitute(assert(json.decode_file(override_file)))
  if edit then edit(override) end
  local factory, problems = pipeline.load_factory(sample.FACTORY, { override = override })
  assert.is_table(factory, problems and pipeline.format_problems(problems))
  return factory
end

-- Runs the sample in this process; returns the record and the text of every event, record and message.
local function run_in_process(factory)
  local events = {}
  local record
  lufa.spawn(function()
    record = factory:run(sample.PIPELINE, { on_event = function(e) events[#events + 1] = json.encode(e) end })
  end)
  lufa.run()
  assert.is_table(record)
  local text = { table.concat(events, "\n") }
  for _, r in ipairs(factory.runs:pipeline_runs()) do
    text[#text + 1] = json.encode(r)
    for _, a in ipairs(factory:activity_runs(r.runId)) do text[#text + 1] = json.encode(a) end
  end
  return record, table.concat(text, "\n")
end

describe("secrets of the sample's linked services", function()
  setup(function()
    emu, data_dir, gens = emulators.start_with_data(200)
  end)

  teardown(function() emulators.stop_with_data(emu, data_dir) end)

  before_each(function()
    emu:reset()
    emu:upload(sample.INPUT, gens[2].file)
  end)

  it("are in no output of lufa run (ARM form, text and --json) nor of lufa validate", function()
    local text = emu:run_sample(sample.ARM_OVERRIDE)
    assert.are.equal(0, text.status, text.output)
    local js = emu:run_sample(sample.ARM_OVERRIDE, { "--json" })
    assert.are.equal(0, js.status, js.output)
    -- the BES results carry SAS tokens: the output names them, redacted
    local results = emulators.activity_run(js.json, sample.TRAINING).output.results
    assert.are.equal("<redacted>", results.output1.SasBlobToken)
    local secrets = secret_values{ ["the model's SAS signature (ARM)"] = arm_model_sas() }
    assert_clean(text.output, "lufa run (text)", secrets)
    assert_clean(js.output, "lufa run --json", secrets)
    local v = emu:lufa{ "validate", sample.FACTORY, "--override", sample.ARM_OVERRIDE, "--json" }
    assert.are.equal(0, v.status, v.output)
    assert_clean(v.output, "lufa validate", secrets)
  end)

  it("are in no output of lufa run in the classic form", function()
    local r = emu:run_sample(sample.CLASSIC_OVERRIDE, { "--json" })
    assert.are.equal(0, r.status, r.output)
    assert.are.equal("classic", emulators.activity_run(r.json, sample.UPDATE).output.endpointKind)
    assert_clean(r.output, "lufa run --json (classic)", secret_values())
  end)

  it("are in no output of failed runs", function()
    emu:upload(sample.INPUT, { data = "temperature,humidity,windspeed\n20,50,3\n25,40,5\n10,80,9\n" })
    local failed_job = emu:run_sample(sample.ARM_OVERRIDE, { "--json" })
    assert.are.equal(1, failed_job.status, failed_job.output)
    assert_clean(failed_job.output, "a failed training job", secret_values())

    emu:upload(sample.INPUT, gens[2].file)
    for _, override in ipairs{ sample.ARM_OVERRIDE, sample.CLASSIC_OVERRIDE } do
      local wrong = emu:derive_override(override, function(t)
        emulators.override_activity(t, sample.PIPELINE, sample.UPDATE).typeProperties = { trainedModelName = "nope" }
      end)
      local r = emu:run_sample(wrong)
      assert.are.equal(1, r.status, r.output)
      assert_clean(r.output, "a refused update (" .. override .. ")", secret_values())
    end

    -- a wrong API key and a wrong client secret: the refusals must not echo what was sent
    local bad_keys = emu:derive_override(sample.ARM_OVERRIDE, function(t)
      t.linkedServices.updatableScoringEndpoint2.properties.typeProperties.servicePrincipalKey.value =
        "not-the-secret+/=~"
    end)
    local r = emu:run_sample(bad_keys)
    assert.are.equal(1, r.status, r.output)
    assert.truthy(r.output:find("AADSTS7000215", 1, true), r.output)
    assert_clean(r.output, "a refused client secret", secret_values{ ["the wrong client secret"] = "not-the-secret+/=~" })
  end)

  it("are in no run record or event of an in-process run (ARM and classic)", function()
    for _, override in ipairs{ sample.ARM_OVERRIDE, sample.CLASSIC_OVERRIDE } do
      emu:reset()
      local factory = load_sample(override)
      local record, text = run_in_process(factory)
      assert.are.equal("Succeeded", record.status, record.message)
      local secrets = secret_values()
      if override == sample.ARM_OVERRIDE then secrets["the model's SAS signature (ARM)"] = arm_model_sas() end
      assert_clean(text, "run records (" .. override .. ")", secrets)
      -- the records are not empty of what matters: the job and the update are there
      assert.truthy(text:find('"jobId"', 1, true))
      assert.truthy(text:find('"endpointKind"', 1, true))
    end
  end)
end)
