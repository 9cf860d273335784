--- The scheduler: runs a factory's triggers (and cron schedules of scripts) in one task of the event loop.
--
-- Each schedule is a unit with `init(mode)`, `due()` (when it next needs to act, or nil) and `act(now)`.
-- Every fire time is claimed in the run store before anything is started for it (`claim_fire`), so a fire
-- time is acted on once, however often lufa restarts and however many schedulers share the store. Each
-- decision is logged as one line and kept in the trigger run's record.
--
--   local sched = scheduler.new{factory = f, store = store, clock = clock.real(), log = print}
--   sched:start()          -- the service (`lufa schedule`)
--   sched:drain(60)        -- stop firing; let runs finish for 60 s, then cancel them
--   sched:wait()
--
-- @module lufa.schedule.scheduler
local lufa = require "lufa"
local json = require "lufa.json"
local runs = require "lufa.runs"
local expression = require "lufa.expression"
local L = require "lufa.pipeline.lenient"
local triggers = require "lufa.schedule.triggers"

local M = {}

local Scheduler = {}
Scheduler.__index = Scheduler

--- How many missed fire times `--once` runs for one trigger at most (the rest are logged as skipped).
M.ONCE_LIMIT = 100
--- How often lufa notices `lufa trigger start|stop` made by another process (seconds).
M.STATE_POLL_SECONDS = 5

local function iso(t) return runs.iso8601(t) end
local function short(t) return os.date("!%Y-%m-%d %H:%M:%SZ", math.floor(t)) end

-- ---------------------------------------------------------------- trigger runs

local function trigger_run(unit, scheduled, extra)
  local r = {triggerRunId = runs.guid(), triggerName = unit.name, triggerType = unit.kind,
    triggerRunTimestamp = iso(unit.sched.clock.now()), scheduledTime = iso(scheduled), status = "InProgress",
    triggeredPipelines = json.object{}, properties = json.object{}, decisions = json.array{}}
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

function Scheduler:log(unit, fmt, ...)
  local msg = string.format(fmt, ...)
  self.log_fn(string.format("%s  %-24s %s", short(runs.wall_time()), unit and unit.name or "scheduler", msg))
  return msg
end

-- A decision: logged, and kept in the trigger run's record.
function Scheduler:decide(unit, record, fmt, ...)
  local msg = self:log(unit, fmt, ...)
  if record then record.decisions[#record.decisions + 1] = msg end
end

-- The parameters a trigger passes: expressions over @trigger() and @triggerBody().
local function evaluate_parameters(params, trigger_scope, body)
  local scope = {trigger = trigger_scope}
  if body then scope.triggerBody = function() return body end end
  local ok, v = pcall(expression.evaluate, params or json.object{}, scope)
  if not ok then return nil, v end
  return v
end

-- ---------------------------------------------------------------- starting pipeline runs

-- Starts (or queues, beyond the pipeline's `concurrency`) a run of pipeline `ref` for a fire.
-- `done(record)` is called when the run ends.
function Scheduler:start_pipeline(unit, record, ref, trigger_info, body, done)
  local factory = self.factory
  local params, perr = evaluate_parameters(ref.parameters, trigger_info.scope, body)
  if not params then
    self:decide(unit, record, "cannot evaluate the parameters of pipeline %s: %s", ref.name, tostring(perr))
    done({status = "Failed"})
    return
  end
  local plan = factory:plan(ref.name)
  local limit = plan and L.int(L.dig(plan.entry.resource, "properties", "concurrency"))
  local key = ref.name:lower()
  local active = self.active[key] or 0
  local run_id = runs.guid()
  record.triggeredPipelines[ref.name] = run_id
  local start = function()
    self.active[key] = (self.active[key] or 0) + 1
    local handle, err = factory:start(ref.name, {parameters = params, store = self.store, run_id = run_id,
      trigger = {type = unit.kind, name = unit.name, id = record.triggerRunId, time = iso(self.clock.now()),
        scheduled_time = trigger_info.scope.scheduledTime, outputs = trigger_info.scope.outputs},
      on_event = self.on_event})
    if not handle then
      self.active[key] = self.active[key] - 1
      self:decide(unit, record, "pipeline %s did not start: %s", ref.name, tostring(err))
      done({status = "Failed"})
      self:release(key)
      return
    end
    self:track(unit, handle, function(final)
      self.active[key] = self.active[key] - 1
      done(final)
      self:release(key)
    end)
  end
  if limit and limit > 0 and active >= limit then
    -- ADF's behaviour: the run exists as Queued and starts when a slot frees
    local t = runs.iso8601()
    self.store:put_pipeline_run({runId = run_id, runGroupId = run_id, pipelineName = plan.name, status = "Queued",
      runStart = t, lastUpdated = t, isLatest = true, parameters = json.object{}, message =
        string.format("queued: pipeline concurrency %d reached", limit),
      invokedBy = {id = record.triggerRunId, name = unit.name, invokedByType = unit.kind}})
    self.queued[key] = self.queued[key] or {}
    table.insert(self.queued[key], start)
    self:decide(unit, record, "queued run %s of %s (pipeline concurrency %d reached)", run_id, ref.name, limit)
  else
    self:decide(unit, record, "started run %s of %s", run_id, ref.name)
    start()
  end
end

-- A slot of pipeline `key` freed: the oldest queued run starts.
function Scheduler:release(key)
  local q = self.queued[key]
  if q and #q > 0 and not self.draining then table.remove(q, 1)() end
end

-- Waits for a run in a task of its own; `done(record)` when it ends.
function Scheduler:track(unit, handle, done)
  self.running[handle] = unit
  lufa.spawn(function()
    local ok, record = pcall(handle.wait, handle)
    self.running[handle] = nil
    if not ok then record = {status = "Failed", message = tostring(record), runId = handle.runId} end
    self:log(unit, "run %s %s%s", handle.runId, record.status,
      record.durationInMs ~= nil and record.durationInMs ~= json.null and
        string.format(" in %.1f s", record.durationInMs / 1000) or "")
    done(record)
    self:notify()
  end)
end

-- Fires `unit` for `scheduled`: claims the fire time, then starts every pipeline of the trigger.
-- `info.scope` is what `@trigger()` gives; `info.body` what `@triggerBody()` gives.
-- @return the trigger run record, or nil when the fire time was already claimed
function Scheduler:fire(unit, scheduled, info, on_end)
  local record = trigger_run(unit, scheduled, info.record)
  if not self.store:claim_fire(self.scope, unit.name, scheduled, record) then
    self:log(unit, "fire time %s was already taken (by an earlier or another scheduler)", short(scheduled))
    return nil
  end
  info.scope.scheduledTime = info.scope.scheduledTime or iso(scheduled)
  info.scope.startTime = iso(self.clock.now())
  local left, failed = #unit.pipelines, false
  local function done(final)
    if final.status ~= "Succeeded" then failed = true end
    left = left - 1
    if left == 0 then
      record.status = failed and "Failed" or "Succeeded"
      self.store:put_trigger_run(self.scope, record)
      if on_end then on_end(record) end
    end
  end
  for _, ref in ipairs(unit.pipelines) do
    self:start_pipeline(unit, record, ref, info, info.body, done)
  end
  self.store:put_trigger_run(self.scope, record)
  return record
end

-- ---------------------------------------------------------------- the units

local Units = {}

-- ScheduleTrigger: fires at the recurrence's times; missed fire times are not backfilled (ADF), except
-- by `--once`, which runs what fell due since the last check.
Units.ScheduleTrigger = {}
function Units.ScheduleTrigger.init(unit, sched, mode, now)
  local state = sched.store:trigger_state(sched.scope, unit.name)
  local last = sched.store:last_fire(sched.scope, unit.name)
  local from = math.max(state.checked or -math.huge, last or -math.huge)
  if mode == "once" then
    unit.next = from > -math.huge and unit.plan:next_after(from) or nil
    if not unit.next then
      sched:log(unit, "first check: fire times from now on are run by the next --once")
      sched.store:set_trigger_state(sched.scope, unit.name, {checked = now})
    end
    unit.once_limit = M.ONCE_LIMIT
    return
  end
  local grace = sched.grace or 0
  local missed, latest = 0, nil
  if from > -math.huge then
    local t = unit.plan:next_after(from)
    while t and t < now and missed < 100000 do
      missed, latest = missed + 1, t
      t = unit.plan:next_after(t)
    end
  end
  if latest and now - latest <= grace then
    sched:log(unit, "missed %d fire time(s) while lufa was not running; the latest (%s) is within the %g s grace: " ..
      "it runs now", missed, short(latest), grace)
    unit.next = latest
  else
    if missed > 0 then
      sched:log(unit, "missed %d fire time(s) while lufa was not running (ScheduleTrigger does not backfill)", missed)
    end
    unit.next = unit.plan:next_after(now - 0.001)
  end
end
function Units.ScheduleTrigger.due(unit) return unit.next end
function Units.ScheduleTrigger.act(unit, sched, now)
  while unit.next and unit.next <= now do
    local t = unit.next
    unit.next = unit.plan:next_after(t)
    if unit.once_limit then
      unit.once_limit = unit.once_limit - 1
      if unit.once_limit < 0 then
        sched:log(unit, "fire time %s skipped: more than %d fell due since the last check", short(t), M.ONCE_LIMIT)
        goto continue
      end
    end
    sched:fire(unit, t, {scope = json.object{scheduledTime = iso(t)}})
    ::continue::
    sched.store:set_trigger_state(sched.scope, unit.name, {checked = t})
  end
  if unit.once_limit and unit.next and unit.next > now then unit.next = nil end
end

-- TumblingWindowTrigger: fixed windows, each run once after its end (+ delay), oldest first, at most
-- maxConcurrency at once, after the windows it depends on succeeded; failed runs retried per retryPolicy.
Units.TumblingWindowTrigger = {}
function Units.TumblingWindowTrigger.init(unit, sched, mode)
  local tw = unit.plan
  local last = sched.store:last_fire(sched.scope, unit.name)
  unit.k = last and tw:index_at(last) + 1 or 0
  unit.in_flight = 0
  unit.once = mode == "once"
  if last and unit.k > 0 then sched:log(unit, "continues at window %d (%s)", unit.k, short((tw:window(unit.k)))) end
end

-- Whether window k's dependencies succeeded (self: earlier windows; another trigger: its windows).
local function dependencies_met(unit, sched, k)
  for _, dep in ipairs(unit.plan.depends or {}) do
    local name = dep.kind == "self" and unit.name or dep.trigger
    local ws, we = unit.plan:window(k)
    local from, to = ws + (dep.offset or 0), ws + (dep.offset or 0) + (dep.size or (we - ws))
    if to > (unit.plan.start or -math.huge) then
      local ok = false
      local list = sched.store:trigger_runs(sched.scope, name, {since = from})
      local covered = from < (unit.plan.start or from) and (unit.plan.start or from) or from
      for _, r in ipairs(list) do
        local s = runs.parse_time(r.scheduledTime)
        local e = runs.parse_time(r.windowEndTime or "")
        if s and s < to and r.status == "Succeeded" and s <= covered then
          covered = math.max(covered, e or covered)
        end
      end
      ok = covered >= to
      if not ok then return false, name end
    end
  end
  return true
end

function Units.TumblingWindowTrigger.due(unit)
  if unit.blocked or unit.in_flight >= unit.plan.max_concurrency then return nil end
  local ws, we = unit.plan:window(unit.k)
  if not ws or (unit.plan.end_time and we > unit.plan.end_time) then return nil end
  return unit.plan:due(unit.k)
end

function Units.TumblingWindowTrigger.act(unit, sched, now)
  local tw = unit.plan
  unit.blocked = nil
  while unit.in_flight < tw.max_concurrency do
    local due = Units.TumblingWindowTrigger.due(unit)
    if not due or due > now then break end
    local k = unit.k
    local met, on = dependencies_met(unit, sched, k)
    if not met then
      if unit.waiting ~= k then sched:log(unit, "window %d waits for %s's windows it depends on", k, on) end
      unit.waiting, unit.blocked = k, true
      break
    end
    unit.k = k + 1
    local ws, we = tw:window(k)
    local outputs = json.object{windowStartTime = iso(ws), windowEndTime = iso(we)}
    local scope = json.object{scheduledTime = iso(due), outputs = outputs}
    local attempts = 0
    -- A window keeps its slot (in_flight) until it succeeded or its retries are spent.
    local function ended(final)
      if final.status == "Succeeded" or attempts >= tw.retry.count or sched.draining then
        if final.status ~= "Succeeded" and attempts < tw.retry.count then
          sched:decide(unit, final, "window %d not retried: the scheduler is stopping", k)
          sched.store:put_trigger_run(sched.scope, final)
        end
        unit.in_flight = unit.in_flight - 1
        sched:notify()
        return
      end
      attempts = attempts + 1
      final.status, final.attempts = "InProgress", attempts + 1
      sched:decide(unit, final, "window %d failed; retry %d of %d in %d s", k, attempts, tw.retry.count,
        tw.retry.interval)
      sched.store:put_trigger_run(sched.scope, final)
      lufa.spawn(function()
        sched.clock.sleep(tw.retry.interval)
        if sched.draining then
          final.status = "Failed"
          return ended(final)
        end
        local left, failed = #unit.pipelines, false
        scope.startTime = iso(sched.clock.now())
        for _, ref in ipairs(unit.pipelines) do
          sched:start_pipeline(unit, final, ref, {scope = scope}, nil, function(r)
            if r.status ~= "Succeeded" then failed = true end
            left = left - 1
            if left == 0 then
              final.status = failed and "Failed" or "Succeeded"
              sched.store:put_trigger_run(sched.scope, final)
              ended(final)
            end
          end)
        end
      end)
    end
    unit.in_flight = unit.in_flight + 1
    if not sched:fire(unit, ws, {scope = scope, record = {windowStartTime = iso(ws), windowEndTime = iso(we), window = k}},
        ended) then
      unit.in_flight = unit.in_flight - 1
    end
  end
end

-- BlobEventsTrigger: lists the container every `poll` seconds; a new or changed blob (by ETag) that
-- matches the path filters fires once. The blobs there when the trigger first starts are not events.
Units.BlobEventsTrigger = {}
function Units.BlobEventsTrigger.init(unit, sched)
  unit.next = sched.clock.now()
  unit.seen = sched.store:blobs_seen(sched.scope, unit.name)
  unit.first = next(unit.seen) == nil and not sched.store:trigger_state(sched.scope, unit.name).checked
end
function Units.BlobEventsTrigger.due(unit) return unit.next end

local function blob_client(unit, sched)
  if unit.client then return unit.client end
  local factory, b = sched.factory, unit.blob
  local name = b.linked_service and require("lufa.linked").reference_name(b.linked_service)
  if not name then
    for _, e in ipairs(factory.order.linkedService) do
      local client = factory:linked_service(e.name)
      if client and type(client.blob) == "function" then
        local ok, c = pcall(client.blob)
        if ok and c and (not b.account or tostring(c.account or ""):lower() == b.account:lower()) then
          name = e.name
          break
        end
      end
    end
  end
  if not name then return nil, "no storage linked service for account " .. tostring(b.account) end
  local client, err = factory:linked_service(name)
  if not client then return nil, err end
  unit.client = client.blob():container(b.container)
  return unit.client
end

function Units.BlobEventsTrigger.act(unit, sched, now)
  unit.next = now + (sched.poll or 30)
  local container, cerr = blob_client(unit, sched)
  if not container then
    if unit.reported ~= tostring(cerr) then sched:log(unit, "cannot watch the container: %s", tostring(cerr)) end
    unit.reported = tostring(cerr)
    return
  end
  local ok, list, lerr = pcall(container.list, container, {prefix = unit.blob.prefix})
  if not ok or not list then
    sched:log(unit, "listing container %s failed (next try in %g s): %s", unit.blob.container, sched.poll or 30,
      tostring(ok and lerr and (lerr.message or lerr) or list))
    return
  end
  local fired = 0
  for _, item in ipairs(list.blobs) do
    local name = item.name
    local etag = tostring(item.etag or "")
    local size = item.size or 0
    local matches = (not unit.blob.suffix or name:sub(-#unit.blob.suffix) == unit.blob.suffix)
      and not (unit.blob.ignore_empty and size == 0)
    if matches and unit.seen[name] ~= etag then
      unit.seen[name] = etag
      sched.store:see_blob(sched.scope, unit.name, name, etag)
      if not unit.first then
        local folder = unit.blob.container .. (name:match("^(.*)/[^/]*$") and ("/" .. name:match("^(.*)/[^/]*$")) or "")
        local body = json.object{fileName = name:match("([^/]+)$"), folderPath = folder}
        sched:fire(unit, math.floor(now * 1000 + fired) / 1000, {scope = json.object{}, body = body,
          record = {blob = unit.blob.container .. "/" .. name, etag = etag}})
        fired = fired + 1
      end
    end
  end
  if unit.first then
    local n = 0
    for _ in pairs(unit.seen) do n = n + 1 end
    sched:log(unit, "watching %s/%s: %d blob(s) there now are not events", unit.blob.container, unit.blob.prefix, n)
    unit.first = false
    sched.store:set_trigger_state(sched.scope, unit.name, {checked = now})
  end
end

-- ---------------------------------------------------------------- the scheduler

--- A scheduler. @param opts `factory`, `store`, `clock` (lufa.schedule.clock; default real), `log`
-- (function(line); default stderr), `grace` (seconds a missed ScheduleTrigger fire time may be late and
-- still run; default 0), `poll` (BlobEventsTrigger listing interval, default 30 s), `only` (list of
-- trigger names), `on_event` (run events), `extra_units` (units made elsewhere, e.g. cron schedules)
-- @return scheduler, or nil and the problems of the triggers
function M.new(opts)
  local sched = setmetatable({factory = opts.factory, store = opts.store,
    clock = opts.clock or require("lufa.schedule.clock").real(),
    log_fn = opts.log or function(line) io.stderr:write(line, "\n") end,
    grace = opts.grace, poll = opts.poll, on_event = opts.on_event,
    units = {}, active = {}, queued = {}, running = {}}, Scheduler)
  sched.scope = opts.scope or (opts.factory and opts.factory.origin and opts.factory.origin.factory) or "lufa"
  local problems = {}
  if opts.factory then
    local list
    list, problems = triggers.load(opts.factory)
    local only
    if opts.only then
      only = {}
      for _, n in ipairs(opts.only) do only[n:lower()] = true end
    end
    for _, s in ipairs(list) do
      if not only or only[s.name:lower()] then
        s.sched, s.impl = sched, Units[s.kind]
        sched.units[#sched.units + 1] = s
      end
    end
  end
  for _, u in ipairs(opts.extra_units or {}) do
    u.sched = sched
    sched.units[#sched.units + 1] = u
  end
  return sched, problems
end

-- The runtime state in force: what `lufa trigger start|stop` set, else the JSON's runtimeState.
function Scheduler:started(unit, states)
  local st
  if states then st = states[unit.name:lower()] else st = self.store:trigger_state(self.scope, unit.name).runtime_state end
  return (st or unit.runtime_state) == "Started"
end

-- Every runtime state set in the store for this scope (one query), when the store can list them.
function Scheduler:runtime_states()
  return self.store.runtime_states and self.store:runtime_states(self.scope) or nil
end

-- Runs that a scheduler started and that stopped with their lufa process: resumed, so their fire time
-- counts once and ends.
function Scheduler:resume_interrupted()
  self.store:reap()
  for _, unit in ipairs(self.units) do
    if unit.kind ~= "CronSchedule" then
      for _, tr in ipairs(self.store:trigger_runs(self.scope, unit.name, {status = "InProgress"})) do
        for pname, run_id in pairs(tr.triggeredPipelines or {}) do
          local rec = self.store:get_pipeline_run(run_id)
          if rec and rec.status == "Interrupted" then
            local handle, err = self.factory:resume(run_id, {on_event = self.on_event})
            if handle then
              self:decide(unit, tr, "resumed run %s of %s (interrupted when lufa stopped)", run_id, pname)
              self:track(unit, handle, function(final)
                tr.status = final.status == "Succeeded" and "Succeeded" or "Failed"
                self.store:put_trigger_run(self.scope, tr)
              end)
            else
              self:decide(unit, tr, "cannot resume run %s: %s", run_id, tostring(err))
              tr.status = "Failed"
            end
          elseif rec and rec.status ~= "InProgress" and rec.status ~= "Canceling" and rec.status ~= "Queued" then
            tr.status = rec.status == "Succeeded" and "Succeeded" or "Failed"
          end
        end
        self.store:put_trigger_run(self.scope, tr)
      end
    end
  end
end

-- Wakes the scheduler's task from its sleep (a run ended, a drain began).
function Scheduler:notify()
  if self.sleeper then self.sleeper:cancel("wake") end
end

function Scheduler:loop(mode)
  local now = self.clock.now()
  self:resume_interrupted()
  local enabled = {}
  for _, unit in ipairs(self.units) do
    enabled[unit] = self:started(unit)
    if enabled[unit] then
      unit.impl.init(unit, self, mode, now)
    else
      self:log(unit, "not started (runtimeState %s; 'lufa trigger start %s' starts it)", unit.runtime_state, unit.name)
    end
  end
  local states_checked = now
  while not self.draining do
    now = self.clock.now()
    if mode ~= "once" and now - states_checked >= M.STATE_POLL_SECONDS then
      states_checked = now
      local states = self:runtime_states()
      for _, unit in ipairs(self.units) do
        local on = self:started(unit, states)
        if on ~= enabled[unit] then
          enabled[unit] = on
          self:log(unit, on and "started" or "stopped")
          if on then unit.impl.init(unit, self, mode, now) end
        end
      end
    end
    local wake
    for _, unit in ipairs(self.units) do
      if enabled[unit] then
        local ok, err = pcall(unit.impl.act, unit, self, now)
        if not ok then self:log(unit, "failed: %s", tostring(err)) end
        local d = unit.impl.due(unit)
        if d and (not wake or d < wake) then wake = d end
      end
    end
    if mode == "once" and not wake then break end
    if mode == "once" and wake > self.clock.now() then break end
    local delay = wake and math.max(0, wake - self.clock.now()) or math.huge
    if mode ~= "once" then delay = math.min(delay, M.STATE_POLL_SECONDS) end
    self.sleeper = lufa.spawn(function()
      if self.clock.virtual and delay == math.huge then lufa.sleep(3600) else self.clock.sleep(delay) end
    end)
    pcall(self.sleeper.wait, self.sleeper)
    self.sleeper = nil
  end
  -- wait for what is running (a drain's deadline cancels it)
  while next(self.running) do
    self.sleeper = lufa.spawn(lufa.sleep, 3600)
    pcall(self.sleeper.wait, self.sleeper)
    self.sleeper = nil
  end
  -- nothing left to cancel: the drain's deadline must not keep the process alive
  if self.drain_timer then self.drain_timer:cancel("the scheduler has stopped") end
end

--- Starts the service in a task of its own.
function Scheduler:start(mode)
  self.task = lufa.spawn(self.loop, self, mode or "service")
  return self
end

--- Runs what fell due since the last recorded check, waits for those runs, and returns.
function Scheduler:run_once()
  self:start("once")
  return self:wait()
end

--- Stops firing; runs in progress may finish for `grace` seconds, then they are cancelled.
function Scheduler:drain(grace, reason)
  if self.draining then return end
  self.draining = true
  local n = 0
  for _ in pairs(self.running) do n = n + 1 end
  self:log(nil, "draining (%s): no new fire; %d run(s) in progress get %g s to finish", reason or "stop", n, grace or 0)
  for _, q in pairs(self.queued) do
    for i = #q, 1, -1 do q[i] = nil end
  end
  self:notify()
  self.drain_timer = lufa.spawn(function()
    lufa.sleep(grace or 0)
    for handle in pairs(self.running) do
      self:log(self.running[handle], "cancelling run %s: the drain's grace period ended", handle.runId)
      handle:cancel("scheduler stopped")
    end
  end)
end

function Scheduler:wait()
  if self.task then return self.task:wait() end
end

--- The next `n` fire times of every schedule after `now`: list of `{name, kind, zone, times = {utc...}}`.
function Scheduler:next_fires(n, now)
  local out = {}
  for _, unit in ipairs(self.units) do
    local item = {name = unit.name, kind = unit.kind, zone = unit.zone, times = {},
      started = self:started(unit)}
    if unit.kind == "TumblingWindowTrigger" then
      local k = math.max(0, unit.plan:index_at(now) + 1)
      for i = 0, n - 1 do
        local ws, we = unit.plan:window(k + i)
        if not ws or (unit.plan.end_time and we > unit.plan.end_time) then break end
        item.times[#item.times + 1] = unit.plan:due(k + i)
      end
    elseif unit.next_after or (unit.plan and unit.plan.next_after) then
      local t = now
      for _ = 1, n do
        if unit.next_after then t = unit.next_after(t) else t = unit.plan:next_after(t) end
        if not t then break end
        item.times[#item.times + 1] = t
      end
    else
      item.note = "fires when a matching blob appears"
    end
    out[#out + 1] = item
  end
  return out
end

M.Units = Units

return M
