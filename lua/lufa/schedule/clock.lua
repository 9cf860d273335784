--- The scheduler's clock: the real one, or a virtual one that tests move forward at will.
-- A clock has `now()` (epoch seconds) and `sleep(seconds)` (inside a task; cancellation interrupts it).
-- @module lufa.schedule.clock
local lufa = require "lufa"
local runs = require "lufa.runs"

local M = {}

--- The wall clock; sleeps are the loop's timers.
function M.real()
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
