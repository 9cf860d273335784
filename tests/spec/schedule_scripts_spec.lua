-- Cron schedules of Lua scripts on a virtual clock, each run a real child lufa process: the schedules
-- file's checks with JSON paths, runs at the cron times with their environment and log, catchUp after a
-- restart (none, latest, all), and the overlap policies (allow, skip, replace).
local json = require "lufa.json"
local runs = require "lufa.runs"
local scheduler = require "lufa.schedule.scheduler"
local scripts = require "lufa.schedule.scripts"
local clock = require "lufa.schedule.clock"
local util = require "tests.support.util"

local dir
local T0 = runs.parse_time("2027-01-04T08:00:00Z")

setup(function() dir = util.tempdir() end)
teardown(function() os.execute("rm -rf " .. util.shell_quote(dir)) end)

local n = 0
-- A folder with the script `body` and a schedules file of `schedules`; returns the file's path.
local function schedules_file(schedules, body)
  n = n + 1
  local folder = string.format("%s/s%d", dir, n)
  assert(require("lufa.fs").mkdir(folder))
  util.write_file(folder .. "/job.lua", body or [[
    local f = assert(io.open(os.getenv("OUT"), "a"))
    f:write(os.getenv("LUFA_SCHEDULE"), " ", os.getenv("LUFA_SCHEDULED_TIME"), "\n")
    f:close()
    print("job ran")
  ]])
  util.write_file(folder .. "/schedules.json", json.encode{schedules = schedules})
  return folder .. "/schedules.json", folder
end

local function run_until(path, store, from, to, lines)
  local units, problems = scripts.load(path, {store_path = store.path})
  assert.is_table(units, require("lufa.pipeline").format_problems(problems or {}))
  local c = clock.virtual(from, to)
  local sched = scheduler.new{store = store, clock = c, extra_units = units, scope = scripts.scope(path),
    log = function(line) if lines then lines[#lines + 1] = line end end}
  sched:start()
  util.wait_until(function() return c.now() >= to end, 30)
  sched:drain(20, "test over")
  sched:wait()
  return sched
end

local function lines_of(path)
  local out = {}
  local f = io.open(path)
  if not f then return out end
  for l in f:lines() do out[#out + 1] = (l:gsub("%.0000000Z", "Z")) end
  f:close()
  return out
end

describe("a schedules file", function()
  it("is checked field by field, with JSON paths", function()
    local path = schedules_file({
      {name = "a", script = "missing.lua", cron = "61 * * * *", timeZone = "Mars/Olympus", catchUp = "some",
        overlap = "queue", retries = 3},
      {name = "a", script = "job.lua", cron = "@daily"},
      {script = "job.lua"},
    })
    local units, problems = scripts.load(path)
    assert.is_nil(units)
    local text = require("lufa.pipeline").format_problems(problems)
    for _, want in ipairs{
      "%$%.schedules%[0%]%.retries: error: unknown field 'retries'",
      "%$%.schedules%[0%]%.script: error: no script at .-/missing%.lua",
      "%$%.schedules%[0%]%.cron: error: .-minute",
      "%$%.schedules%[0%]%.timeZone: error: unknown time zone 'Mars/Olympus'",
      "%$%.schedules%[0%]%.catchUp: error: catchUp must be none, latest or all, got 'some'",
      "%$%.schedules%[0%]%.overlap: error: overlap must be allow, skip or replace, got 'queue'",
      "%$%.schedules%[1%]%.name: error: a second schedule named 'a'",
      "%$%.schedules%[2%]%.name: error: a schedule needs a name",
      "%$%.schedules%[2%]%.cron: error: a schedule needs a cron expression",
    } do
      assert.matches(want, text)
    end
  end)

  it("refuses a file that is not a schedules document, naming it", function()
    local path = schedules_file({})
    util.write_file(path, "[1, 2")
    local units, problems = scripts.load(path)
    assert.is_nil(units)
    assert.are.equal(path, problems[1].file)
  end)
end)

describe("a cron schedule of a script", function()
  it("runs the script at the cron times as a child lufa, recorded and logged", function()
    local out = dir .. "/times-1"
    local path = schedules_file({{name = "tick", script = "job.lua", cron = "*/10 * * * *", env = {OUT = out}}})
    local store = assert(runs.open(dir .. "/s-1.db"))
    run_until(path, store, T0 - 1, T0 + 1200 + 1)
    -- the virtual clock fires all three within moments: the children may finish in any order
    local got = lines_of(out)
    table.sort(got)
    assert.are.same({"tick 2027-01-04T08:00:00Z", "tick 2027-01-04T08:10:00Z", "tick 2027-01-04T08:20:00Z"}, got)
    local list = store:pipeline_runs({trigger = "tick"})
    assert.are.equal(3, #list)
    for _, r in ipairs(list) do
      assert.are.equal("Succeeded", r.status)
      assert.are.equal("CronSchedule", r.invokedBy.invokedByType)
      assert.are.equal("job ran\n", util.read_file(r.logFile))
    end
    store:close()
  end)

  it("records a script that fails, with where its output is", function()
    local path = schedules_file({{name = "bad", script = "job.lua", cron = "0 * * * *"}}, "error('no data')")
    local store = assert(runs.open(dir .. "/s-2.db"))
    run_until(path, store, T0 - 1, T0 + 1)
    local r = store:pipeline_runs({trigger = "bad"})[1]
    assert.are.equal("Failed", r.status)
    assert.matches("the script exited with status 1; its output is in .-%.log", r.message)
    assert.matches("no data", util.read_file(r.logFile))
    store:close()
  end)

  for _, case in ipairs{
    {policy = "none", want = {}},
    {policy = "latest", want = {"c 2027-01-04T09:00:00Z"}},
    {policy = "all", want = {"c 2027-01-04T08:20:00Z", "c 2027-01-04T08:40:00Z", "c 2027-01-04T09:00:00Z"}},
  } do
    it("after a restart catches up missed fire times per catchUp " .. case.policy, function()
      local out = dir .. "/catch-" .. case.policy
      local path = schedules_file({{name = "c", script = "job.lua", cron = "*/20 * * * *", catchUp = case.policy,
        env = {OUT = out}}})
      local store = assert(runs.open(dir .. "/catch-" .. case.policy .. ".db"))
      run_until(path, store, T0 - 1, T0 + 1)                      -- 08:00
      run_until(path, store, T0 + 3600 + 300, T0 + 3600 + 301)    -- down from 08:00 to 09:05
      local want = {"c 2027-01-04T08:00:00Z"}
      for _, x in ipairs(case.want) do want[#want + 1] = x end
      local got = lines_of(out)
      table.sort(got)
      assert.are.same(want, got)
      store:close()
    end)
  end

  local slow = [[
    local f = assert(io.open(os.getenv("OUT"), "a"))
    f:write("start ", os.getenv("LUFA_SCHEDULED_TIME"), "\n")
    f:close()
    require("lufa").sleep(1.5)
    f = assert(io.open(os.getenv("OUT"), "a"))
    f:write("end ", os.getenv("LUFA_SCHEDULED_TIME"), "\n")
    f:close()
  ]]

  it("with overlap skip does not start a run while the previous one runs", function()
    local out = dir .. "/skip"
    local path = schedules_file({{name = "o", script = "job.lua", cron = "* * * * *", overlap = "skip",
      env = {OUT = out}}}, slow)
    local store = assert(runs.open(dir .. "/skip.db"))
    local lines = {}
    run_until(path, store, T0 - 1, T0 + 120 + 1, lines)   -- 08:00, 08:01, 08:02 within moments
    assert.are.same({"start 2027-01-04T08:00:00Z", "end 2027-01-04T08:00:00Z"}, lines_of(out))
    local statuses = {}
    for _, tr in ipairs(store:trigger_runs(scripts.scope(path), "o")) do statuses[#statuses + 1] = tr.status end
    assert.are.same({"Succeeded", "Skipped", "Skipped"}, statuses)
    assert.matches("skipped the fire time 2027%-01%-04T08:01:00%.0000000Z: run .- still runs %(overlap skip%)",
      table.concat(lines, "\n"))
    store:close()
  end)

  it("with overlap replace stops the previous run (SIGTERM) and starts the new one", function()
    local out = dir .. "/replace"
    local path = schedules_file({{name = "r", script = "job.lua", cron = "* * * * *", overlap = "replace",
      env = {OUT = out}}}, slow)
    local store = assert(runs.open(dir .. "/replace.db"))
    run_until(path, store, T0 - 1, T0 + 60 + 1)          -- 08:00 then 08:01 at once
    local list = store:pipeline_runs({trigger = "r"})
    local statuses = {}
    for _, r in ipairs(list) do statuses[#statuses + 1] = r.status end
    table.sort(statuses)
    assert.are.same({"Cancelled", "Succeeded"}, statuses)
    assert.are.same({"end 2027-01-04T08:01:00Z"}, (function()
      local ends = {}
      for _, l in ipairs(lines_of(out)) do if l:match("^end") then ends[#ends + 1] = l end end
      return ends
    end)())
    store:close()
  end)

  it("with overlap allow runs them side by side", function()
    local out = dir .. "/allow"
    local path = schedules_file({{name = "a", script = "job.lua", cron = "* * * * *", env = {OUT = out}}}, slow)
    local store = assert(runs.open(dir .. "/allow.db"))
    run_until(path, store, T0 - 1, T0 + 60 + 1)
    local got = lines_of(out)
    table.sort(got)
    assert.are.same({"end 2027-01-04T08:00:00Z", "end 2027-01-04T08:01:00Z", "start 2027-01-04T08:00:00Z",
      "start 2027-01-04T08:01:00Z"}, got)
    store:close()
  end)
end)
