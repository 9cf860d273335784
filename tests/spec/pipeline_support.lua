-- Shared helpers for the pipeline specs: fake activity types and small builders.
-- Loaded with dofile from the specs (it is not a spec itself).
local lufa = require "lufa"
local json = require "lufa.json"
local E = require "lufa.error"
local activities = require "lufa.activities"
local pipeline = require "lufa.pipeline"

local S = {}

--- A registry with the fake types below layered over the process-wide one.
-- `log` collects what the fakes did: {name=, event=, time=}.
function S.registry(log)
  log = log or {}
  local reg = activities.new(activities.root)
  local active, peak = 0, 0
  local attempts = {}
  S.counters = function() return {active = active, peak = peak} end
  local function note(ctx, event) log[#log + 1] = {name = ctx.name, event = event, time = lufa.now()} end
  -- Succeeds after typeProperties.sleep seconds; output {value = typeProperties.value}.
  reg:register("Ok", {run = function(ctx)
    note(ctx, "start")
    ctx:defer(function() note(ctx, "cleanup") end)
    local s = ctx:property("sleep")
    if s and s > 0 then ctx:sleep(s) end
    note(ctx, "end")
    return {value = ctx:property("value")}
  end})
  -- Fails with typeProperties.errorCode / message (after an optional sleep).
  reg:register("Boom", {run = function(ctx)
    note(ctx, "start")
    local s = ctx:property("sleep")
    if s and s > 0 then ctx:sleep(s) end
    return nil, E.new{kind = "test", code = "boom", errorCode = ctx:property("errorCode") or "Boom42",
      message = ctx:property("message") or "it broke"}
  end})
  -- Fails the first typeProperties.failures attempts, then succeeds.
  reg:register("Flaky", {run = function(ctx)
    attempts[ctx.name] = (attempts[ctx.name] or 0) + 1
    note(ctx, "attempt")
    if attempts[ctx.name] <= ctx:property("failures") then
      error(E.new{kind = "test", code = "flaky", message = "attempt " .. attempts[ctx.name] .. " failed"})
    end
    return {attempts = attempts[ctx.name]}
  end})
  -- Counts how many run at once (peak), holding for typeProperties.sleep seconds.
  reg:register("Probe", {run = function(ctx)
    active = active + 1
    if active > peak then peak = active end
    note(ctx, "start")
    ctx:sleep(ctx:property("sleep") or 0.01)
    active = active - 1
    note(ctx, "end")
    return {item = ctx:property("item")}
  end})
  return reg, log
end

--- An activity table: S.act("A", "Ok", {deps}, {typeProperties}, extra fields).
function S.act(name, type_name, deps, props, extra)
  local a = {name = name, type = type_name, typeProperties = json.object(props or {})}
  if deps then
    a.dependsOn = {}
    for _, d in ipairs(deps) do
      a.dependsOn[#a.dependsOn + 1] = {activity = d[1], dependencyConditions = {table.unpack(d, 2)}}
    end
  end
  for k, v in pairs(extra or {}) do a[k] = v end
  return a
end

--- A factory holding one pipeline "P" (plus more from `extra.pipelines`).
function S.factory(acts, props, registry, extra)
  local p = {activities = acts}
  for k, v in pairs(props or {}) do p[k] = v end
  local t = {pipelines = {{name = "P", properties = p}}}
  for k, v in pairs(extra or {}) do
    if k == "pipelines" then
      for _, x in ipairs(v) do t.pipelines[#t.pipelines + 1] = x end
    else
      t[k] = v
    end
  end
  local f, problems = pipeline.from_table(t, {activities = registry or S.registry(), name = "testfactory"})
  assert(f, problems and pipeline.format_problems(problems))
  return f
end

--- Run pipeline `name` (default "P") and return record, statuses by activity name (last attempt).
function S.run(f, name, opts)
  local record, err = f:run(name or "P", opts)
  assert(record, err and tostring(err.message or err))
  local statuses, records = {}, {}
  for _, r in ipairs(f:activity_runs(record.runId)) do
    statuses[r.activityName] = r.status
    records[r.activityName] = r
  end
  return record, statuses, records
end

--- Messages of problems of a given severity.
function S.messages(problems, severity)
  local out = {}
  for _, p in ipairs(problems) do
    if p.severity == (severity or "error") then out[#out + 1] = p.message end
  end
  return out
end

--- The first problem whose message contains `text` (plain find), or nil.
function S.find_problem(problems, text)
  for _, p in ipairs(problems) do
    if p.message:find(text, 1, true) then return p end
  end
end

return S
