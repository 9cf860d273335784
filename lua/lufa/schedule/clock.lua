--- The scheduler's clock: the real one, or a virtual one that tests move forward at will.
-- A clock has `now()` (epoch seconds) and `sleep(seconds)` (inside a task; cancellation interrupts it).
--
-- For tests only: `LUFA_CLOCK_RATE=R` (with `LUFA_CLOCK_ORIGIN=T`, epoch s) makes `real()` an accelerated
-- clock, `T + (wall time - T) * R`, so R scheduled seconds pass per real second. Every process given the
-- same origin and rate reads the same time, which is how tests run several schedulers through hours of
-- fire times in minutes. Leases, run records and timeouts keep the real clock.
-- @module lufa.schedule.clock
local lufa = require "lufa"
local runs = require "lufa.runs"

local M = {}

--- An accelerated wall clock: `origin + (wall time - origin) * rate`; sleeps last `1 / rate` as long.
function M.accelerated(rate, origin)
  assert(type(rate) == "number" and rate > 0, "clock rate must be a positive number")
  origin = origin or runs.wall_time()
  return {virtual = false, rate = rate,
    now = function() return origin + (runs.wall_time() - origin) * rate end,
    sleep = function(s) lufa.sleep(s == math.huge and s or s / rate) end}
end

--- The wall clock; sleeps are the loop's timers. (`LUFA_CLOCK_RATE` makes it an accelerated one: see above.)
function M.real()
  local rate = tonumber(os.getenv("LUFA_CLOCK_RATE") or "")
  if rate and rate ~= 1 then
    local origin = tonumber(os.getenv("LUFA_CLOCK_ORIGIN") or "")
    if rate <= 0 then error("LUFA_CLOCK_RATE must be a positive number, got " .. os.getenv("LUFA_CLOCK_RATE"), 2) end
    return M.accelerated(rate, origin)
  end
  return {now = runs.wall_time, sleep = lufa.sleep, virtual = false}
end

--- A clock that starts at `start` (epoch s) and jumps: `sleep(s)` moves it forward by `s` at once (the
-- task yields for one loop turn, so other tasks run), but never past `limit` (if given): there it stands
-- still. `advance(s)` and `set(t)` move it from outside.
function M.virtual(start, limit)
  local t = start
  local c = {virtual = true}
  function c.now() return t end
  function c.sleep(s)
    if s > 0 and s < math.huge then t = t + s end
    if limit and t > limit then t = limit end
    lufa.sleep(limit and t >= limit and 0.001 or 0)
  end
  function c.advance(s) t = t + s end
  function c.set(v) t = v end
  return c
end

return M
