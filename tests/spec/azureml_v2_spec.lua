-- lufa.azureml.v2: its pure parts (job names, durations, traffic steps, expectations), and its clients
-- against the v2 stand-in: service principal and managed identity, errors with the service's code, a lost
-- submit answer read back, a timed-out wait cancelling the job, model versions, traffic refusals.
local json = require "lufa.json"
local v2 = require "lufa.azureml.v2"
local workspace_mod = require "lufa.azureml.v2.workspace"
local emulators = require "tests.support.emulators"

describe("lufa.azureml.v2 pure parts", function()
  it("derives stable job names in the service's alphabet", function()
    assert.are.equal("Train-model-4c1e-77-a0", v2.jobs.name_for("Train model", "4c1e-77", "a0"))
    assert.are.equal(v2.jobs.name_for("x", 1), v2.jobs.name_for("x", 1))
    assert.are.equal("job-_x", v2.jobs.name_for("_x"))
    assert.are.equal(255, #v2.jobs.name_for(string.rep("a", 300)))
    assert.are.equal("azureml://jobs/j1/outputs/model", v2.jobs.output_uri("j1", "model"))
  end)

  it("reads ISO 8601 durations", function()
    assert.are.equal(7200, workspace_mod.iso_duration("PT2H"))
    assert.are.equal(86400 + 1800, workspace_mod.iso_duration("P1DT30M"))
    assert.are.equal(90, workspace_mod.iso_duration("PT1M30S"))
    assert.is_nil(workspace_mod.iso_duration("2 hours"))
    assert.is_nil(workspace_mod.iso_duration(nil))
  end)

  it("splits each step's traffic between the new and the previous deployments", function()
    assert.are.same({ blue = 90, green = 10 }, v2.rollout.step_traffic({ blue = 100 }, "green", 10))
    assert.are.same({ blue = 0, green = 100 }, v2.rollout.step_traffic({ blue = 100 }, "green", 100))
    -- 70/30 keep their proportions; the rounding remainder goes to the largest
    assert.are.same({ a = 34, b = 14, green = 52 }, v2.rollout.step_traffic({ a = 70, b = 30 }, "green", 52))
    -- a deployment at 0 % stays in the map at 0
    assert.are.same({ a = 50, idle = 0, green = 50 }, v2.rollout.step_traffic({ a = 100, idle = 0 }, "green", 50))
    assert.are.same({ green = 100 }, v2.rollout.step_traffic({}, "green", 10))
  end)

  it("checks answers against an expectation and says why one fails", function()
    assert.is_true(v2.rollout.meets({ 12, 30 }, { min = 0, max = 100 }))
    local ok, why = v2.rollout.meets({ 12, 300 }, { min = 0, max = 100 })
    assert.is_false(ok)
    assert.matches("300", why)
    assert.is_true(v2.rollout.meets({ label = "yes" }, { contains = "yes" }))
    assert.is_false((v2.rollout.meets({ 1 }, { equals = { 2 } })))
    assert.is_false((v2.rollout.meets({}, { min = 0 })))
  end)
end)

describe("lufa validate on the v2 activities and the AzureMLService linked service", function()
  local pipeline = require "lufa.pipeline"
  local ws_ref = { referenceName = "Ws", type = "LinkedServiceReference" }

  local function problems(activity, ls_props)
    activity.linkedServiceName = activity.linkedServiceName or ws_ref
    local f = assert(pipeline.from_table{
      pipelines = { { name = "P", properties = { activities = { activity } } } },
      linkedServices = { { name = "Ws", properties = { type = "AzureMLService", typeProperties = ls_props or
        { subscriptionId = "s", resourceGroupName = "rg", mlWorkspaceName = "ws" } } } },
    })
    return pipeline.format_problems(pipeline.validate(f))
  end

  it("finds no problem in the sample factory", function()
    local f, load_problems = pipeline.load_factory("examples/azureml-v2")
    assert(f, load_problems and pipeline.format_problems(load_problems))
    local found = pipeline.validate(f)
    local errors = 0
    for _, p in ipairs(found) do if p.severity == "error" then errors = errors + 1 end end
    assert.are.equal(0, errors, pipeline.format_problems(found))
  end)

  it("accepts well-formed activities", function()
    local text = problems{ name = "R", type = "AzureMLSafeRollout", typeProperties = { endpointName = "e",
      deploymentName = "d", deployment = { model = "m" }, sampleRequest = { data = {} }, trafficSteps = { 10, 100 } } }
    assert.is_nil(text:find("error", 1, true), text)
  end)

  it("names what is wrong, and where", function()
    local text = problems{ name = "R", type = "AzureMLSafeRollout", typeProperties = { endpointName = "e",
      deploymentName = "d", deployment = { model = "m" }, sampleRequest = {}, trafficSteps = { 50, 20 },
      mirrorPercent = 80 } }
    assert.matches("trafficSteps%[1%]", text)
    assert.matches("mirrorPercent must be between 0 and 50", text)
    text = problems{ name = "X", type = "AzureMLExecutePipeline", typeProperties = { mlPipelineId = "abc" } }
    assert.matches("v1 published pipeline", text)
    text = problems{ name = "J", type = "AzureMLJob", typeProperties = { job = { jobType = "Sweep" } } }
    assert.matches("jobType must be", text)
    text = problems{ name = "M", type = "AzureMLRegisterModel", typeProperties = { modelName = "m" } }
    assert.matches("needs \"modelUri\"", text)
    text = problems({ name = "G", type = "AzureMLPromotionGate", typeProperties = { metric = "rmse",
      direction = "sideways", challenger = { value = 1 } } }, { subscriptionId = "s", mlWorkspaceName = "w",
      authentication = "Password" })
    assert.matches("direction must be", text)
    assert.matches("AzureMLService requires \"resourceGroupName\"", text)
    assert.matches("authentication must be \"MSI\"", text)
  end)
end)

describe("lufa.azureml.v2 clients against the stand-in", function()
  local emu, ws

  local function workspace(extra)
    local e = emu.env
    local o = { subscription_id = e.LUFA_EMU_ML_SUBSCRIPTION_ID, resource_group = e.LUFA_EMU_ML_RESOURCE_GROUP,
      workspace = e.LUFA_EMU_MLV2_WORKSPACE, management_endpoint = e.LUFA_EMU_MLV2_MANAGEMENT_ENDPOINT,
      tenant = e.LUFA_EMU_TENANT_DOMAIN, client_id = e.LUFA_EMU_CLIENT_ID, client_secret = e.LUFA_EMU_CLIENT_SECRET,
      authority = e.LUFA_EMU_AAD_AUTHORITY, poll_interval = 0.1, max_poll_interval = 0.5 }
    for k, v in pairs(extra or {}) do o[k] = v end
    if o.managed_identity then o.client_secret, o.tenant, o.client_id = nil, nil, nil end
    return v2.workspace(o)
  end

  local function job_props(command)
    return v2.jobs.command{ command = command or "python train.py --data ${{inputs.training_data}}",
      environment_id = "azureml:sklearn:1", compute_id = "cpu", outputs = { model = { type = "custom_model" } },
      inputs = { training_data = { type = "uri_file", uri = "azureml://datastores/workspaceblobstore/paths/spec/train.csv" } } }
  end

  setup(function()
    emu = emulators.start()
    emu:settings{ jobDurationMs = 300, armOperationMs = 100 }
    local rows = { "temperature,humidity,windspeed,rentals" }
    for i = 1, 30 do rows[#rows + 1] = string.format("%d,%d,%d,%d", i, (i * 7) % 50, i % 9, 100 + 2 * i - (i * 7) % 50) end
    emu:upload("workspaceblobstore/spec/train.csv", { data = table.concat(rows, "\n") .. "\n" })
    ws = workspace()
  end)

  teardown(function() if emu then emu:stop() end end)

  it("runs a job to Completed, reporting each status once", function()
    local seen = {}
    local job = assert(v2.jobs.run(ws, "spec-run-1", job_props(), { on_status = function(s) seen[#seen + 1] = s end }))
    assert.are.equal("Completed", job.properties.status)
    assert.are.equal("NotStarted", seen[1])
    assert.are.equal("Completed", seen[#seen])
    for i = 2, #seen do assert.are_not.equal(seen[i - 1], seen[i]) end
  end)

  it("authenticates with a managed identity too", function()
    local mi = workspace{ managed_identity = true, identity_endpoint = emu.env.LUFA_EMU_IMDS_ENDPOINT }
    local job = assert(v2.jobs.get(mi, "spec-run-1"))
    assert.are.equal("spec-run-1", job.name)
  end)

  it("returns the service's code and message", function()
    local job, err = v2.jobs.submit(ws, "spec-bad", json.object{ jobType = "Command", command = "x" })
    assert.is_nil(job)
    assert.are.equal("UserError", err.code)
    assert.are.equal(400, err.status)
    assert.matches("environmentId", err.message)
    local old = workspace{ api_version = "2016-05-01-preview" }
    local _, verr = v2.jobs.get(old, "spec-run-1")
    assert.are.equal("NoRegisteredProviderFound", verr.code)
    local _, nerr = v2.jobs.get(ws, "no-such-job")
    assert.are.equal(404, nerr.status)
  end)

  it("reads the job back when the submit answer is lost, and sends one PUT", function()
    emu:clear_requests()
    emu:faults{ rules = { { route = "mlv2.jobs.put", sequence = { { type = "reset", when = "after" } } } } }
    local job, lost = v2.jobs.submit(ws, "spec-lost-1", job_props())
    emu:faults()
    assert.is_table(job, tostring(lost))
    assert.is_true(lost)
    assert.are.equal("spec-lost-1", job.name)
    assert.are.equal(1, #emu:requests{ route = "mlv2.jobs.put" })
  end)

  it("cancels the job when a wait times out", function()
    emu:settings{ jobDurationMs = 60000 }
    local job, err = v2.jobs.run(ws, "spec-timeout-1", job_props(), { timeout = 0.5 })
    emu:settings{ jobDurationMs = 300 }
    assert.is_nil(job)
    assert.are.equal("timeout", err.code)
    local final = emulators.eventually(function()
      local j = v2.jobs.get(ws, "spec-timeout-1")
      return j and (j.properties.status == "Canceled" or j.properties.status == "CancelRequested") and j
    end, 10)
    assert.is_table(final)
  end)

  it("registers the next model version and reads its metric", function()
    assert(v2.jobs.run(ws, "spec-train-1", job_props()))
    local before = assert(v2.models.next_version(ws, "rentals"))
    local v = assert(v2.models.register(ws, "rentals", { model_uri = v2.jobs.output_uri("spec-train-1", "model"),
      properties = { rmse = 4.5 } }))
    assert.are.equal(before, v.name)
    assert.are.equal(4.5, v2.models.metric(v, "rmse"))
    assert.are.equal(tostring(tonumber(before) + 1), v2.models.next_version(ws, "rentals"))
    local list = assert(v2.models.list(ws, "rentals"))
    assert.are.equal(v.name, list[1].name)
    local fresh = assert(v2.models.register(ws, "brand-new", { model_uri = v2.jobs.output_uri("spec-train-1", "model") }))
    assert.are.equal("1", fresh.name)
  end)

  it("leaves the traffic map alone when the service refuses a new one", function()
    local before = assert(v2.online.traffic(ws, "rentals"))
    local ok, err = v2.online.set_traffic(ws, "rentals", { blue = 60 })
    assert.is_nil(ok)
    assert.are.equal("UserError", err.code)
    assert.matches("add up to 60", err.message)
    assert.are.same(before, (v2.online.traffic(ws, "rentals")))
  end)

  it("runs a pipeline job as one job", function()
    local props = json.object{ jobType = "Pipeline", displayName = "retrain", jobs = json.object{
      train = json.object{ type = "command", component = "azureml:train:1" } } }
    local job = assert(v2.jobs.run(ws, "spec-pipeline-1", props))
    assert.are.equal("Completed", job.properties.status)
    assert.are.equal("Pipeline", job.properties.jobType)
  end)

  it("reports a deployment whose operation failed with the service's code, and its logs", function()
    local dep, err = v2.online.put_deployment(ws, "rentals", "broken", json.object{
      model = ws:resource_id("/models/rentals/versions/999"), instanceType = "Standard_DS3_v2" })
    assert.is_nil(dep)
    assert.are.equal("DeploymentFailed", err.code)
    assert.matches("versions/999", err.message)
    local logs = assert(v2.online.logs(ws, "rentals", "broken", 10))
    assert.matches("could not be downloaded", logs)
    assert(v2.online.delete_deployment(ws, "rentals", "broken"))
    assert.is_nil((v2.online.deployment(ws, "rentals", "broken")))
  end)

  it("creates an endpoint that takes AML tokens, deploys to it and scores with a token", function()
    local body = json.object{ location = "southcentralus", properties = json.object{ authMode = "AMLToken" } }
    local ep, res = ws:arm("creating an endpoint", "PUT", "/onlineEndpoints/tokens", body)
    assert(ep, res)
    assert.are.equal(201, res.status)
    assert(ws:follow(res, { what = "creating endpoint tokens", resource_path = "/onlineEndpoints/tokens" }))
    assert(v2.online.put_deployment(ws, "tokens", "one", json.object{
      model = ws:resource_id("/models/rentals/versions/1"), instanceType = "Standard_DS3_v2" }))
    local answer, info = v2.online.score(ws, "tokens", { data = { { 20, 50, 5 } } }, { deployment = "one" })
    assert.is_table(answer, tostring(info))
    assert.are.equal(200, info.status)
    assert.are.equal(1, #emu:requests{ route = "mlv2.online.token" })
  end)

  it("mirrors a share of the traffic before shifting, and ends with the new deployment alone", function()
    local report = assert(v2.rollout.run(ws, { endpoint = "rentals", deployment = "shadow",
      properties = json.object{ model = ws:resource_id("/models/rentals/versions/1"), instanceType = "Standard_DS3_v2" },
      request = { data = { { 20, 50, 5 } } }, expect = { min = 0 }, mirror = 50, steps = { 50, 100 }, probes = 4,
      delete_previous = true }))
    assert.are.equal(50, report.steps[1].mirror)
    assert.are.same({ 50, 100 }, { report.steps[2].percent, report.steps[3].percent })
    assert.are.same({ shadow = 100 }, report.traffic)
    assert.are.same({ "blue" }, report.deleted)
    local mirrored = 0
    for _, c in ipairs(emu:control("GET", "/v2").scored) do
      if c.mirrored and c.deployment == "shadow" then mirrored = mirrored + 1 end
    end
    -- four probes went through the endpoint while it mirrored 50 %
    assert.are.equal(2, mirrored)
    assert.is_nil((v2.online.deployment(ws, "rentals", "blue")))
  end)

  it("scores through an online endpoint with its key, pinned or by traffic", function()
    emu:reset()
    emu:settings{ jobDurationMs = 300, armOperationMs = 100 }
    ws = workspace()
    local answer, info = assert(v2.online.score(ws, "rentals", { data = { { 20, 50, 5 } } }))
    assert.are.equal("blue", info.deployment)
    assert.are.equal(1, #answer)
    local _, perr = v2.online.score(ws, "rentals", { data = { { 20, 50, 5 } } }, { deployment = "nope" })
    assert.are.equal(404, perr.status)
  end)
end)
