-- Twenty consecutive runs of the sample pipeline while the stand-ins inject faults into 20 % of the
-- Azure ML and Azure AD requests (429 with Retry-After, 503, connection resets before and after the request
-- was processed, stalls). Every run must succeed and start exactly one training job, as the service saw it.
local json = require "lufa.json"
local emulators = require "tests.support.emulators"

local sample = emulators.sample
local RUNS = 20
local emu, data_dir, gens

-- Five fault kinds. The first rule matching a request decides, so the kinds cannot be separate rules on
-- one route; each service gets one rule whose repeating sequence has these five faults among 25 steps:
-- 20 % of its requests, every kind equally often, the same pattern on every run of the test.
local KINDS = {
  { type = "status", status = 429, retryAfter = 1 },
  { type = "status", status = 503 },
  { type = "reset", when = "before" },
  { type = "reset", when = "mid-body" },  -- processed, then the answer is cut: the client cannot know
  { type = "stall", seconds = 2 },
}
local CYCLE = 25
local FAULT_AT = { [2] = 1, [7] = 2, [11] = 3, [17] = 4, [20] = 5 }  -- step → kind

local function fault_rules()
  local rules = json.array{}
  for _, route in ipairs{ "ml.*", "aad.*" } do
    local sequence = json.array{}
    for step = 1, CYCLE do
      sequence[step] = FAULT_AT[step] and KINDS[FAULT_AT[step]] or { type = "pass" }
    end
    rules[#rules + 1] = { route = route, sequence = sequence, ["repeat"] = true }
  end
  return { seed = 20, rules = rules }
end

-- "status 429", "reset:mid-body", ... as the request log names a fault
local function fault_name(entry)
  if entry.fault == "status" then return "status " .. tostring(entry.status) end
  return entry.fault
end

describe("the sample pipeline under injected faults", function()
  setup(function()
    emu, data_dir, gens = emulators.start_with_data(200)
    emu:reset()
    emu:upload(sample.INPUT, gens[2].file)
    -- short jobs and provisioning keep twenty runs quick; the faults are what is tested
    emu:settings{ jobDurationMs = 200, armOperationMs = 300 }
  end)

  teardown(function() emulators.stop_with_data(emu, data_dir) end)

  it("succeeds " .. RUNS .. " times in a row with exactly one training job started per run", function()
    emu:faults(fault_rules())
    local seen = {}
    for run = 1, RUNS do
      local r = emu:run_sample(sample.ARM_OVERRIDE, { "--json" })
      assert.are.equal(0, r.status, string.format("run %d of %d failed:\n%s", run, RUNS, r.output))
      local train = emulators.activity_run(r.json, sample.TRAINING)
      assert.are.equal("Succeeded", r.json.pipelineRun.status)
      -- the jobs this run created: any number submitted (a retried submit may leave one NotStarted),
      -- exactly one started, and it is the one the activity reports
      local started = {}
      for _, j in ipairs(emu:jobs()) do
        if not seen[j.id] then
          seen[j.id] = true
          if j.state ~= "NotStarted" then started[#started + 1] = j end
        end
      end
      assert.are.equal(1, #started, string.format("run %d started %d jobs", run, #started))
      assert.are.equal(train.output.jobId, started[1].id)
      assert.are.equal("Finished", started[1].state)
      assert.are.equal(train.output.jobId, emu:model("default").model.source.jobId)
    end
    -- the faults really were there: 20 % of each service's requests, every kind on Azure ML
    local total, faulted, kinds = {}, {}, {}
    for _, q in ipairs(emu:requests()) do
      local svc = q.route:match("^aad%.") and "aad" or (q.route:match("^ml%.") and "ml") or nil
      if svc then
        total[svc] = (total[svc] or 0) + 1
        if q.fault then
          faulted[svc] = (faulted[svc] or 0) + 1
          kinds[fault_name(q)] = true
        end
      end
    end
    for _, svc in ipairs{ "ml", "aad" } do
      local share = (faulted[svc] or 0) / total[svc]
      assert.is_true(share > 0.15 and share <= 0.25, string.format("%s: %d of %d requests faulted", svc,
        faulted[svc] or 0, total[svc]))
    end
    for _, k in ipairs{ "status 429", "status 503", "reset:before", "reset:mid-body", "stall" } do
      assert.is_true(kinds[k], "no " .. k .. " fault was injected")
    end
  end)
end)
