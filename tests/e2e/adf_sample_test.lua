-- The ADF article's retraining pipeline (examples/adf-retraining, JSON unchanged) run by `lufa run` against
-- the local stand-ins, in its Azure Resource Manager form (local.json) and its classic Update Resource form
-- (local-classic.json); and `lufa validate` on the sample. What happened is read back from the stand-ins'
-- control endpoint (jobs, models) and from the scoring service itself.
local json = require "lufa.json"
local emulators = require "tests.support.emulators"

local sample = emulators.sample
local emu, data_dir, gens

-- The scoring endpoint each form updates: ARM updates the web service (its default endpoint), the
-- classic Update Resource call the updatable endpoint2.
local FORMS = {
  { name = "Azure Resource Manager", override = sample.ARM_OVERRIDE, endpoint = "default", other = "endpoint2",
    kind = "arm" },
  { name = "classic Update Resource", override = sample.CLASSIC_OVERRIDE, endpoint = "endpoint2", other = "default",
    kind = "classic" },
}

local function predictions(endpoint)
  return emu:score(endpoint, sample.FEATURES, sample.DAYS)
end

-- Runs the pipeline on the data generation `gen` and checks everything a successful retraining implies;
-- returns the scoring endpoint's predictions for the sample days afterwards.
local function retrain_on(form, gen)
  emu:upload(sample.INPUT, gen.file)
  local jobs_before = #emu:jobs()
  local other_before = emu:model(form.other)
  local r = emu:run_sample(form.override, { "--json" })
  assert.are.equal(0, r.status, r.output)
  local doc = r.json
  assert.are.equal("Succeeded", doc.pipelineRun.status)
  local train = emulators.activity_run(doc, sample.TRAINING)
  local update = emulators.activity_run(doc, sample.UPDATE)
  assert.are.equal("Succeeded", train.status)
  assert.are.equal("Succeeded", update.status)
  assert.are.equal(form.kind, update.output.endpointKind)

  -- one new training job, the one the activity reports, finished on this input
  local jobs = emu:jobs()
  assert.are.equal(jobs_before + 1, #jobs)
  local job = emu:jobs(train.output.jobId)
  assert.are.equal("Finished", job.state)
  assert.are.equal("training", job.kind)
  assert.are.equal(sample.INPUT, job.inputs.input1)
  assert.are.equal(sample.MODEL, job.outputs.output1)

  -- the scoring endpoint now uses the new .ilearner, exactly the blob the job wrote
  local current = emu:model(form.endpoint)
  assert.are.equal(emu.env.LUFA_EMU_BLOB_ENDPOINT .. "/" .. sample.MODEL, current.location:match("^[^?]*"))
  assert.are.equal(train.output.jobId, current.model.source.jobId)
  local blob = json.decode(assert(emu:download(sample.MODEL)))
  assert.are.same(blob.weights, current.model.weights)
  assert.are.equal(blob.intercept, current.model.intercept)
  -- the fitted relationship is the generation's (noise has a standard deviation of 3)
  for _, f in ipairs(sample.FEATURES) do
    assert.is_true(math.abs(current.model.weights[f] - gen[f]) < 0.5,
      string.format("%s weight %g, the data say %g", f, current.model.weights[f], gen[f]))
  end
  -- the other endpoint was left alone
  assert.are.same(other_before.location, emu:model(form.other).location)
  return predictions(form.endpoint)
end

describe("the ADF sample pipeline against the stand-ins", function()
  setup(function()
    emu, data_dir, gens = emulators.start_with_data(400)
  end)

  teardown(function() emulators.stop_with_data(emu, data_dir) end)

  before_each(function()
    emu:reset()
  end)

  for _, form in ipairs(FORMS) do
    it("retrains and redeploys through " .. form.name .. ", and predictions follow the new data", function()
      local initial = predictions(form.endpoint)
      local first = retrain_on(form, gens[1])
      local second = retrain_on(form, gens[2])
      for i, day in ipairs(sample.DAYS) do
        local e1, e2 = sample.expected(gens[1], day), sample.expected(gens[2], day)
        assert.is_true(math.abs(first[i] - e1) < 3, string.format("day %d: %g after the first data, expected ~%g", i, first[i], e1))
        assert.is_true(math.abs(second[i] - e2) < 3, string.format("day %d: %g after the second data, expected ~%g", i, second[i], e2))
        -- the change the two generations predict, not just any change
        assert.is_true(math.abs((second[i] - first[i]) - (e2 - e1)) < 4,
          string.format("day %d changed by %g, the data predict %g", i, second[i] - first[i], e2 - e1))
        assert.are_not.equal(initial[i], first[i])
      end
    end)
  end

  it("prints each activity's progress and a summary, and exits 0 (no --json)", function()
    emu:upload(sample.INPUT, gens[2].file)
    local r = emu:run_sample(sample.ARM_OVERRIDE)
    assert.are.equal(0, r.status, r.output)
    assert.matches("pipeline LookupPipelineDemo: Succeeded in [%d.]+s %(run [%x-]+%)", r.stdout)
    assert.matches("amlBEGetilearner%s+Succeeded", r.stdout)
    assert.matches("amlUpdateResource%s+Succeeded", r.stdout)
    local job = emu:jobs()[1]
    -- not a terminal here: one log line per change, naming the job
    assert.truthy(r.stderr:find("submitted batch job " .. job.id, 1, true), r.stderr)
    assert.matches("amlUpdateResource%s+updating web service", r.stderr)
  end)
end)

describe("lufa validate on the sample", function()
  local validate_emu
  setup(function() validate_emu = emulators.start() end)
  teardown(function() if validate_emu then validate_emu:stop() end end)

  local function file_path_warnings(text)
    local n = 0
    for line in text:gmatch("[^\n]+") do
      if line:find("FilePath", 1, true) and line:find("warning", 1, true) then n = n + 1 end
    end
    return n
  end

  it("warns about the folder-like FilePaths and the letter case, and exits 0", function()
    local r = validate_emu:lufa{ "validate", sample.FACTORY }
    assert.are.equal(0, r.status, r.output)
    -- the two inputs and the output name folders, not files
    assert.are.equal(3, file_path_warnings(r.stdout), r.stdout)
    assert.truthy(r.stdout:find("webServiceInputs.input1.FilePath: warning: 'azuremltesting/input'", 1, true), r.stdout)
    assert.truthy(r.stdout:find("webServiceInputs.input2.FilePath: warning: 'azuremltesting/input'", 1, true), r.stdout)
    assert.truthy(r.stdout:find("webServiceOutputs.output1.FilePath: warning: 'azuremltesting/output'", 1, true), r.stdout)
    assert.truthy(r.stdout:find("dependsOn names 'amlbeGetilearner' but the activity is called 'amlBEGetilearner'", 1, true), r.stdout)
    assert.matches("0 error%(s%), %d+ warning%(s%); pipelines: LookupPipelineDemo", r.stdout)
  end)

  for _, override in ipairs{ sample.ARM_OVERRIDE, sample.CLASSIC_OVERRIDE } do
    it("gives no FilePath warning with " .. override, function()
      local r = validate_emu:lufa{ "validate", sample.FACTORY, "--override", override }
      assert.are.equal(0, r.status, r.output)
      assert.are.equal(0, file_path_warnings(r.output), r.output)
      -- the letter-case warning is about the pipeline itself and stays
      assert.truthy(r.stdout:find("amlbeGetilearner", 1, true), r.stdout)
    end)
  end
end)
