-- The scheduler on a virtual clock: ScheduleTrigger fire times and parameters, restarts that neither lose
-- nor double a fire time, missed fire times, --once, the pipeline's concurrency (Queued runs), stopped
-- triggers, tumbling windows with backfill, maxConcurrency and self-dependency, and the draining stop.
local lufa = require "lufa"
local json = require "lufa.json"
local pipeline = require "lufa.pipeline"
local runs = require "lufa.runs"
local scheduler = require "lufa.schedule.scheduler"
local clock = require "lufa.schedule.clock"
local util = require "tests.support.util"

local dir
local T0 = runs.parse_time("2027-01-04T08:00:00Z")

setup(function() dir = util.tempdir() end)
teardown(function() os.execute("rm -rf " .. util.shell_quote(dir)) end)

local n = 0
-- A factory folder with pipelines and triggers (tables encoded to files), a store and the log lines.
local function factory(pipelines, triggers_)
  n = n + 1
  local root = string.format("%s/f%d", dir, n)
  assert(require("lufa.fs").mkdir(root .. "/pipeline"))
  assert(require("lufa.fs").mkdir(root .. "/trigger"))
  for name, p in pairs(pipelines) do
    util.write_file(root .. "/pipeline/" .. name .. ".json", json.encode{name = name, properties = p})
  end
  for name, t in pairs(triggers_) do
    util.write_file(root .. "/trigger/" .. name .. ".json", json.encode{name = name, properties = t})
  end
  local store = assert(runs.open(root .. "/runs.db"))
  local f = assert(pipeline.load_factory(root, {store = store}))
  return f, store
end

local function wait_act(seconds)
  return {name = "w", type = "Wait", typeProperties = {waitTimeInSeconds = seconds}}
end

local function schedule_trigger(recurrence, pipeline_name, params, state)
  return {type = "ScheduleTrigger", runtimeState = state or "Started",
    typeProperties = {recurrence = recurrence},
    pipelines = {{pipelineReference = {referenceName = pipeline_name, type = "PipelineReference"},
      parameters = params or json.object{}}}}
end

-- Runs a scheduler on a virtual clock from `from` until the clock passes `to`, then drains it.
local function run_until(f, store, from, to, opts)
  opts = opts or {}
  local c = opts.clock or clock.virtual(from, to)
  local lines = opts.lines or {}
  local sched, problems = scheduler.new{factory = f, store = store, clock = c,
    log = function(line) lines[#lines + 1] = line end, grace = opts.grace}
  assert.are.same({}, problems)
  sched:start(opts.mode)
  if opts.mode == "once" then
    sched:wait()
  else
    util.wait_until(function() return c.now() >= to and (not opts.until_ or opts.until_()) end, 30)
    sched:drain(opts.drain or 10, "test over")
    sched:wait()
  end
  return lines, sched
end

local function fired(store, scope, name)
  local out = {}
  for _, r in ipairs(store:trigger_runs(scope, name)) do out[#out + 1] = r end
  return out
end

-- A predicate: `count` trigger runs of `name` have ended.
local function ended(store, f, name, count)
  return function()
    local n = 0
    for _, r in ipairs(store:trigger_runs(f.origin.factory, name)) do
      if r.status == "Succeeded" or r.status == "Failed" then n = n + 1 end
    end
    return n >= count
  end
end

local function times_of(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = r.scheduledTime:gsub("%.0000000Z$", "Z") end
  return out
end

describe("a ScheduleTrigger", function()
  it("fires at its recurrence's times, passing @trigger().scheduledTime to the pipeline", function()
    local f, store = factory({P = {parameters = {at = {type = "String"}}, activities = {wait_act(0)}}},
      {Every15 = schedule_trigger({frequency = "Minute", interval = 15, startTime = "2027-01-04T08:00:00Z",
        timeZone = "UTC"}, "P", {at = "@trigger().scheduledTime"})})
    run_until(f, store, T0 - 30, T0 + 3600 + 1)
    local list = fired(store, f.origin.factory, "Every15")
    assert.are.same({"2027-01-04T08:00:00Z", "2027-01-04T08:15:00Z", "2027-01-04T08:30:00Z", "2027-01-04T08:45:00Z",
      "2027-01-04T09:00:00Z"}, times_of(list))
    for _, tr in ipairs(list) do
      assert.are.equal("Succeeded", tr.status)
      local run_id = tr.triggeredPipelines.P
      local rec = store:get_pipeline_run(run_id)
      assert.are.equal("Succeeded", rec.status)
      assert.are.equal("ScheduleTrigger", rec.invokedBy.invokedByType)
      assert.are.equal("Every15", rec.invokedBy.name)
      assert.are.equal(tr.scheduledTime, rec.parameters.at)
    end
    local list_by_trigger = store:pipeline_runs({trigger = "Every15"})
    assert.are.equal(5, #list_by_trigger)
  end)

  it("after a restart fires neither a time twice nor a missed one (no backfill), and says how many it missed", function()
    local f, store = factory({P = {activities = {wait_act(0)}}},
      {Hourly = schedule_trigger({frequency = "Hour", interval = 1, startTime = "2027-01-04T08:00:00Z"}, "P")})
    run_until(f, store, T0 - 1, T0 + 2 * 3600 + 1)        -- 08:00, 09:00, 10:00
    local lines = run_until(f, store, T0 + 5 * 3600 + 30, T0 + 6 * 3600 + 1)  -- down 10:00-13:00:30
    assert.are.same({"2027-01-04T08:00:00Z", "2027-01-04T09:00:00Z", "2027-01-04T10:00:00Z", "2027-01-04T14:00:00Z"},
      times_of(fired(store, f.origin.factory, "Hourly")))
    assert.matches("missed 3 fire time%(s%) while lufa was not running %(ScheduleTrigger does not backfill%)",
      table.concat(lines, "\n"))
  end)

  it("with a grace period runs the latest missed fire time that is recent enough", function()
    local f, store = factory({P = {activities = {wait_act(0)}}},
      {Hourly = schedule_trigger({frequency = "Hour", interval = 1, startTime = "2027-01-04T08:00:00Z"}, "P")})
    run_until(f, store, T0 - 1, T0 + 1)
    run_until(f, store, T0 + 3600 + 120, T0 + 3600 + 130, {grace = 300})
    assert.are.same({"2027-01-04T08:00:00Z", "2027-01-04T09:00:00Z"}, times_of(fired(store, f.origin.factory, "Hourly")))
  end)

  it("--once runs every fire time since the last check, then returns", function()
    local f, store = factory({P = {activities = {wait_act(0)}}},
      {Q = schedule_trigger({frequency = "Minute", interval = 30, startTime = "2027-01-04T08:00:00Z"}, "P")})
    local lines = run_until(f, store, T0 + 10, nil, {mode = "once"})  -- the first check only records itself
    assert.matches("first check", table.concat(lines, "\n"))
    assert.are.equal(0, #fired(store, f.origin.factory, "Q"))
    run_until(f, store, T0 + 2 * 3600 + 5, nil, {mode = "once"})       -- 08:30 .. 10:00
    assert.are.same({"2027-01-04T08:30:00Z", "2027-01-04T09:00:00Z", "2027-01-04T09:30:00Z", "2027-01-04T10:00:00Z"},
      times_of(fired(store, f.origin.factory, "Q")))
    run_until(f, store, T0 + 2 * 3600 + 50, nil, {mode = "once"})      -- nothing new
    assert.are.equal(4, #fired(store, f.origin.factory, "Q"))
  end)

  it("queues runs beyond the pipeline's concurrency and starts them in order", function()
    local f, store = factory({Slow = {concurrency = 1, activities = {wait_act(0.3)}}},
      {Often = schedule_trigger({frequency = "Minute", interval = 1, startTime = "2027-01-04T08:00:00Z"}, "Slow")})
    local lines = run_until(f, store, T0 - 1, T0 + 120 + 1, {until_ = ended(store, f, "Often", 3)})
    local list = fired(store, f.origin.factory, "Often")
    assert.are.equal(3, #list)
    local starts = {}
    for i, tr in ipairs(list) do
      local rec = store:get_pipeline_run(tr.triggeredPipelines.Slow)
      assert.are.equal("Succeeded", rec.status, "run " .. i)
      starts[i] = runs.parse_time(rec.runStart)
    end
    -- one at a time: each started after the previous ended (0.3 s each)
    assert.is_true(starts[2] - starts[1] >= 0.25, tostring(starts[2] - starts[1]))
    assert.is_true(starts[3] - starts[2] >= 0.25)
    assert.matches("queued run .- %(pipeline concurrency 1 reached%)", table.concat(lines, "\n"))
  end)

  it("does not fire while stopped; lufa trigger start (in the store) starts it", function()
    local f, store = factory({P = {activities = {wait_act(0)}}},
      {Idle = schedule_trigger({frequency = "Minute", interval = 10, startTime = "2027-01-04T08:00:00Z"}, "P", nil,
        "Stopped")})
    local lines = run_until(f, store, T0 - 1, T0 + 1800)
    assert.are.equal(0, #fired(store, f.origin.factory, "Idle"))
    assert.matches("not started %(runtimeState Stopped", table.concat(lines, "\n"))
    store:set_trigger_state(f.origin.factory, "Idle", {runtime_state = "Started"})
    run_until(f, store, T0 + 3600 - 1, T0 + 3600 + 1)
    assert.are.same({"2027-01-04T09:00:00Z"}, times_of(fired(store, f.origin.factory, "Idle")))
  end)

  it("draining stops firing and cancels what outlives the grace period", function()
    local f, store = factory({Long = {activities = {wait_act(30)}}},
      {Once = schedule_trigger({frequency = "Hour", interval = 1, startTime = "2027-01-04T08:00:00Z"}, "Long")})
    local c = clock.virtual(T0 - 1, T0 + 1)
    local lines = {}
    local sched = scheduler.new{factory = f, store = store, clock = c, log = function(l) lines[#lines + 1] = l end}
    sched:start()
    util.wait_until(function() return #fired(store, f.origin.factory, "Once") == 1 end, 10)
    local t0 = lufa.now()
    sched:drain(0.2, "SIGTERM")
    sched:wait()
    assert.is_true(lufa.now() - t0 < 5)
    local tr = fired(store, f.origin.factory, "Once")[1]
    assert.are.equal("Cancelled", store:get_pipeline_run(tr.triggeredPipelines.Long).status)
    assert.matches("draining %(SIGTERM%)", table.concat(lines, "\n"))
    assert.matches("cancelling run", table.concat(lines, "\n"))
  end)
end)

describe("a TumblingWindowTrigger", function()
  local function tumbling(tp, pipeline_name)
    return {type = "TumblingWindowTrigger", runtimeState = "Started", typeProperties = tp,
      pipeline = {pipelineReference = {referenceName = pipeline_name, type = "PipelineReference"},
        parameters = {from = "@trigger().outputs.windowStartTime", to = "@trigger().outputs.windowEndTime"}}}
  end

  it("backfills past windows oldest first, at most maxConcurrency at once, with the window bounds", function()
    local f, store = factory({W = {parameters = {from = {type = "String"}, to = {type = "String"}},
      activities = {wait_act(0.2)}}},
      {Hourly = tumbling({frequency = "Hour", interval = 1, startTime = "2027-01-04T00:00:00Z", delay = "00:10:00",
        maxConcurrency = 2}, "W")})
    run_until(f, store, T0 - 8 * 3600 + 3.5 * 3600, T0 - 8 * 3600 + 5 * 3600 + 700,  -- 03:30 .. 05:11:40
      {until_ = ended(store, f, "Hourly", 5)})
    local list = fired(store, f.origin.factory, "Hourly")
    assert.are.same({"2027-01-04T00:00:00Z", "2027-01-04T01:00:00Z", "2027-01-04T02:00:00Z", "2027-01-04T03:00:00Z",
      "2027-01-04T04:00:00Z"}, times_of(list))
    local intervals = {}
    for i, tr in ipairs(list) do
      local rec = store:get_pipeline_run(tr.triggeredPipelines.W)
      assert.are.equal("Succeeded", rec.status)
      assert.are.equal(tr.windowStartTime, rec.parameters.from)
      assert.are.equal(tr.windowEndTime, rec.parameters.to)
      intervals[i] = {runs.parse_time(rec.runStart), runs.parse_time(rec.runEnd)}
    end
    -- never three at once
    for i = 3, #intervals do
      assert.is_true(intervals[i][1] >= math.min(intervals[i - 1][2], intervals[i - 2][2]) - 0.01)
    end
  end)

  it("with a self-dependency runs the windows one after the other", function()
    local f, store = factory({W = {parameters = {from = {type = "String"}, to = {type = "String"}},
      activities = {wait_act(0.1)}}},
      {Chain = tumbling({frequency = "Hour", interval = 1, startTime = "2027-01-04T00:00:00Z", maxConcurrency = 5,
        dependsOn = {{type = "SelfDependencyTumblingWindowTriggerReference", offset = "-01:00:00", size = "01:00:00"}}},
        "W")})
    run_until(f, store, T0 - 8 * 3600 + 3 * 3600 + 10, T0 - 8 * 3600 + 3 * 3600 + 20,
      {until_ = ended(store, f, "Chain", 3)})
    local list = fired(store, f.origin.factory, "Chain")
    assert.are.same({"2027-01-04T00:00:00Z", "2027-01-04T01:00:00Z", "2027-01-04T02:00:00Z"}, times_of(list))
    local last_end = 0
    for _, tr in ipairs(list) do
      local rec = store:get_pipeline_run(tr.triggeredPipelines.W)
      local s, e = runs.parse_time(rec.runStart), runs.parse_time(rec.runEnd or "")
      assert.is_true(s >= last_end - 0.01, "a window started before the one it depends on ended")
      last_end = e or last_end
    end
  end)
end)

describe("a TumblingWindowTrigger's retryPolicy", function()
  it("runs a failing window again count times, intervalInSeconds apart, then records it Failed", function()
    local f, store = factory({Flaky = {activities = {{name = "boom", type = "Fail",
      typeProperties = {message = "no data yet", errorCode = "404"}}}}},
      {Retried = {type = "TumblingWindowTrigger", runtimeState = "Started",
        typeProperties = {frequency = "Hour", interval = 1, startTime = "2027-01-04T00:00:00Z", maxConcurrency = 1,
          retryPolicy = {count = 2, intervalInSeconds = 60}},
        pipeline = {pipelineReference = {referenceName = "Flaky", type = "PipelineReference"}}}})
    local from = runs.parse_time("2027-01-04T01:00:30Z")
    local lines = run_until(f, store, from, from + 400, {until_ = ended(store, f, "Retried", 1)})
    local list = fired(store, f.origin.factory, "Retried")
    assert.are.equal("2027-01-04T00:00:00Z", times_of(list)[1])
    local tr = list[1]
    assert.are.equal("Failed", tr.status)
    assert.are.equal(3, tr.attempts)
    local text = table.concat(lines, "\n")
    assert.matches("window 0 failed; retry 1 of 2 in 60 s", text)
    assert.matches("window 0 failed; retry 2 of 2 in 60 s", text)
    local attempts = store:pipeline_runs({trigger = "Retried"})
    assert.are.equal(3, #attempts)
    for _, r in ipairs(attempts) do assert.are.equal("Failed", r.status) end
  end)
end)

describe("lufa validate of triggers", function()
  it("reports recurrences out of range with their JSON paths, and a missing pipeline", function()
    local f = factory({P = {activities = {wait_act(0)}}}, {
      Bad = schedule_trigger({frequency = "Fortnightly", interval = -3, startTime = "2027-01-04T08:00:00Z"}, "P"),
      Lost = schedule_trigger({frequency = "Day", interval = 1, startTime = "2027-01-04T08:00:00Z"}, "Nope"),
    })
    local problems = f:validate()
    local text = pipeline.format_problems(problems)
    assert.matches("Bad%.json: %$%.properties%.typeProperties%.recurrence%.frequency: error:", text)
    assert.matches("Bad%.json: %$%.properties%.typeProperties%.recurrence%.interval: error:", text)
    assert.matches("Lost%.json: %$%.properties%.pipelines%[0%]%.pipelineReference%.referenceName: error: reference to a " ..
      "missing pipeline 'Nope'", text)
  end)
end)
