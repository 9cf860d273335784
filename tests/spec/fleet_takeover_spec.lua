-- The scheduler on a PostgreSQL store takes over what a scheduler on another host left when it died: the
-- runs of its fire times that had not started, or were only queued, are started under the run ids the fire
-- times recorded (not new ones), and the fire times end with them.
local json = require "lufa.json"
local pipeline = require "lufa.pipeline"
local runs = require "lufa.runs"
local scheduler = require "lufa.schedule.scheduler"
local clock = require "lufa.schedule.clock"
local util = require "tests.support.util"
local pg = require "tests.support.postgres"

local T0 = runs.parse_time("2027-01-04T08:00:00Z")
local dir, server

setup(function()
  dir = util.tempdir()
  server = pg.start()
end)
teardown(function()
  server:stop()
  os.execute("rm -rf " .. util.shell_quote(dir))
end)

-- A factory with pipeline P (a Wait of 0 s) and trigger T, whose own fire times are all after `T0 + 1 h`.
local function factory(url)
  local root = dir .. "/factory"
  assert(os.execute("mkdir -p " .. util.shell_quote(root .. "/pipeline") .. " " .. util.shell_quote(root .. "/trigger")))
  util.write_file(root .. "/pipeline/P.json", json.encode{name = "P", properties = {activities = {
    {name = "w", type = "Wait", typeProperties = {waitTimeInSeconds = 0}}}}})
  util.write_file(root .. "/trigger/T.json", json.encode{name = "T", properties = {type = "ScheduleTrigger",
    runtimeState = "Started", typeProperties = {recurrence = {frequency = "Hour", interval = 1,
      startTime = runs.iso8601(T0 + 3600):sub(1, 19) .. "Z", timeZone = "UTC"}},
    pipelines = {{pipelineReference = {referenceName = "P", type = "PipelineReference"}}}}})
  local store = assert(runs.open(url))
  return assert(pipeline.load_factory(root, {store = store})), store
end

describe("a scheduler on a PostgreSQL store", function()
  it("starts the runs a dead host's fire times had not started (or had queued), under their recorded ids", function()
    local url = server:database()
    local f, store = factory(url)
    local scope = f.origin.factory
    local queued, unstarted = runs.guid(), runs.guid()
    -- a scheduler on host "gone" claims two fire times, queues the run of one, and dies
    os.execute("LUFA_HOST_ID=gone LUFA_LEASE_SECONDS=1 " .. util.shell_quote(util.lufa_binary()) .. " -e " ..
      util.shell_quote(string.format([[
      local runs = require "lufa.runs"
      local json = require "lufa.json"
      local store = assert(runs.open(%q))
      local function claim(t, id)
        assert(store:claim_fire(%q, "T", t, {triggerRunId = "tr-" .. id, triggerName = "T",
          triggerType = "ScheduleTrigger", scheduledTime = runs.iso8601(t), status = "InProgress",
          triggeredPipelines = {P = id}, decisions = json.array{}}))
      end
      claim(%d, %q)
      claim(%d, %q)
      store:put_pipeline_run({runId = %q, runGroupId = %q, pipelineName = "P", status = "Queued",
        runStart = runs.iso8601(), invokedBy = {id = "tr-" .. %q, name = "T", invokedByType = "ScheduleTrigger"}})
      os.execute("kill -9 " .. io.open("/proc/self/stat"):read("n"))]], url, scope, T0 - 120, unstarted, T0 - 60,
        queued, queued, queued, queued)) .. " >/dev/null 2>&1")
    assert.are.equal(2, #store:trigger_runs(scope, "T", {status = "InProgress"}))
    -- its claims' leases run out (on the server's clock)
    util.wait_until(function()
      return store:first("SELECT count(*) AS n FROM trigger_runs WHERE lease_until < " ..
        "(extract(epoch from clock_timestamp()) * 1000)::bigint").n == 2
    end, 30)

    local lines = {}
    local sched = scheduler.new{factory = f, store = store, clock = clock.virtual(T0, T0 + 10),
      log = function(line) lines[#lines + 1] = line end}
    sched:start()
    util.wait_until(function() return #store:trigger_runs(scope, "T", {status = "Succeeded"}) == 2 end, 60)
    sched:drain(10, "test over")
    sched:wait()

    local text = table.concat(lines, "\n")
    assert.matches("took over fire time", text)
    local all = store:pipeline_runs()
    assert.are.equal(2, #all)  -- no new run: the recorded ones
    for _, id in ipairs{unstarted, queued} do
      local rec, info = store:get_pipeline_run(id)
      assert.are.equal("Succeeded", rec.status)
      assert.are.equal("tr-" .. id, rec.invokedBy.id)
      assert.are.equal(require("lufa.runs.owner").self().host, info.host)
      assert.truthy(text:find("starting run " .. id, 1, true), text)
    end
    for _, tr in ipairs(store:trigger_runs(scope, "T")) do
      assert.are.equal("Succeeded", tr.status)
      assert.truthy(table.concat(tr.decisions, "\n"):find("took over", 1, true))
    end
    store:close()
  end)
end)
