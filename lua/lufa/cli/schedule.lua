--- `lufa schedule` (the scheduler as a service, `--once`, `--next N`) and `lufa trigger start|stop`.
-- @module lufa.cli.schedule
local lufa = require "lufa"
local json = require "lufa.json"
local runs = require "lufa.runs"
local view = require "lufa.cli.view"
local scheduler = require "lufa.schedule.scheduler"

local stdout, stderr = view.out, view.err

local M = {}

local function number_option(o, name, default)
  local v = o[name]
  if v == nil then return default end
  local n = tonumber(v)
  if not n or n < 0 then error(string.format("--%s expects a number of seconds, got '%s'", name:gsub("_", "-"), v), 0) end
  return n
end

-- The cron schedules of scripts, when a schedules file is given.
local function script_units(o)
  if not o.schedules then return {} end
  local cron_units = require "lufa.schedule.scripts"
  local units, problems = cron_units.load(o.schedules, {store_path = o.store})
  if not units then
    stderr(require("lufa.pipeline").format_problems(problems))
    return nil
  end
  return units
end

--- The local time of `t` in `zone` as "2027-03-14 03:30 PDT (-07:00)".
local function local_time(zone, t)
  if not zone then return "" end
  local l = zone:to_local(t)
  local off = l.offset or 0
  local sign = off < 0 and "-" or "+"
  off = math.abs(off)
  return string.format("%04d-%02d-%02d %02d:%02d:%02d %s (%s%02d:%02d)", l.year, l.month, l.day, l.hour, l.min, l.sec,
    select(2, zone:offset_at(t)) or "", sign, off // 3600, off % 3600 // 60)
end

local function print_next(sched, n, from, as_json)
  local list = sched:next_fires(n, from)
  if as_json then
    local doc = json.array{}
    for _, item in ipairs(list) do
      local times = json.array{}
      for i, t in ipairs(item.times) do
        times[i] = json.object{utc = runs.iso8601(t):gsub("%.0000000Z$", "Z"), ["local"] = local_time(item.zone, t)}
      end
      doc[#doc + 1] = json.object{name = item.name, type = item.kind, started = item.started,
        timeZone = item.zone and (item.zone.windows or item.zone.name) or "UTC", times = times, note = item.note}
    end
    stdout(json.encode(doc, {pretty = true}), "\n")
    return 0
  end
  for _, item in ipairs(list) do
    stdout(string.format("%s (%s%s)%s\n", item.name, item.kind,
      item.zone and (", " .. (item.zone.windows or item.zone.name)) or "", item.started and "" or "  [stopped]"))
    if item.note then stdout("  ", item.note, "\n") end
    for _, t in ipairs(item.times) do
      stdout(string.format("  %s   %s\n", os.date("!%Y-%m-%d %H:%M:%SZ", math.floor(t)), local_time(item.zone, t)))
    end
  end
  return 0
end

--- `lufa schedule FACTORY [options]`; o.open_store and o.load come from lufa.cli.
function M.schedule(o, ctx)
  if #o > 1 then return ctx.die("schedule takes one FACTORY (or none with --schedules FILE)") end
  local ok, grace = pcall(number_option, o, "grace", 0)
  if not ok then return ctx.die("%s", grace) end
  local drain_grace, poll
  ok, drain_grace = pcall(number_option, o, "drain_grace", 60)
  if not ok then return ctx.die("%s", drain_grace) end
  ok, poll = pcall(number_option, o, "poll", 30)
  if not ok then return ctx.die("%s", poll) end
  if #o == 0 and not o.schedules then return ctx.die("schedule needs FACTORY, or --schedules FILE") end
  local store, serr = ctx.open_store(o, true)
  if not store then return ctx.die("%s", serr) end
  local factory
  if o[1] then
    factory = ctx.load(o[1], o)
    if not factory then return 2 end
  end
  local extra = script_units(o)
  if not extra then return 2 end
  local sched, problems = scheduler.new{factory = factory, store = store, grace = grace, poll = poll,
    extra_units = extra, only = o.trigger and {o.trigger} or nil,
    scope = not factory and require("lufa.schedule.scripts").scope(o.schedules) or nil,
    on_event = o.verbose and view.progress(false) or nil}
  stderr(require("lufa.pipeline").format_problems(problems))
  if o.next then
    local n = math.tointeger(tonumber(o.next))
    if not n or n < 1 then return ctx.die("--next expects a positive whole number") end
    local from = o.from and require("lufa.cli.runs").time(o.from) or runs.wall_time()
    if not from then return ctx.die("--from expects a time such as 2027-03-10T00:00:00Z") end
    return print_next(sched, n, from, o.json)
  end
  if #sched.units == 0 then
    stderr("lufa: nothing to schedule: no trigger that lufa runs", factory and (" in " .. o[1]) or "", "\n")
    return 2
  end
  if o.once then
    sched:run_once()
    store:close()
    return 0
  end
  stderr(string.format("lufa: scheduling %d trigger(s) and schedule(s), recorded in %s; SIGTERM or Ctrl-C " ..
    "drains (runs get %g s to finish)\n", #sched.units, store.path, drain_grace))
  local systemd = require "lufa.systemd"
  lufa.on_interrupt(function(name)
    systemd.notify("STOPPING=1\nSTATUS=draining (" .. name .. ")")
    sched:drain(drain_grace, name)
  end)
  sched:start()
  systemd.notify(string.format("READY=1\nSTATUS=scheduling %d trigger(s) and schedule(s)", #sched.units))
  sched:wait()
  lufa.on_interrupt(nil)
  store:close()
  return 0
end

--- `lufa trigger start|stop NAME [FACTORY]`: the runtime state lufa keeps in the store (the JSON stays).
function M.trigger(o, ctx)
  local action, name, folder = o[1], o[2], o[3]
  if (action ~= "start" and action ~= "stop") or not name then
    local near = action and require("lufa.options").nearest(action, { "start", "stop" })
    if near and action ~= near then
      return ctx.die("unknown trigger command '%s' (did you mean '%s'?)", action, near)
    end
    return ctx.die("usage: lufa trigger start|stop NAME [FACTORY]")
  end
  local store, serr = ctx.open_store(o, true)
  if not store then return ctx.die("%s", serr) end
  local scope
  if folder then
    local factory = ctx.load(folder, o)
    if not factory then return 2 end
    if not factory:find("trigger", name) then
      return ctx.die("the factory %s has no trigger '%s'", folder, name)
    end
    scope = factory.origin.factory
  else
    local scopes = store:trigger_scopes(name)
    if #scopes ~= 1 then
      return ctx.die("%s: name the factory: lufa trigger %s %s FACTORY", #scopes == 0 and
        ("the store knows no trigger '" .. name .. "' yet") or ("several factories have a trigger '" .. name .. "'"),
        action, name)
    end
    scope = scopes[1]
  end
  store:set_trigger_state(scope, name, {runtime_state = action == "start" and "Started" or "Stopped"})
  store:close()
  stdout(string.format("trigger %s %s (%s); a running lufa schedule notices within %d s\n", name,
    action == "start" and "started" or "stopped", scope, scheduler.STATE_POLL_SECONDS))
  return 0
end

return M
