-- The sample pipeline when things go wrong, against the stand-ins: a training job that fails, a Batch
-- Execution job that outlives the activity's timeout, a trained-model name the scoring service does not
-- have, and a service-principal token that expires during the run. Each test checks the CLI's outcome and
-- what the stand-ins saw (request log, jobs, models).
local json = require "lufa.json"
local emulators = require "tests.support.emulators"

local sample = emulators.sample
local emu, data_dir, gens

local function count(list, pred)
  local n = 0
  for _, x in ipairs(list) do if pred(x) then n = n + 1 end end
  return n
end

describe("the sample pipeline when things go wrong", function()
  setup(function()
    emu, data_dir, gens = emulators.start_with_data(200)
  end)

  teardown(function() emulators.stop_with_data(emu, data_dir) end)

  before_each(function()
    emu:reset()
    emu:upload(sample.INPUT, gens[2].file)
  end)

  describe("a training job that fails", function()
    -- a table without the label column: the job is accepted, then fails while training
    local NO_LABEL = "temperature,humidity,windspeed\n20,50,3\n25,40,5\n10,80,9\n15,60,2\n30,35,1\n"

    before_each(function()
      emu:upload(sample.INPUT, { data = NO_LABEL })
    end)

    it("fails the pipeline with the service's details and skips the update (exit 1)", function()
      local before = emu:model("default")
      local r = emu:run_sample(sample.ARM_OVERRIDE)
      assert.are.equal(1, r.status, r.output)
      local jobs = emu:jobs()
      assert.are.equal(1, #jobs)
      assert.are.equal("Failed", jobs[1].state)
      local details = jobs[1].details
      assert.is_string(details)
      assert.truthy(details:find("rentals", 1, true), details)  -- the service names the missing column
      assert.matches("pipeline LookupPipelineDemo: Failed", r.stdout)
      assert.matches("amlBEGetilearner%s+Failed", r.stdout)
      assert.matches("amlUpdateResource%s+Skipped", r.stdout)
      -- the service's own Details, word for word, in the summary
      assert.truthy(r.stdout:find(details, 1, true), r.stdout)
      -- nothing was deployed, and the model did not change
      assert.are.equal(0, #emu:requests{ route = "ml.arm" })
      assert.are.same(before.location, emu:model("default").location)
      -- a failed job has ended: nothing to delete
      assert.are.equal(0, #emu:requests{ route = "ml.bes.delete" })
    end)

    it("reports the same in --json: statuses, error code and the details", function()
      local r = emu:run_sample(sample.ARM_OVERRIDE, { "--json" })
      assert.are.equal(1, r.status, r.output)
      local details = emu:jobs()[1].details
      assert.are.equal("Failed", r.json.pipelineRun.status)
      local train = emulators.activity_run(r.json, sample.TRAINING)
      local update = emulators.activity_run(r.json, sample.UPDATE)
      assert.are.equal("Failed", train.status)
      assert.are.equal("2600", train.error.errorCode)
      assert.truthy(train.error.message:find(details, 1, true), train.error.message)
      assert.are.equal("Skipped", update.status)
      assert.truthy(r.json.pipelineRun.message:find("amlBEGetilearner", 1, true), r.json.pipelineRun.message)
    end)
  end)

  describe("a batch job that outlives the activity's timeout", function()
    it("is deleted on the service, and a retry starts only after the first job was deleted", function()
      emu:settings{ jobDurationMs = 120000 }
      local override = emu:derive_override(sample.ARM_OVERRIDE, function(t)
        local a = emulators.override_activity(t, sample.PIPELINE, sample.TRAINING)
        a.policy = { timeout = "0.00:00:02", retry = 1, retryIntervalInSeconds = 0 }
      end)
      local r = emu:run_sample(override, { "--json" })
      assert.are.equal(1, r.status, r.output)
      local attempts = {}
      for _, a in ipairs(r.json.activityRuns) do
        if a.activityName == sample.TRAINING then attempts[#attempts + 1] = a end
      end
      assert.are.equal(2, #attempts)
      for _, a in ipairs(attempts) do
        assert.are.equal("Failed", a.status)
        assert.are.equal("ActivityTimedOut", a.error.errorCode)
      end
      assert.are.equal("Skipped", emulators.activity_run(r.json, sample.UPDATE).status)

      -- the service's view: two jobs, each cancelled by a DELETE
      local jobs = emu:jobs()
      assert.are.equal(2, #jobs)
      local log = emu:requests{ service = "ml" }
      local seq = {}
      for _, q in ipairs(log) do
        if q.jobId then
          seq[q.jobId] = seq[q.jobId] or {}
          seq[q.jobId][q.route] = seq[q.jobId][q.route] or q.seq
        end
      end
      for _, j in ipairs(jobs) do
        assert.are.equal("Cancelled", emu:jobs(j.id).state)
        assert.is_number(seq[j.id]["ml.bes.delete"], "no DELETE for job " .. j.id)
      end
      -- never two running at once: the second job was submitted after the first was deleted
      local first, second = jobs[1].id, jobs[2].id
      if seq[first]["ml.bes.submit"] > seq[second]["ml.bes.submit"] then first, second = second, first end
      assert.is_true(seq[first]["ml.bes.delete"] < seq[second]["ml.bes.submit"])
      assert.are.equal(2, count(log, function(q) return q.route == "ml.bes.delete" and q.status == 204 end))
    end)
  end)

  describe("Ctrl-C while the batch job runs", function()
    it("cancels the run: the job is deleted on the service, the run recorded Cancelled, exit 130", function()
      emu:settings{ jobDurationMs = 120000 }
      local s = emulators.sample
      local child = emu:spawn_lufa{ "run", s.FACTORY, s.PIPELINE, "--override", sample.ARM_OVERRIDE, "--json" }
      local job = emulators.eventually(function()
        local jobs = emu:jobs()
        return jobs[1] and jobs[1].state == "Running" and jobs[1]
      end, 30)
      assert.is_table(job, "the batch job never started")
      assert(child:signal("INT"))
      assert.are.equal(130, child:wait(30))
      assert.matches("interrupted: cancelling the run", child:stderr())
      local doc = assert(json.decode(child:stdout()))
      assert.are.equal("Cancelled", doc.pipelineRun.status)
      assert.are.equal("Cancelled", emulators.activity_run(doc, sample.TRAINING).status)
      assert.are.equal("Cancelled", emu:jobs(job.id).state)
      assert.are.equal(1, count(emu:requests{ service = "ml" }, function(q)
        return q.route == "ml.bes.delete" and q.jobId == job.id and q.status == 204
      end))
      child:cleanup()
    end)
  end)

  describe("a trained-model name the scoring service does not have", function()
    local WRONG = "ADFV2Sample Model [trained modle]"

    local function with_wrong_name(base)
      return emu:derive_override(base, function(t)
        local a = emulators.override_activity(t, sample.PIPELINE, sample.UPDATE)
        a.typeProperties = { trainedModelName = WRONG }
      end)
    end

    it("ARM: fails with a clear error listing the names that exist, and sends no update", function()
      local before = emu:model("default")
      local r = emu:run_sample(with_wrong_name(sample.ARM_OVERRIDE), { "--json" })
      assert.are.equal(1, r.status, r.output)
      local update = emulators.activity_run(r.json, sample.UPDATE)
      assert.are.equal("Failed", update.status)
      local msg = update.error.message
      assert.truthy(msg:find("'" .. WRONG .. "'", 1, true), msg)
      -- the asset that exists, by the name the stand-ins were configured with
      assert.truthy(msg:find("'" .. emu.env.LUFA_EMU_ML_TRAINED_MODEL_NAME .. "'", 1, true), msg)
      assert.are.equal(0, #emu:requests{ route = "ml.arm.patch" })
      assert.are.equal(1, #emu:requests{ route = "ml.arm.get" })
      assert.are.same(before.location, emu:model("default").location)
    end)

    it("classic: fails with the service's refusal", function()
      local before = emu:model("endpoint2")
      local r = emu:run_sample(with_wrong_name(sample.CLASSIC_OVERRIDE))
      assert.are.equal(1, r.status, r.output)
      local log = emu:requests{ route = "ml.classic.update" }
      assert.are.equal(1, #log)
      assert.are.equal(400, log[1].status)
      assert.are.equal("InvalidResourceName", log[1].error)
      assert.matches("amlUpdateResource%s+Failed", r.stdout)
      -- the service's status and its message, which names the refused resource
      assert.truthy(r.stdout:find("answered 400: Resources[0].Name '" .. WRONG .. "'", 1, true), r.stdout)
      assert.are.same(before.location, emu:model("endpoint2").location)
    end)
  end)

  describe("a service-principal token that expires during the run", function()
    it("is refreshed, and no Resource Manager call is refused", function()
      -- 4 s tokens; the web-service update provisions for 7 s and is polled every 2 s
      emu:settings{ tokenLifetimeSeconds = 4, armOperationMs = 7000 }
      local r = emu:run_sample(sample.ARM_OVERRIDE)
      assert.are.equal(0, r.status, r.output)
      local log = emu:requests()
      local tokens, arm, first_token, first_arm, later_token = 0, 0, nil, nil, false
      for _, q in ipairs(log) do
        if q.route:find("^aad%.token") then
          assert.are.equal("issued", q.outcome)
          assert.are.equal(4, tonumber(q.expiresIn))
          tokens = tokens + 1
          first_token = first_token or q.seq
          if first_arm then later_token = true end
        elseif q.route:find("^ml%.arm%.") then
          arm = arm + 1
          first_arm = first_arm or q.seq
          assert.are.equal(200, q.status, json.encode(q))
        end
      end
      assert.is_true(tokens >= 2, "token requests: " .. tokens)
      assert.is_true(later_token, "no token was fetched after the first Resource Manager call")
      assert.is_true(arm >= 5)
      assert.truthy(emu:model("default").location:find(sample.MODEL, 1, true))
    end)
  end)
end)
