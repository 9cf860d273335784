-- `lufa schedule` with the sample factory against the stand-ins, on the real clock: a Minute trigger
-- retrains on time; the scheduler killed with kill -9 during a run resumes that run when it starts again
-- (one fire, one training job); SIGTERM drains: the running run is cancelled after the grace period and
-- its batch job deleted.
local json = require "lufa.json"
local runs = require "lufa.runs"
local emulators = require "tests.support.emulators"

local sample = emulators.sample
local emu, data_dir, gens, work

local function count(list, pred)
  local n = 0
  for _, x in ipairs(list) do if pred(x) then n = n + 1 end end
  return n
end

-- A copy of the sample factory with one trigger: every minute from `start` (epoch s, UTC).
local function factory_with_trigger(start)
  local dir = work .. "/factory-" .. math.floor(start)
  assert(os.execute(string.format("mkdir -p %s/trigger && cp -r %s/pipeline %s/linkedService %s/",
    emulators.shell_quote(dir), sample.FACTORY, sample.FACTORY, emulators.shell_quote(dir))))
  emulators.write_file(dir .. "/trigger/EveryMinute.json", json.encode{name = "EveryMinute", properties = {
    type = "ScheduleTrigger", runtimeState = "Started",
    typeProperties = {recurrence = {frequency = "Minute", interval = 1,
      startTime = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(start)), timeZone = "UTC"}},
    pipelines = {{pipelineReference = {referenceName = sample.PIPELINE, type = "PipelineReference"}}}}})
  return dir
end

local function schedule(dir, store, ...)
  local args = {"schedule", dir, "--override", sample.ARM_OVERRIDE, "--store", store, ...}
  return emu:spawn_lufa(args)
end

-- Every trigger run in the store, oldest fire time first.
local function trigger_runs(store)
  local s = assert(runs.open(store))
  local list = {}
  for row in s.db:rows("SELECT record FROM trigger_runs ORDER BY scheduled_ms") do
    list[#list + 1] = json.decode(row.record)
  end
  s:close()
  return list
end

local function run_status(store, id)
  local s = assert(runs.open(store))
  local r = s:get_pipeline_run(id)
  s:close()
  return r and r.status
end

describe("lufa schedule with the sample factory", function()
  setup(function()
    emu, data_dir, gens = emulators.start_with_data(200)
    work = emulators.tempdir()
  end)

  teardown(function()
    emulators.stop_with_data(emu, data_dir)
    os.execute("rm -rf " .. emulators.shell_quote(work))
  end)

  before_each(function()
    emu:reset()
    emu:upload(sample.INPUT, gens[2].file)
  end)

  it("retrains on time, and drains on SIGTERM", function()
    local start = math.ceil(runs.wall_time()) + 4
    local store = work .. "/on-time.db"
    local before = emu:model("default")
    local child = schedule(factory_with_trigger(start), store)
    local done = emulators.eventually(function()
      local list = trigger_runs(store)
      return list[1] and list[1].status == "Succeeded" and list[1]
    end, 60)
    assert.is_table(done, child:stderr())
    assert.are.equal(os.date("!%Y-%m-%dT%H:%M:%S", start) .. ".0000000Z", done.scheduledTime)
    -- started on time: within a second of the fire time
    local late = runs.parse_time(done.triggerRunTimestamp) - start
    assert.is_true(late >= 0 and late < 1, "started " .. late .. " s after its fire time")
    assert.are_not.same(before.location, emu:model("default").location)
    assert.are.equal("Succeeded", run_status(store, done.triggeredPipelines[sample.PIPELINE]))
    child:signal("TERM")
    assert.are.equal(0, child:wait(30))
    assert.matches("started run", child:stderr())
    assert.matches("draining %(SIGTERM%)", child:stderr())
    child:cleanup()
  end)

  it("killed with kill -9 during a run, resumes that run when started again: one fire, one job", function()
    emu:settings{ jobDurationMs = 5000 }
    local start = math.ceil(runs.wall_time()) + 3
    local store = work .. "/killed.db"
    local dir = factory_with_trigger(start)
    local first = schedule(dir, store)
    assert.is_truthy(emulators.eventually(function()
      for _, j in ipairs(emu:jobs()) do if j.state == "Running" then return true end end
    end, 30), first:stderr())
    first:signal("KILL")
    first:wait(10)
    local second = schedule(dir, store)
    local done = emulators.eventually(function()
      local list = trigger_runs(store)
      return list[1] and list[1].status ~= "InProgress" and list[1]
    end, 60)
    assert.is_table(done, second:stderr())
    assert.are.equal("Succeeded", done.status, second:stderr())
    assert.matches("resumed run", second:stderr())
    local first_fires = count(trigger_runs(store), function(r) return r.scheduledTime == done.scheduledTime end)
    assert.are.equal(1, first_fires)
    assert.are.equal(1, #emu:requests{ route = "ml.bes.submit" })
    assert.are.equal(1, count(emu:jobs(), function(j) return j.state ~= "NotStarted" end))
    second:signal("TERM")
    assert.are.equal(0, second:wait(60))
    first:cleanup()
    second:cleanup()
  end)

  it("drains on SIGTERM: the run still going after the grace period is cancelled, its job deleted", function()
    emu:settings{ jobDurationMs = 120000 }
    local start = math.ceil(runs.wall_time()) + 3
    local store = work .. "/drain.db"
    local child = schedule(factory_with_trigger(start), store, "--drain-grace", "1")
    local job = emulators.eventually(function()
      for _, j in ipairs(emu:jobs()) do if j.state == "Running" then return j end end
    end, 30)
    assert.is_table(job, child:stderr())
    child:signal("TERM")
    assert.are.equal(0, child:wait(30))
    assert.matches("cancelling run", child:stderr())
    assert.are.equal("Cancelled", emu:jobs(job.id).state)
    local list = trigger_runs(store)
    assert.are.equal("Cancelled", run_status(store, list[1].triggeredPipelines[sample.PIPELINE]))
    child:cleanup()
  end)
end)
