--- Cron schedules of Lua scripts: a schedules file, checked with JSON paths, and the units that run each
-- script as a child `lufa` process at its cron times.
--
--   {"schedules": [
--     {"name": "nightly", "script": "retrain.lua", "args": ["--data", "rentals.csv"],
--      "cron": "30 2 * * *", "timeZone": "W. Europe Standard Time",
--      "catchUp": "latest", "overlap": "skip", "env": {"LEVEL": "full"}}]}
--
-- `script` is relative to the file's folder, which is also the script's working folder. `catchUp`
-- (what runs of the fire times missed while lufa was not running): "none" (default), "latest" (one run
-- now), "all" (each, in order). `overlap` (a fire while the previous run still runs): "allow" (default),
-- "skip", "replace" (the previous run is stopped with SIGTERM). Each run is recorded in the run store as
-- a run of "pipeline" NAME invoked by a CronSchedule; its output goes to a log file beside the store.
-- @module lufa.schedule.scripts
local lufa = require "lufa"
local json = require "lufa.json"
local fs = require "lufa.fs"
local runs = require "lufa.runs"
local L = require "lufa.pipeline.lenient"

local M = {}

--- How many missed fire times `catchUp: "all"` runs at most.
M.CATCH_UP_LIMIT = 1000

local CATCH_UP = {none = true, latest = true, all = true}
local OVERLAP = {allow = true, skip = true, replace = true}
local FIELDS = {name = true, script = true, args = true, cron = true, timeZone = true, catchUp = true,
  overlap = true, env = true, description = true}

--- The scope of a schedules file in the run store: its absolute path.
function M.scope(path)
  return fs.realpath(path) or path
end

local function lufa_binary()
  return fs.realpath("/proc/self/exe")
end

--- Loads and checks a schedules file. @return units, problems (units nil when any problem is an error)
function M.load(path, opts)
  opts = opts or {}
  local problems = {}
  local function problem(at, fmt, ...)
    problems[#problems + 1] = {severity = "error", file = path, path = at, message = string.format(fmt, ...)}
  end
  local doc, err = json.decode_file(path)
  if doc == nil then
    problem("$", "%s", err and err.message or "cannot read the file")
    return nil, problems
  end
  local list = L.get(doc, "schedules")
  if not L.is_array(list) then
    problem("$", "expected {\"schedules\": [ {\"name\": ..., \"script\": ..., \"cron\": ...}, ... ]}")
    return nil, problems
  end
  local cron = require "lufa.schedule.cron"
  local zone = require "lufa.schedule.zone"
  local dir = (M.scope(path)):match("^(.*)/[^/]*$") or "."
  local units, names = {}, {}
  for i, s in ipairs(list) do
    local at = string.format("$.schedules[%d]", i - 1)
    local u = {kind = "CronSchedule", impl = M.Unit, dir = dir}
    if not L.is_object(s) then
      problem(at, "expected an object with name, script and cron")
      goto next
    end
    for k in pairs(s) do
      if not FIELDS[k] then problem(at .. "." .. k, "unknown field '%s' (known: name, script, args, cron, " ..
        "timeZone, catchUp, overlap, env, description)", k) end
    end
    u.name = s.name
    if type(u.name) ~= "string" or u.name == "" then
      problem(at .. ".name", "a schedule needs a name")
    elseif names[u.name:lower()] then
      problem(at .. ".name", "a second schedule named '%s'", u.name)
    else
      names[u.name:lower()] = true
    end
    if type(s.script) ~= "string" then
      problem(at .. ".script", "a schedule needs the script to run (a path relative to %s)", dir)
    else
      u.script = s.script:sub(1, 1) == "/" and s.script or (dir .. "/" .. s.script)
      if not fs.is_file(u.script) then problem(at .. ".script", "no script at %s", u.script) end
    end
    u.args = {}
    if s.args ~= nil then
      if not L.is_array(s.args) then problem(at .. ".args", "args must be an array of strings") else
        for j, a in ipairs(s.args) do
          if type(a) ~= "string" and type(a) ~= "number" then
            problem(string.format("%s.args[%d]", at, j - 1), "expected a string")
          end
          u.args[j] = tostring(a)
        end
      end
    end
    if type(s.cron) ~= "string" then
      problem(at .. ".cron", "a schedule needs a cron expression, e.g. \"30 2 * * *\" or \"@daily\"")
    else
      local c, why = cron.parse(s.cron)
      if not c then problem(at .. ".cron", "%s", why) end
      u.plan = c
    end
    local z, zerr = zone.get(s.timeZone or "UTC")
    if not z then problem(at .. ".timeZone", "%s", tostring(zerr)) end
    u.zone = z
    u.catch_up = s.catchUp or "none"
    if not CATCH_UP[u.catch_up] then problem(at .. ".catchUp", "catchUp must be none, latest or all, got '%s'",
      tostring(u.catch_up)) end
    u.overlap = s.overlap or "allow"
    if not OVERLAP[u.overlap] then problem(at .. ".overlap", "overlap must be allow, skip or replace, got '%s'",
      tostring(u.overlap)) end
    u.env = {}
    if s.env ~= nil then
      if not L.is_object(s.env) then problem(at .. ".env", "env must be an object of strings") else
        for k, v in pairs(s.env) do u.env[k] = tostring(v) end
      end
    end
    u.next_after = function(t) return u.plan and u.plan:next_after(t, u.zone) end
    u.runtime_state = "Started"
    u.pipelines = {}
    u.store_path = opts.store_path
    units[#units + 1] = u
    ::next::
  end
  if #problems > 0 then return nil, problems end
  return units, problems
end

-- ---------------------------------------------------------------- the unit

M.Unit = {}

function M.Unit.init(unit, sched, _, now)
  local state = sched.store:trigger_state(sched.scope, unit.name)
  local last = sched.store:last_fire(sched.scope, unit.name)
  local from = math.max(state.checked or -math.huge, last or -math.huge)
  unit.pending = {}
  unit.running = unit.running or {}
  if from > -math.huge and unit.catch_up ~= "none" then
    local missed = {}
    local t = unit.next_after(from)
    while t and t < now and #missed < M.CATCH_UP_LIMIT do
      missed[#missed + 1] = t
      t = unit.next_after(t)
    end
    if #missed > 0 then
      if unit.catch_up == "latest" then missed = {missed[#missed]} end
      sched:log(unit, "catching up %d missed fire time(s) (catchUp %s)", #missed, unit.catch_up)
      unit.pending = missed
    end
  end
  unit.next = unit.next_after(now - 0.001)
end

function M.Unit.due(unit)
  if #unit.pending > 0 then return unit.pending[1] end
  return unit.next
end

function M.Unit.act(unit, sched, now)
  while true do
    local t
    if #unit.pending > 0 then
      t = table.remove(unit.pending, 1)
    elseif unit.next and unit.next <= now then
      t = unit.next
      unit.next = unit.next_after(t)
    else
      break
    end
    M.fire(unit, sched, t)
    sched.store:set_trigger_state(sched.scope, unit.name, {checked = t})
  end
end

-- Where a run's output goes: logs/NAME/RUN_ID.log beside the store file (or in the state folder, for a
-- memory store and a database server's).
local function log_path(unit, run_id)
  local file = unit.store_path and unit.store_path ~= ":memory:" and not unit.store_path:find("^postgres")
  local default = runs.default_path()
  if not default or default:find("^postgres") then default = "/tmp/lufa/runs.db" end
  local base = file and unit.store_path:match("^(.*)/[^/]*$") or default:match("^(.*)/[^/]*$")
  local dir = base .. "/logs/" .. unit.name:gsub("[^%w%-_.]", "_")
  fs.mkdir(dir, "700", true)
  return dir .. "/" .. run_id .. ".log"
end

function M.fire(unit, sched, t)
  local process = require "lufa.process"
  local record = {triggerRunId = runs.guid(), triggerName = unit.name, triggerType = "CronSchedule",
    triggerRunTimestamp = runs.iso8601(sched.clock.now()), scheduledTime = runs.iso8601(t), status = "InProgress",
    triggeredPipelines = json.object{}, decisions = json.array{}}
  if not sched.store:claim_fire(sched.scope, unit.name, t, record) then
    sched:log(unit, "fire time %s was already taken (by an earlier or another scheduler)", runs.iso8601(t))
    return
  end
  local previous = next(unit.running)
  if previous and unit.overlap == "skip" then
    record.status = "Skipped"
    sched:decide(unit, record, "skipped the fire time %s: run %s still runs (overlap skip)", runs.iso8601(t), previous.runId)
    sched.store:put_trigger_run(sched.scope, record)
    return
  elseif previous and unit.overlap == "replace" then
    for h in pairs(unit.running) do
      sched:decide(unit, record, "stopping run %s: a new fire time replaces it (overlap replace)", h.runId)
      h:cancel("replaced by the next fire time")
    end
  end
  local run_id = runs.guid()
  local started = runs.wall_time()
  local log = log_path(unit, run_id)
  local env_extra = {LUFA_STORE = unit.store_path or sched.store.path, LUFA_SCHEDULE = unit.name,
    LUFA_SCHEDULED_TIME = runs.iso8601(t)}
  for k, v in pairs(unit.env) do env_extra[k] = v end
  local argv = {lufa_binary(), unit.script}
  for _, a in ipairs(unit.args) do argv[#argv + 1] = a end
  local run = {runId = run_id, runGroupId = run_id, pipelineName = unit.name, status = "InProgress",
    runStart = runs.iso8601(started), runEnd = json.null, durationInMs = json.null, isLatest = true, message = "",
    parameters = json.object{script = unit.script, args = table.concat(unit.args, " ")},
    invokedBy = {id = record.triggerRunId, name = unit.name, invokedByType = "CronSchedule"},
    lastUpdated = runs.iso8601(started), logFile = log}
  sched.store:put_pipeline_run(run)
  sched.store:own(run_id)
  record.triggeredPipelines[unit.name] = run_id
  local proc, perr = process.spawn(argv, {cwd = unit.dir, env_extra = env_extra, stdout = log, stderr = "stdout"})
  local function finish(status, message)
    local now = runs.wall_time()
    run.status, run.message, run.runEnd, run.lastUpdated = status, message, runs.iso8601(now), runs.iso8601(now)
    run.durationInMs = math.floor((now - started) * 1000 + 0.5)
    sched.store:put_pipeline_run(run)
    sched.store:disown(run_id)
    record.status = status == "Succeeded" and "Succeeded" or "Failed"
    sched.store:put_trigger_run(sched.scope, record)
    return run
  end
  if not proc then
    sched:decide(unit, record, "cannot start %s: %s", unit.script, tostring(perr))
    finish("Failed", tostring(perr))
    return
  end
  sched:decide(unit, record, "started run %s: %s (pid %d, log %s)", run_id, unit.script, proc.pid, log)
  sched.store:put_trigger_run(sched.scope, record)
  local cancelled
  local handle = {runId = run_id}
  function handle.cancel(_, reason)
    cancelled = reason or "cancelled"
    proc:kill("TERM")
  end
  function handle.wait()
    local _, code = proc:wait()
    if code == 0 then return finish("Succeeded", "") end
    if cancelled then return finish("Cancelled", "stopped: " .. cancelled) end
    return finish("Failed", string.format("the script exited with status %s; its output is in %s", tostring(code), log))
  end
  unit.running[handle] = true
  sched:track(unit, handle, function() unit.running[handle] = nil end)
end

return M
