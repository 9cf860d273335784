-- A fleet: three `lufa schedule` processes (hosts fleet-1..3) on one factory and one PostgreSQL store, on an
-- accelerated clock, through the 200 fire times of a Minute trigger whose pipeline waits a second. Halfway,
-- the host executing a run is killed with kill -9. Every fire time must run exactly once: one trigger run
-- and one pipeline run each, none lost, the killed host's runs resumed (not started again) by another host.
local json = require "lufa.json"
local lufa = require "lufa"
local process = require "lufa.process"
local runs = require "lufa.runs"
local util = require "tests.support.util"
local pg = require "tests.support.postgres"

local FIRES = 200
local RATE = 240         -- scheduled seconds per real second: a fire time every 0.25 s
local LEASE = 2          -- real seconds a dead host's claims last

local server, work

local function write_json(path, value)
  util.write_file(path, json.encode(value, {pretty = true}))
end

-- The factory: pipeline Short (one Wait of a second) and trigger EveryMinute from `start` for FIRES minutes.
local function factory(start)
  local dir = work .. "/factory"
  assert(os.execute("mkdir -p " .. util.shell_quote(dir .. "/pipeline") .. " " .. util.shell_quote(dir .. "/trigger")))
  write_json(dir .. "/pipeline/Short.json", {name = "Short", properties = {activities = {
    {name = "Pause", type = "Wait", typeProperties = {waitTimeInSeconds = 1}}}}})
  write_json(dir .. "/trigger/EveryMinute.json", {name = "EveryMinute", properties = {
    type = "ScheduleTrigger", runtimeState = "Started",
    typeProperties = {recurrence = {frequency = "Minute", interval = 1, timeZone = "UTC",
      startTime = os.date("!%Y-%m-%dT%H:%M:%SZ", start), endTime = os.date("!%Y-%m-%dT%H:%M:%SZ", start + FIRES * 60)}},
    pipelines = {{pipelineReference = {referenceName = "Short", type = "PipelineReference"}}}}})
  return dir
end

local function host(i, dir, url, origin)
  local log = string.format("%s/fleet-%d.log", work, i)
  local p = assert(process.spawn({util.lufa_binary(), "schedule", dir, "--store", url}, {stdout = log,
    stderr = "stdout", env_extra = {LUFA_HOST_ID = "fleet-" .. i, LUFA_CLOCK_RATE = tostring(RATE),
      LUFA_CLOCK_ORIGIN = string.format("%.3f", origin), LUFA_LEASE_SECONDS = tostring(LEASE),
      LUFA_BUILD_DIR = os.getenv("LUFA_BUILD_DIR")}}))
  return {proc = p, log = log, name = "fleet-" .. i}
end

-- The hosts' logs (their ends, for a failure's message, unless `whole`).
local function logs(hosts, whole)
  local out = {}
  for _, h in ipairs(hosts) do out[#out + 1] = "== " .. h.name .. "\n" .. (util.read_file(h.log) or "") end
  local text = table.concat(out, "\n")
  return whole and text or text:sub(-6000)
end

describe("a fleet of three schedulers on one PostgreSQL store", function()
  setup(function()
    work = util.tempdir()
    server = pg.start()
  end)
  teardown(function()
    server:stop()
    os.execute("rm -rf " .. util.shell_quote(work))
  end)

  it("runs each of 200 fire times exactly once, with one host killed with kill -9 halfway", function()
    local url = server:database()
    local origin = runs.wall_time()
    -- the first fire time a few real seconds ahead, so all three are up for it
    local start = math.ceil((origin + 3 * RATE) / 60) * 60
    local dir = factory(start)
    local hosts = {host(1, dir, url, origin), host(2, dir, url, origin), host(3, dir, url, origin)}
    local store = assert(runs.open(url))

    local function count(sql, ...) return store:first(sql, ...).n end
    local victim, victim_runs
    -- a scheduler that stopped on its own fails the test at once, with the logs
    local function all_up()
      for _, h in ipairs(hosts) do
        if h ~= victim and h.proc:status() ~= "running" then error(h.name .. " stopped:\n" .. logs(hosts), 2) end
      end
    end
    -- halfway: kill the host that executes a run at that moment
    util.wait_until(function()
      all_up()
      if count("SELECT count(*) AS n FROM trigger_runs") < FIRES / 2 then return false end
      -- the host of the run that started last: its run has the most time left, so it is still going when the
      -- kill lands (runs that end in between are dropped below)
      local rows = store:query("SELECT run_id, owner_host FROM pipeline_runs WHERE status = 'InProgress' " ..
        "ORDER BY start_ms DESC")
      if #rows == 0 then return false end
      for _, h in ipairs(hosts) do
        if h.name == rows[1].owner_host then victim = h end
      end
      victim_runs = {}
      for _, r in ipairs(rows) do
        if r.owner_host == victim.name then victim_runs[#victim_runs + 1] = r.run_id end
      end
      victim.proc:kill("KILL")
      return true
    end, 300)
    victim.proc:wait()
    -- a run that ended between the query and the kill is the victim's own success, not one to take over
    local still = {}
    for _, id in ipairs(victim_runs) do
      local rec = store:get_pipeline_run(id)
      if rec.status == "InProgress" then still[#still + 1] = id end
    end
    victim_runs = still

    -- the rest runs to the end: every fire time decided and every run ended
    util.wait_until(function()
      all_up()
      return count("SELECT count(*) AS n FROM trigger_runs WHERE status <> 'InProgress'") == FIRES
        and count("SELECT count(*) AS n FROM pipeline_runs WHERE status NOT IN ('Succeeded', 'Failed', 'Cancelled')") == 0
    end, 600)

    -- exactly the 200 fire times, each once, each Succeeded
    local trs = store:trigger_runs(dir, "EveryMinute")
    assert.are.equal(FIRES, #trs, logs(hosts))
    local per_fire = {}
    for i, tr in ipairs(trs) do
      assert.are.equal(runs.iso8601(start + (i - 1) * 60), tr.scheduledTime)
      assert.are.equal("Succeeded", tr.status, json.encode(tr))
      per_fire[tr.triggerRunId] = 0
    end
    -- one pipeline run per fire time, Succeeded, named by the fire time's record
    local all = store:pipeline_runs()
    assert.are.equal(FIRES, #all)
    for _, r in ipairs(all) do
      assert.are.equal("Succeeded", r.status, json.encode(r))
      per_fire[r.invokedBy.id] = per_fire[r.invokedBy.id] + 1
    end
    for _, tr in ipairs(trs) do
      assert.are.equal(1, per_fire[tr.triggerRunId], tr.scheduledTime)
      local rec = store:get_pipeline_run(tr.triggeredPipelines.Short)
      assert.are.equal(tr.triggerRunId, rec.invokedBy.id)
    end
    -- the killed host's runs: resumed under their ids by another host, and ended
    assert.is_true(#victim_runs > 0)
    for _, id in ipairs(victim_runs) do
      local rec, info = store:get_pipeline_run(id)
      assert.are.equal("Succeeded", rec.status)
      assert.are_not.equal(victim.name, info.host)
    end
    local whole = logs(hosts, true)
    assert.matches("took over fire time", whole)
    for _, id in ipairs(victim_runs) do assert.truthy(whole:find("resumed run " .. id, 1, true), id) end
    -- `lufa runs list` says which host ran what: each run's line names its host
    local p = io.popen(util.shell_quote(util.lufa_binary()) .. " runs list --limit 300 --store " .. util.shell_quote(url))
    local listing = p:read("a")
    p:close()
    assert.matches("HOST", listing)
    local lines = 0
    for line in listing:gmatch("[^\n]+") do
      local id = line:match("^(%x+%-%x+%-%x+%-%x+%-%x+)")
      if id then
        local _, info = store:get_pipeline_run(id)
        assert.truthy(line:find("  " .. info.host .. " ", 1, true), line)
        lines = lines + 1
      end
    end
    assert.are.equal(FIRES, lines)
    p = io.popen(util.shell_quote(util.lufa_binary()) .. " runs show " .. victim_runs[1] .. " --store " ..
      util.shell_quote(url))
    local shown = p:read("a")
    p:close()
    local _, resumed = store:get_pipeline_run(victim_runs[1])
    assert.matches("host +" .. resumed.host:gsub("%-", "%%-") .. "\n", shown)
    assert.is_nil(listing:find(server.password, 1, true))

    for _, h in ipairs(hosts) do
      if h ~= victim then
        h.proc:kill("TERM")
        assert.are.equal(0, select(2, h.proc:wait()), logs(hosts))
      end
    end
    store:close()
    lufa.sleep(0)
  end)
end)
