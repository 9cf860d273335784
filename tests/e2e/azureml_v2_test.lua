-- The Azure ML v2 sample factory (examples/azureml-v2) run by `lufa run` against the v2 stand-in: train with a
-- command job, register the model, score on the batch endpoint, gate on the metric and roll out on the online
-- endpoint. A healthy deployment ends with all traffic; an unhealthy one is reverted with the probes' evidence;
-- a lost submit answer, throttling and 503s leave one job and whole traffic maps; an interrupt cancels the job.
local json = require "lufa.json"
local v2 = require "lufa.azureml.v2"
local emulators = require "tests.support.emulators"

local FACTORY, PIPELINE, OVERRIDE = "examples/azureml-v2", "RetrainAndRollout", "examples/azureml-v2/local.json"
local DAYS = emulators.sample.DAYS
local emu, data_dir, gens

local function state() return emu:control("GET", "/v2") end

local function command_jobs()
  local out = {}
  for _, j in ipairs(state().jobs) do
    if j.jobType == "Command" then out[#out + 1] = j end
  end
  return out
end

local function workspace()
  local e = emu.env
  return v2.workspace{ subscription_id = e.LUFA_EMU_ML_SUBSCRIPTION_ID, resource_group = e.LUFA_EMU_ML_RESOURCE_GROUP,
    workspace = e.LUFA_EMU_MLV2_WORKSPACE, management_endpoint = e.LUFA_EMU_MLV2_MANAGEMENT_ENDPOINT,
    tenant = e.LUFA_EMU_TENANT_DOMAIN, client_id = e.LUFA_EMU_CLIENT_ID, client_secret = e.LUFA_EMU_CLIENT_SECRET,
    authority = e.LUFA_EMU_AAD_AUTHORITY, poll_interval = 0.2 }
end

-- Predictions of one deployment for the sample days.
local function predictions(deployment)
  local rows = json.array{}
  for i, d in ipairs(DAYS) do rows[i] = json.array(d) end
  local answer, info = v2.online.score(workspace(), "rentals", { data = rows }, { deployment = deployment })
  assert(answer, info and info.message)
  return answer
end

local function run(extra)
  local args = { "run", FACTORY, PIPELINE, "--override", OVERRIDE, "--json" }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  local r = emu:lufa(args)
  r.json = json.decode(r.stdout)
  return r
end

local function route_count(route, method)
  local n = 0
  for _, r in ipairs(emu:requests{ route = route }) do
    if method == nil or r.method == method then n = n + 1 end
  end
  return n
end

describe("the Azure ML v2 sample factory against the stand-in", function()
  setup(function()
    emu, data_dir, gens = emulators.start_with_data(300)
  end)

  teardown(function() emulators.stop_with_data(emu, data_dir) end)

  before_each(function()
    emu:reset()
    emu:settings{ jobDurationMs = 400, armOperationMs = 150 }
    emu:upload("workspaceblobstore/rentals/train.csv", gens[1].file)
    emu:upload("workspaceblobstore/rentals/score.csv", { data = "temperature,humidity,windspeed\n26,35,2\n18,70,4\n" })
  end)

  it("trains, registers, batch-scores and rolls the new model out to 100 % in steps", function()
    local before = predictions("blue")
    local r = run()
    assert.are.equal(0, r.status, r.output)
    local doc = r.json
    assert.are.equal("Succeeded", doc.pipelineRun.status)

    -- one training job, tagged with the run, which trained on generation 1
    local trained = command_jobs()
    assert.are.equal(1, #trained)
    assert.are.equal("Completed", trained[1].status)
    assert.are.equal(doc.pipelineRun.runId, trained[1].tags["lufa.run"])
    local train = emulators.activity_run(doc, "Train")
    assert.are.equal(trained[1].name, train.output.jobName)

    -- model version 2 from that job's output, with the metric the gate compared
    local versions = state().models.rentals
    assert.are.equal(2, #versions)
    local v = versions[2]
    assert.are.equal("2", v.version)
    assert.are.equal("azureml://jobs/" .. train.output.jobName .. "/outputs/model", v.modelUri)
    for _, f in ipairs(emulators.sample.FEATURES) do
      assert.is_true(math.abs(v.model.weights[f] - gens[1][f]) < 0.5, f)
    end
    local gate = emulators.activity_run(doc, "Gate")
    assert.is_true(gate.output.promote)
    assert.are.equal(9.5, gate.output.championValue)
    assert.is_true(gate.output.challengerValue < 9.5)

    -- the batch job wrote predictions for both rows
    local batch = emulators.activity_run(doc, "BatchScore")
    assert.are.equal("Completed", batch.output.status)
    local csv = assert(emu:download("workspaceblobstore/rentals/predictions/" .. doc.pipelineRun.runId .. ".csv"))
    assert.are.equal(3, select(2, csv:gsub("\n", "")))

    -- traffic went 10, 50, 100 % and ends on the new deployment; the old one is still there
    local rollout = emulators.activity_run(doc, "Rollout")
    assert.are.equal("Succeeded", rollout.status)
    local percents = {}
    for i, s in ipairs(rollout.output.steps) do
      percents[i] = s.percent
      assert.are.equal(0, s.errors)
      assert.are.equal(10, s.probes)
    end
    assert.are.same({ 10, 50, 100 }, percents)
    local online = state().online.rentals
    assert.are.same({ blue = 0, ["rentals-v2"] = 100 }, online.traffic)
    assert.is_table(online.deployments.blue)

    -- no secret of the stand-ins (client secret, endpoint keys, ...) is in the output or the run record
    local keys = assert(v2.online.keys(workspace(), "rentals"))
    local secrets = emu:secrets()
    secrets.primaryKey = require("lufa.secret").expose(keys.primaryKey)
    local shown = emu:lufa{ "runs", "show", doc.pipelineRun.runId, "--json" }
    for what, value in pairs(secrets) do
      for _, text in ipairs{ r.stdout, r.stderr, shown.stdout } do
        assert.is_nil(text:find(value, 1, true), what .. " appears in the output")
      end
    end

    -- predictions follow the new data
    local after = predictions("rentals-v2")
    for i, day in ipairs(DAYS) do
      local want = emulators.sample.expected(gens[1], day)
      assert.is_true(math.abs(after[i] - want) < 4, string.format("day %d: %g, the data say %g", i, after[i], want))
      assert.is_true(math.abs(before[i] - after[i]) > 1e-6)
    end
  end)

  it("keeps the champion when the gate rejects the challenger: no rollout, the numbers in the run record", function()
    local override = emu:derive_override(OVERRIDE, function(t)
      t.pipelines = { [PIPELINE] = { properties = { activities = { { name = "Gate",
        typeProperties = { direction = "higher" } } } } } }
    end)
    local r = emu:lufa{ "run", FACTORY, PIPELINE, "--override", override, "--json" }
    assert.are.equal(0, r.status, r.output)
    local doc = json.decode(r.stdout)
    local gate = emulators.activity_run(doc, "Gate")
    assert.is_false(gate.output.promote)
    assert.are.equal(9.5, gate.output.championValue)
    assert.is_true(gate.output.improvement < 0)
    assert.is_nil(emulators.activity_run(doc, "Rollout"))
    assert.are.same({ blue = 100 }, state().online.rentals.traffic)
    assert.is_nil(state().online.rentals.deployments["rentals-v2"])
    emu:cleanup()
  end)

  it("reverts the traffic exactly when the new deployment is unhealthy, and fails with the probes' evidence", function()
    emu:control("PUT", "/v2/unhealthy", { deployments = { "rentals-v2" } })
    local r = run()
    assert.are_not.equal(0, r.status)
    local doc = r.json
    assert.are.equal("Failed", doc.pipelineRun.status)
    local rollout = emulators.activity_run(doc, "Rollout")
    assert.are.equal("Failed", rollout.status)
    local message = rollout.error.message
    assert.truthy(message:find("smoke test of deployment rentals-v2 failed", 1, true), message)
    assert.truthy(message:find("500", 1, true), message)
    assert.truthy(message:find("traffic was put back as it was", 1, true), message)
    local online = state().online.rentals
    assert.are.same({ blue = 100 }, online.traffic)
    assert.are.same({}, online.mirrorTraffic)
    assert.is_nil(online.deployments["rentals-v2"])
  end)

  it("a lost submit answer, 429 with Retry-After and 503s leave one job and whole traffic maps", function()
    emu:faults{ rules = {
      { route = "mlv2.jobs.put", sequence = { { type = "reset", when = "after" } } },
      { route = "mlv2.jobs.get", sequence = { { type = "pass" }, { type = "status", status = 429, retryAfter = 1 } } },
      { route = "mlv2.online.put", sequence = { { type = "status", status = 503 } } },
    } }
    local r = run()
    assert.are.equal(0, r.status, r.output)
    assert.are.equal("Succeeded", r.json.pipelineRun.status)
    assert.are.equal(1, #command_jobs())
    -- the one PUT was taken and its answer cut; lufa read the job instead of sending it again
    local puts = emu:requests{ route = "mlv2.jobs.put" }
    assert.are.equal(1, #puts)
    assert.are.equal("reset:after", puts[1].fault)
    local all, after_put = emu:requests(), nil
    for i, q in ipairs(all) do
      if q.route == "mlv2.jobs.put" then after_put = all[i + 1] end
    end
    assert.are.equal("mlv2.jobs.get", after_put.route)
    assert.are.equal(200, after_put.status)
    local online = state().online.rentals
    assert.are.same({ blue = 0, ["rentals-v2"] = 100 }, online.traffic)
    local throttled = 0
    for _, q in ipairs(emu:requests{ route = "mlv2.jobs.get" }) do
      if q.status == 429 then throttled = throttled + 1 end
    end
    assert.are.equal(1, throttled)
  end)

  it("runs ADF's AzureMLExecutePipeline as a batch-endpoint invoke of the pipeline deployment", function()
    local r = emu:lufa{ "run", FACTORY, "RunRetrainingPipeline", "--override", OVERRIDE, "--json" }
    assert.are.equal(0, r.status, r.output)
    local doc = json.decode(r.stdout)
    assert.are.equal("Succeeded", doc.pipelineRun.status)
    local a = emulators.activity_run(doc, "RunTrainingPipeline")
    assert.are.equal("Completed", a.output.status)
    local job
    for _, j in ipairs(state().jobs) do if j.name == a.output.jobName then job = j end end
    assert.is_table(job)
    assert.are.equal("rentals-pipeline", job.tags.endpoint)
    assert.are.equal("v1", job.tags.deployment)
    assert.are.same({ jobInputType = "uri_folder", uri = "azureml://datastores/workspaceblobstore/paths/rentals" }, job.inputs.raw)
    assert.are.same({ jobInputType = "literal", value = "rentals" }, job.inputs.label)
    assert.matches("^%d%d%d%d%-%d%d%-%d%d$", job.inputs.train_date.value)
  end)

  it("runs the article's classic pipeline, JSON unchanged, against the v2 workspace through an override", function()
    emu:upload("azuremltesting/input/rentals.csv", gens[2].file)
    local r = emu:lufa{ "run", "examples/adf-retraining", "LookupPipelineDemo", "--override",
      "examples/adf-retraining/local-v2.json", "--json" }
    assert.are.equal(0, r.status, r.output)
    local doc = json.decode(r.stdout)
    assert.are.equal("Succeeded", doc.pipelineRun.status)

    -- the BES activity became one command job over the same files
    local trained = command_jobs()
    assert.are.equal(1, #trained)
    local input = trained[1].inputs.input1
    assert.are.equal("azureml://datastores/azuremltesting/paths/input/rentals.csv", input.uri)
    local train = emulators.activity_run(doc, "amlBEGetilearner")
    assert.are.equal(trained[1].name, train.output.jobId)
    assert.are.equal("azuremltesting/output/newModelForArm.ilearner", train.output.results.output1.RelativeLocation)
    local written = json.decode(assert(emu:download("azuremltesting/output/newModelForArm.ilearner")))
    for _, f in ipairs(emulators.sample.FEATURES) do
      assert.is_true(math.abs(written.weights[f] - gens[2][f]) < 0.5, f)
    end

    -- the Update Resource activity registered that file and rolled it out
    local update = emulators.activity_run(doc, "amlUpdateResource")
    assert.are.equal("azureml-v2", update.output.endpointKind)
    local versions = state().models.rentals
    assert.are.equal("azureml://datastores/azuremltesting/paths/output/newModelForArm.ilearner", versions[#versions].modelUri)
    assert.are.same(written.weights, versions[#versions].model.weights)
    assert.are.same({ blue = 0, [update.output.deployment] = 100 }, state().online.rentals.traffic)
    local after = predictions(update.output.deployment)
    for i, day in ipairs(DAYS) do
      assert.is_true(math.abs(after[i] - emulators.sample.expected(gens[2], day)) < 4, "day " .. i)
    end
  end)

  it("an interrupt in the middle of the traffic steps puts the traffic back as it was", function()
    emu:settings{ jobDurationMs = 400, armOperationMs = 1500 }
    local child = emu:spawn_lufa{ "run", FACTORY, PIPELINE, "--override", OVERRIDE }
    local shifted = emulators.eventually(function()
      local t = state().online.rentals.traffic
      return (t["rentals-v2"] or 0) > 0 and (t["rentals-v2"] or 0) < 100 and t
    end, 60)
    assert.is_table(shifted, "the rollout never shifted traffic")
    child:signal("TERM")
    assert.are.equal(143, child:wait(60))
    -- exactly the map from before; the new deployment stays, without traffic, for a look at it
    local online = state().online.rentals
    assert.are.same({ blue = 100 }, online.traffic)
    assert.is_table(online.deployments["rentals-v2"])
    assert.truthy(child:stdout():find("traffic of rentals put back", 1, true) or
      child:stderr():find("traffic of rentals put back", 1, true), child:stderr())
    child:cleanup()
  end)

  it("kill -9 during training, then lufa resume: the journaled job is followed, none is submitted again", function()
    emu:settings{ jobDurationMs = 4000, armOperationMs = 150 }
    local store_dir = emulators.tempdir()
    local store = store_dir .. "/runs.db"
    local child = emu:spawn_lufa{ "run", FACTORY, PIPELINE, "--override", OVERRIDE, "--store", store }
    local id = child:run_id()
    assert.is_string(id, child:stderr())
    local job = emulators.eventually(function()
      local jobs = command_jobs()
      return jobs[1] and jobs[1].status == "Running" and jobs[1]
    end, 30)
    assert.is_table(job, "the training job never ran")
    child:signal("KILL")
    child:wait(10)
    local r = emu:lufa{ "resume", id, "--store", store }
    assert.are.equal(0, r.status, r.output)
    assert.truthy(r.stderr:find("reconnected to job " .. job.name, 1, true), r.stderr)
    assert.are.equal(1, #command_jobs())
    assert.are.equal(1, route_count("mlv2.jobs.put", "PUT"))
    assert.are.equal("Completed", command_jobs()[1].status)
    assert.are.same({ blue = 0, ["rentals-v2"] = 100 }, state().online.rentals.traffic)
    child:cleanup()
    os.execute("rm -rf " .. emulators.shell_quote(store_dir))
  end)

  it("an interrupt during training cancels the job and records the run Cancelled", function()
    emu:settings{ jobDurationMs = 120000 }
    local child = emu:spawn_lufa{ "run", FACTORY, PIPELINE, "--override", OVERRIDE }
    local job = emulators.eventually(function()
      local jobs = command_jobs()
      return jobs[1] and jobs[1].status ~= "NotStarted" and jobs[1]
    end, 60)
    assert.is_table(job, "the training job never started")
    child:signal("TERM")
    assert.are.equal(143, child:wait(30))
    local final = emulators.eventually(function()
      for _, j in ipairs(command_jobs()) do
        if j.name == job.name and (j.status == "Canceled" or j.status == "CancelRequested") then return j end
      end
    end, 10)
    assert.is_table(final, "the job was not cancelled")
    assert.are.equal(1, route_count("mlv2.jobs.cancel", "POST"))
    assert.are.equal(1, #command_jobs())
    child:cleanup()
  end)
end)
