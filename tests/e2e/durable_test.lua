-- Durable runs of the sample pipeline against the stand-ins: a run killed with kill -9 during training
-- resumes and waits for the same job; SIGTERM and SIGHUP delete the job and record the run Cancelled; a
-- run that failed in its update reruns from the failure without a second training job; an update whose
-- answer was lost is judged by the web service's state, never sent twice; another process cancels a run
-- through the store; the store's file holds no secret of any of these runs.
local json = require "lufa.json"
local emulators = require "tests.support.emulators"

local sample = emulators.sample
local emu, data_dir, gens, store_dir

local function count(list, pred)
  local n = 0
  for _, x in ipairs(list) do if pred(x) then n = n + 1 end end
  return n
end

local function started_jobs()
  return count(emu:jobs(), function(j) return j.state ~= "NotStarted" end)
end

local function route_count(route, status)
  return count(emu:requests{ route = route }, function(q) return status == nil or q.status == status end)
end

local store
local function run_args(...)
  local args = { "run", sample.FACTORY, sample.PIPELINE, "--override", sample.ARM_OVERRIDE, "--store", store }
  for _, a in ipairs{ ... } do args[#args + 1] = a end
  return args
end

local function lufa(...)
  local args = { ... }
  args[#args + 1] = "--store"
  args[#args + 1] = store
  return emu:lufa(args)
end

local function show(id)
  local r = lufa("runs", "show", id, "--json")
  assert.are.equal(0, r.status, r.output)
  return json.decode(r.stdout)
end

local function running_job()
  return emulators.eventually(function()
    for _, j in ipairs(emu:jobs()) do if j.state == "Running" then return j end end
  end, 30)
end

describe("durable runs of the sample pipeline", function()
  setup(function()
    emu, data_dir, gens = emulators.start_with_data(200)
    store_dir = emulators.tempdir()
  end)

  teardown(function()
    -- every run of this file went to stores in store_dir: not one secret of the stand-ins is in them
    local p = io.popen("cat " .. emulators.shell_quote(store_dir) .. "/*.db* 2>/dev/null")
    local bytes = p:read("a")
    p:close()
    local found = {}
    if emu and #bytes > 0 then
      for name, value in pairs(emu:secrets()) do
        if bytes:find(value, 1, true) then found[#found + 1] = name end
      end
    end
    emulators.stop_with_data(emu, data_dir)
    os.execute("rm -rf " .. emulators.shell_quote(store_dir))
    assert.is_true(#bytes > 0, "no store was written")
    assert.are.same({}, found)
  end)

  local n = 0
  before_each(function()
    emu:reset()
    emu:upload(sample.INPUT, gens[2].file)
    n = n + 1
    store = store_dir .. "/runs" .. n .. ".db"
  end)

  it("kill -9 during training, then lufa resume: the same job is awaited and the model deployed", function()
    emu:settings{ jobDurationMs = 4000 }
    local before = emu:model("default")
    local child = emu:spawn_lufa(run_args())
    local id = child:run_id()
    assert.is_string(id, child:stderr())
    local job = running_job()
    assert.is_table(job, "the batch job never started")
    child:signal("KILL")
    child:wait(10)
    local list = lufa("runs", "list")
    assert.matches(id:gsub("%-", "%%-") .. "%s+LookupPipelineDemo%s+Interrupted", list.stdout)

    local r = lufa("resume", id)
    assert.are.equal(0, r.status, r.output)
    assert.matches("pipeline LookupPipelineDemo: Succeeded", r.stdout)
    assert.matches("reconnected to batch job " .. job.id, r.stderr)
    assert.are.equal(1, route_count("ml.bes.submit"))
    assert.are.equal(1, started_jobs())
    assert.are.equal("Finished", emu:jobs(job.id).state)
    assert.are_not.same(before.location, emu:model("default").location)
    local doc = show(id)
    assert.are.equal("Succeeded", doc.pipelineRun.status)
    assert.are.equal("ok", lufa("runs", "check").stdout:match(": (%S+)"))
    child:cleanup()
  end)

  it("lufa resume of a run whose job the service no longer has fails the activity and says what to do", function()
    emu:settings{ jobDurationMs = 120000 }
    local child = emu:spawn_lufa(run_args())
    local id = child:run_id()
    assert.is_table(running_job(), "the batch job never started")
    child:signal("KILL")
    child:wait(10)
    emu:reset()  -- the service forgets every job
    emu:upload(sample.INPUT, gens[2].file)
    local r = lufa("resume", id)
    assert.are.equal(1, r.status, r.output)
    assert.matches("no longer exists on the service", r.stdout)
    assert.truthy(r.stdout:find("'lufa rerun " .. id .. " --from-failure' submits a new job", 1, true), r.stdout)
    assert.are.equal(0, route_count("ml.bes.submit"))
    child:cleanup()
  end)

  for _, case in ipairs{ { "TERM", 143 }, { "HUP", 129 } } do
    it("SIG" .. case[1] .. " during training deletes the job and records the run Cancelled (exit " .. case[2] .. ")",
      function()
        emu:settings{ jobDurationMs = 120000 }
        local child = emu:spawn_lufa(run_args())
        local job = running_job()
        assert.is_table(job, "the batch job never started")
        child:signal(case[1])
        assert.are.equal(case[2], child:wait(30))
        assert.are.equal("Cancelled", emu:jobs(job.id).state)
        assert.are.equal(1, route_count("ml.bes.delete", 204))
        local doc = show(child:run_id())
        assert.are.equal("Cancelled", doc.pipelineRun.status)
        assert.are.equal(0, route_count("ml.arm.patch"))
        child:cleanup()
      end)
  end

  it("rerun --from-failure after a failed update trains no second model", function()
    -- the update's first read of the web service is refused (a 400 is not retried)
    emu:faults{ rules = { { route = "ml.arm.get", sequence = { { type = "status", status = 400 } } } } }
    local r = emu:lufa(run_args())
    assert.are.equal(1, r.status, r.output)
    assert.matches("amlUpdateResource%s+Failed", r.stdout)
    local id = r.stderr:match("lufa: run (%S+) of pipeline")
    local trained = emu:model("default").location
    local again = lufa("rerun", id, "--from-failure")
    assert.are.equal(0, again.status, again.output)
    assert.matches("amlBEGetilearner%s+Succeeded.-output of run", again.stdout)
    assert.matches("amlUpdateResource%s+Succeeded", again.stdout)
    assert.are.equal(1, route_count("ml.bes.submit"))
    assert.are.equal(1, started_jobs())
    assert.are.equal(1, route_count("ml.arm.patch"))
    assert.are_not.same(trained, emu:model("default").location)
    local new_id = again.stderr:match("lufa: run (%S+) of pipeline")
    assert.are.equal(show(id).pipelineRun.runGroupId, show(new_id).pipelineRun.runGroupId)
  end)

  it("an update whose answer was lost is found on the service, not sent again", function()
    emu:faults{ rules = { { route = "ml.arm.patch", sequence = { { type = "reset", when = "after" } } } } }
    local before = emu:model("default")
    local r = emu:lufa(run_args())
    assert.are.equal(0, r.status, r.output)
    assert.matches("went through although its answer was lost", r.stderr)
    assert.are.equal(1, route_count("ml.arm.patch"))
    assert.are_not.same(before.location, emu:model("default").location)
  end)

  it("kill -9 while the update provisions, then lufa resume: the operation is followed, not repeated", function()
    emu:settings{ armOperationMs = 4000 }
    local child = emu:spawn_lufa(run_args())
    local id = child:run_id()
    assert.is_truthy(emulators.eventually(function() return route_count("ml.arm.patch") == 1 end, 60))
    emulators.eventually(function() return route_count("ml.arm.operation") >= 1 end, 10)
    child:signal("KILL")
    child:wait(10)
    local r = lufa("resume", id)
    assert.are.equal(0, r.status, r.output)
    assert.matches("following the web%-service update accepted before lufa stopped", r.stderr)
    assert.are.equal(1, route_count("ml.arm.patch"))
    assert.are.equal(1, route_count("ml.bes.submit"))
    assert.matches("amlBEGetilearner%s+Succeeded", r.stdout)
    child:cleanup()
  end)

  it("lufa runs cancel from another process deletes the job and ends the run", function()
    emu:settings{ jobDurationMs = 120000 }
    local child = emu:spawn_lufa(run_args())
    local job = running_job()
    assert.is_table(job, "the batch job never started")
    local c = lufa("runs", "cancel", child:run_id())
    assert.are.equal(0, c.status, c.output)
    assert.matches(": Cancelled", c.stdout)
    assert.are.equal(1, child:wait(30))
    assert.are.equal("Cancelled", emu:jobs(job.id).state)
    assert.are.equal(1, route_count("ml.bes.delete", 204))
    child:cleanup()
  end)
end)
