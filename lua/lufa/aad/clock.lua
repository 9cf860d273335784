--- lufa.aad.clock: the two clocks the token cache reads, replaceable so tests can move time.
-- `now` is monotonic seconds (refresh and expiry decisions; a wall-clock step must not expire a token),
-- `time` is Unix seconds (a token's expires_on is the receipt time plus expires_in).
local lufa = require "lufa"

local clock = {}

local default_now, default_time = lufa.now, os.time

clock.now, clock.time = default_now, default_time

--- Replaces the clocks; `set()` restores the real ones.
-- @tparam[opt] table c `now` and/or `time`, functions returning seconds
function clock.set(c)
  c = c or {}
  clock.now = c.now or default_now
  clock.time = c.time or default_time
end

return clock
