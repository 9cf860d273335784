--- lufa.schedule: work on a schedule inside a script or an embedding application, as tasks of the same
-- event loop (no threads, nothing recorded). For triggers and schedules that survive restarts, run
-- `lufa schedule` (lufa.schedule.scheduler) instead.
--
--   local schedule = require "lufa.schedule"
--   local job = schedule.cron("*/5 * * * *", function(t) print("tick", t) end, {zone = "Europe/Berlin"})
--   local beat = schedule.every(2.5, function() print("beat") end)
--   ...
--   job:cancel()
--
-- @module lufa.schedule
local lufa = require "lufa"
local options = require "lufa.options"
local runs = require "lufa.runs"

local M = {}

local Job = {}
Job.__index = Job

--- Stops the job: no further call; with `cancel_running`, calls in progress are cancelled too.
function Job:cancel(cancel_running)
  self.cancelled = true
  if self.timer then self.timer:cancel("schedule cancelled") end
  if cancel_running then
    for t in pairs(self.running) do t:cancel("schedule cancelled") end
  end
end

--- The next fire time (epoch seconds), or nil.
function Job:next() return self.next_time end

--- How many times the job has fired.
function Job:count() return self.fired end

local function start(next_after, fn, opts)
  opts = opts or {}
  local now = opts.clock and opts.clock.now or runs.wall_time
  local sleep = opts.clock and opts.clock.sleep or lufa.sleep
  local overlap = opts.overlap or "allow"
  if overlap ~= "allow" and overlap ~= "skip" and overlap ~= "replace" then
    error("overlap must be allow, skip or replace, got '" .. tostring(overlap) .. "'", 3)
  end
  local job = setmetatable({running = {}, fired = 0}, Job)
  job.next_time = next_after(now())
  job.timer = lufa.spawn(function()
    while not job.cancelled and job.next_time do
      sleep(math.max(0, job.next_time - now()))
      if job.cancelled then break end
      local t = job.next_time
      job.next_time = next_after(math.max(t, now()))
      local busy = next(job.running)
      if busy and overlap == "skip" then goto continue end
      if busy and overlap == "replace" then
        for task in pairs(job.running) do task:cancel("replaced by the next fire time") end
      end
      job.fired = job.fired + 1
      do
        local task
        task = lufa.spawn(function()
          local ok, err = pcall(fn, t)
          job.running[task] = nil
          if not ok and opts.on_error then opts.on_error(err, t) elseif not ok then error(err, 0) end
        end)
        job.running[task] = true
      end
      ::continue::
    end
  end)
  return job
end

local JOB_OPTIONS = { "overlap", "on_error", "clock" }

--- Calls `fn(scheduled_time)` in a new task at each time of a cron expression (lufa.schedule.cron).
-- @param opts `zone` (IANA or Windows name, default UTC), `overlap` ("allow", "skip", "replace"),
--   `on_error(err, t)`, `clock` (lufa.schedule.clock)
-- @return a job (`:cancel()`, `:next()`, `:count()`)
function M.cron(expr, fn, opts)
  opts = options.check(opts or {}, { "zone", "overlap", "on_error", "clock" }, "schedule.cron", 2)
  local c, why = require("lufa.schedule.cron").parse(expr)
  if not c then error(why, 2) end
  local zone, zerr = require("lufa.schedule.zone").get(opts.zone or "UTC")
  if not zone then error(tostring(zerr), 2) end
  return start(function(t) return c:next_after(t, zone) end, fn, opts)
end

--- Calls `fn(scheduled_time)` every `seconds`, the first time `seconds` from now.
function M.every(seconds, fn, opts)
  if opts ~= nil then options.check(opts, JOB_OPTIONS, "schedule.every", 2) end
  if type(seconds) ~= "number" or seconds <= 0 then error("every: seconds must be a positive number", 2) end
  return start(function(t) return t + seconds end, fn, opts)
end

--- Calls `fn(scheduled_time)` at the fire times of an ADF recurrence (a ScheduleTrigger's `recurrence`).
function M.recurrence(rec, fn, opts)
  if opts ~= nil then options.check(opts, JOB_OPTIONS, "schedule.recurrence", 2) end
  local compiled, problems = require("lufa.schedule.recurrence").compile(rec)
  if not compiled then error("bad recurrence: " .. tostring(problems[1] and problems[1].message), 2) end
  return start(function(t) return compiled:next_after(t) end, fn, opts)
end

return M
