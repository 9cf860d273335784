-- Benchmark: what `lufa schedule` costs a host, measured on a child `lufa schedule` process.
-- 1. Idle: a factory of N ScheduleTriggers (daily, none due during the measurement); CPU used over
--    IDLE seconds after start-up (goal: < 0.1 % of a core) and resident memory (goal: < 32 MiB).
-- 2. Fire-time error: N triggers firing every minute, their start seconds spread over the minute, each
--    starting a one-activity pipeline; for every fire, the pipeline run's start minus its scheduled time
--    (goal: p99 < 50 ms).
-- There is no peer program that runs ADF triggers; the figures are compared with the goals above.
-- Usage: BUILD/lufa scripts/bench/schedule.lua [triggers] [idle seconds] [fire seconds]
local lufa = require "lufa"
local json = require "lufa.json"
local fs = require "lufa.fs"
local process = require "lufa.process"
local runs = require "lufa.runs"

local N = tonumber(arg and arg[1]) or 1000
local IDLE = tonumber(arg and arg[2]) or 30
local FIRE = tonumber(arg and arg[3]) or 150

local LUFA = fs.realpath("/proc/self/exe")
local TICKS = 100   -- clock ticks per second in /proc/PID/stat (USER_HZ on Linux)

local dir = os.tmpname()
os.remove(dir)
assert(fs.mkdir(dir))

local function factory(name, recurrence_of)
  local root = dir .. "/" .. name
  assert(fs.mkdir(root .. "/pipeline", "700", true))
  assert(fs.mkdir(root .. "/trigger", "700", true))
  assert(fs.write_file(root .. "/pipeline/P.json", json.encode{name = "P", properties = {
    activities = {{name = "w", type = "Wait", typeProperties = {waitTimeInSeconds = 0}}}}}))
  for i = 1, N do
    local tname = string.format("T%04d", i)
    assert(fs.write_file(root .. "/trigger/" .. tname .. ".json", json.encode{name = tname, properties = {
      type = "ScheduleTrigger", runtimeState = "Started", typeProperties = {recurrence = recurrence_of(i)},
      pipelines = {{pipelineReference = {referenceName = "P", type = "PipelineReference"}}}}}))
  end
  return root
end

local function proc_cpu_seconds(pid)
  local f = assert(io.open("/proc/" .. pid .. "/stat"))
  local line = f:read("a")
  f:close()
  local rest = line:match("%) (.*)$")
  local fields = {}
  for v in rest:gmatch("%S+") do fields[#fields + 1] = v end
  return (tonumber(fields[12]) + tonumber(fields[13])) / TICKS   -- utime, stime
end

local function proc_rss_mib(pid)
  for line in io.lines("/proc/" .. pid .. "/status") do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
end

local function start_scheduler(root, store)
  return assert(process.spawn({LUFA, "schedule", root, "--store", store},
    {stdout = dir .. "/schedule.log", stderr = "stdout"}))
end

local function wait_ready(store)
  for _ = 1, 600 do
    local f = io.open(dir .. "/schedule.log")
    local text = f and f:read("a") or ""
    if f then f:close() end
    if text:find("lufa: scheduling", 1, true) then return end
    lufa.sleep(0.1)
  end
  error("lufa schedule did not start: see " .. dir .. "/schedule.log")
end

local function stop(p)
  p:kill("TERM")
  local st = p:wait(60)
  assert(st and st.exited and st.code == 0, "lufa schedule did not drain cleanly")
end

-- 1. idle
local idle_root = factory("idle", function(i)
  return {frequency = "Day", interval = 1, startTime = "2027-01-01T03:00:00Z",
    schedule = {hours = {3}, minutes = {i % 60}}}
end)
local p = start_scheduler(idle_root, dir .. "/idle.db")
wait_ready(dir .. "/idle.db")
lufa.sleep(2)
local c0, t0 = proc_cpu_seconds(p.pid), lufa.now()
lufa.sleep(IDLE)
local c1, t1 = proc_cpu_seconds(p.pid), lufa.now()
local rss = proc_rss_mib(p.pid)
stop(p)
local share = (c1 - c0) / (t1 - t0) * 100
print(string.format("idle, %d triggers: %.3f %% of a core over %.0f s (goal < 0.1 %%), RSS %.1f MiB (goal < 32)",
  N, share, t1 - t0, rss))

-- 2. fire-time error
local base = math.floor(runs.wall_time() / 60) * 60
local fire_root = factory("fire", function(i)
  return {frequency = "Minute", interval = 1, startTime = os.date("!%Y-%m-%dT%H:%M:%SZ", base + (i - 1) % 60)}
end)
local store_path = dir .. "/fire.db"
p = start_scheduler(fire_root, store_path)
wait_ready(store_path)
local from = runs.wall_time()
lufa.sleep(FIRE)
stop(p)
local store = assert(runs.open(store_path))
local errors = {}
for row in store.db:rows("SELECT record FROM trigger_runs") do
  local tr = json.decode(row.record)
  local scheduled = runs.parse_time(tr.scheduledTime)
  local run_id = tr.triggeredPipelines and tr.triggeredPipelines.P
  local rec = run_id and store:get_pipeline_run(run_id)
  if scheduled >= from + 1 and rec and rec.runStart then
    errors[#errors + 1] = runs.parse_time(rec.runStart) - scheduled
  end
end
store:close()
table.sort(errors)
local function pct(q) return errors[math.max(1, math.ceil(#errors * q))] * 1000 end
assert(#errors > 0, "no fire was recorded")
print(string.format("fire-time error over %d fires (%d triggers, every minute): p50 %.1f ms, p99 %.1f ms (goal < 50), " ..
  "max %.1f ms", #errors, N, pct(0.5), pct(0.99), errors[#errors] * 1000))
local function remove_tree(path)
  local st = fs.lstat(path)
  if st and st.type == "directory" then
    for _, name in ipairs(fs.list(path) or {}) do remove_tree(path .. "/" .. name) end
  end
  fs.remove(path)
end
remove_tree(dir)
