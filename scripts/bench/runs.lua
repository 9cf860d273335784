-- Benchmark: what the durable run store costs.
-- 1. A 1,000-activity pipeline (no-op activities; wide and deep shapes) run with the SQLite store and with
--    the memory store, interleaved run by run; prints the medians and the ratio (goal: <= 1.2x).
-- 2. `lufa runs list` over a store of 100,000 runs (2 activity runs each): the whole command as a process,
--    and the store query alone, newest first and filtered (goal: < 50 ms).
-- Usage: BUILD/lufa scripts/bench/runs.lua [activities] [repeats] [stored runs]
local lufa = require "lufa"
local pipeline = require "lufa.pipeline"
local activities = require "lufa.activities"
local runs = require "lufa.runs"

local N = tonumber(arg and arg[1]) or 1000
local REPEATS = tonumber(arg and arg[2]) or 7
local STORED = tonumber(arg and arg[3]) or 100000

local dir = os.tmpname()
os.remove(dir)
assert(require("lufa.fs").mkdir(dir))

local registry = activities.new(activities.root)
registry:register("NoOp", {run = function() return {} end})

local function shape(kind)
  local acts = {}
  for i = 1, N do
    local a = {name = "a" .. i, type = "NoOp"}
    if kind == "deep" and i > 1 then a.dependsOn = {{activity = "a" .. (i - 1), dependencyConditions = {"Succeeded"}}} end
    acts[i] = a
  end
  return {name = "Bench", properties = {activities = acts}}
end

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

print(string.format("run store: %d no-op activities, median of %d runs each, SQLite and memory interleaved", N, REPEATS))
print(string.format("%-6s %14s %14s %8s", "shape", "memory ms", "sqlite ms", "ratio"))
for _, kind in ipairs{"wide", "deep"} do
  local times = {memory = {}, sqlite = {}}
  local sqlite_store = assert(runs.open(dir .. "/bench-" .. kind .. ".db"))
  for _ = 1, REPEATS do
    for _, which in ipairs{"memory", "sqlite"} do
      local store = which == "memory" and runs.memory() or sqlite_store
      local factory = assert(pipeline.from_table(shape(kind), {activities = registry, store = store}))
      assert(factory:plan("Bench"))
      collectgarbage()
      local t0 = lufa.now()
      local record = assert(factory:run("Bench"))
      lufa.sleep(0)  -- the last turn's commit belongs to the run
      local t1 = lufa.now()
      assert(record.status == "Succeeded", record.message)
      times[which][#times[which] + 1] = t1 - t0
    end
  end
  sqlite_store:close()
  local m, s = median(times.memory), median(times.sqlite)
  print(string.format("%-6s %14.1f %14.1f %7.2fx", kind, m * 1e3, s * 1e3, s / m))
end

-- A store of STORED runs, written in turns of 1,000 (one transaction each).
local path = dir .. "/listing.db"
local store = assert(runs.open(path))
local t0 = lufa.now()
local base = runs.wall_time() - STORED * 60
for i = 1, STORED do
  local id = runs.guid()
  local start = runs.iso8601(base + i * 60)
  store:put_pipeline_run({runId = id, runGroupId = id, pipelineName = i % 10 == 0 and "Rare" or "Nightly",
    status = i % 17 == 0 and "Failed" or "Succeeded", runStart = start, runEnd = start, durationInMs = 2400,
    invokedBy = {name = "NightlyTrigger", invokedByType = "ScheduleTrigger"}, parameters = {epochs = "10"},
    message = "", isLatest = true})
  for a = 1, 2 do
    store:put_activity_run({activityRunId = runs.guid(), pipelineRunId = id, activityName = "act" .. a,
      status = "Succeeded", activityRunStart = start, durationInMs = 1200, output = {jobId = id}})
  end
  if i % 1000 == 0 then lufa.sleep(0) end
end
store:close()
print(string.format("\nrun store of %d runs written in %.1f s (%.0f runs/s with 2 activity runs each)", STORED,
  lufa.now() - t0, STORED / (lufa.now() - t0)))

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local self_exe = io.popen("readlink /proc/" .. io.open("/proc/self/stat"):read("n") .. "/exe"):read("l")
local function time_command(cmd)
  local t = {}
  for _ = 1, REPEATS do
    local s = lufa.now()
    assert(os.execute(cmd .. " >/dev/null"))
    t[#t + 1] = lufa.now() - s
  end
  return median(t)
end
local base_cmd = q(self_exe) .. " -e ''"
local list_cmd = q(self_exe) .. " runs list --store " .. q(path)
print(string.format("%-48s %10s", "over " .. STORED .. " runs", "median ms"))
print(string.format("%-48s %10.1f", "lufa -e '' (process start, for reference)", time_command(base_cmd) * 1e3))
print(string.format("%-48s %10.1f", "lufa runs list (newest 50)", time_command(list_cmd) * 1e3))
print(string.format("%-48s %10.1f", "lufa runs list --pipeline Rare --status Failed",
  time_command(list_cmd .. " --pipeline Rare --status Failed") * 1e3))
store = assert(runs.open(path))
for _, case in ipairs{{"query: newest 51", nil}, {"query: pipeline Rare, newest 51", {pipelineName = "Rare"}},
    {"query: status Failed, newest 51", {status = "Failed"}}} do
  local t = {}
  for _ = 1, REPEATS do
    local s = lufa.now()
    local list = store:pipeline_runs(case[2], {limit = 51, newest_first = true})
    t[#t + 1] = lufa.now() - s
    assert(#list == 51)
  end
  print(string.format("%-48s %10.2f", case[1], median(t) * 1e3))
end
store:close()
os.execute("rm -rf " .. q(dir))
