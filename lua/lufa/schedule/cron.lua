--- Cron expressions, as Vixie cron reads them, with their fire times in a time zone.
---
--- Five fields `minute hour day-of-month month day-of-week`, or six with a seconds field first. Each is
--- `*`, a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n` (a to the field's end), or a comma list of
--- those. Months and weekdays may be names (`jan`..`dec`, `sun`..`sat`, any case); weekday 7 is Sunday like
--- 0. Macros: @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly. When both day fields are
--- restricted (neither starts with `*`), a day matches if EITHER does (Vixie's rule: `0 0 1,15 * mon` is the
--- 1st, the 15th and every Monday); otherwise both must.
---
--- Times are matched against the wall clock of the zone (UTC when none is given):
--- * a wall time skipped by spring-forward fires once, at the first valid instant: the change itself (02:30
---   on a Pacific spring-forward day fires at 10:00Z = 03:00 PDT), as cron daemons run a skipped job right
---   after the change; several skipped times (every 20 minutes from 02:00) fire once together;
--- * a wall time repeated by fall-back fires once, at its first occurrence.
--- The search skips whole months, days, hours and minutes that cannot match; an expression that matches
--- no date (`0 0 30 2 *`) is refused by parse, and next_after gives up after 8 years.
---
--- Example:
--- ```lua
--- local cron = require "lufa.schedule.cron"
--- local zone = require "lufa.schedule.zone"
--- local c = assert(cron.parse("30 2 * * mon-fri"))
--- local berlin = assert(zone.get("W. Europe Standard Time"))
--- local t = zone.wall_seconds { year = 2027, month = 1, day = 1 }   -- a Friday, 00:00 UTC
--- for _, at in ipairs(c:next_n(t, 2, berlin)) do print(os.date("!%Y-%m-%d %H:%M", at)) end
--- print(cron.parse("*/0 * * * *"))
--- ```
--- ```text output
--- 2027-01-01 01:30
--- 2027-01-04 01:30
--- nil	cron '*/0 * * * *': minute field: step must be positive
--- ```
local zone = require "lufa.schedule.zone"

---@class lufa.schedule.cron
local M = {}

local MONTHS = {jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6, jul = 7, aug = 8, sep = 9, oct = 10, nov = 11,
  dec = 12}
local DAYS = {sun = 0, mon = 1, tue = 2, wed = 3, thu = 4, fri = 5, sat = 6}

local SECOND = {name = "second", lo = 0, hi = 59}
local MINUTE = {name = "minute", lo = 0, hi = 59}
local HOUR = {name = "hour", lo = 0, hi = 23}
local DOM = {name = "day-of-month", lo = 1, hi = 31}
local MONTH = {name = "month", lo = 1, hi = 12, names = MONTHS}
local DOW = {name = "day-of-week", lo = 0, hi = 7, star_hi = 6, names = DAYS}

local MACROS = {["@yearly"] = "0 0 1 1 *", ["@annually"] = "0 0 1 1 *", ["@monthly"] = "0 0 1 * *",
  ["@weekly"] = "0 0 * * 0", ["@daily"] = "0 0 * * *", ["@midnight"] = "0 0 * * *", ["@hourly"] = "0 * * * *"}

local SEARCH_YEARS = 8
local LOOKBACK = 3 * 3600   -- longer than any DST shift: how far back a recent transition's skipped times reach

--- A parsed cron expression (`cron.parse`); `tostring` gives "cron EXPR".
---@class lufa.schedule.cron.Cron
---@field expr string the expression's text
local Cron = {}
Cron.__index = Cron

-- The instant of the change that skipped a wall time: x lies just after it (read with the old offset), and
-- the change is at most LOOKBACK earlier; found to the second by bisection.
local function change_before(z, x)
  local new = z:offset_at(x)
  local lo, hi = math.floor(x) - LOOKBACK, math.floor(x)
  if z:offset_at(lo) == new then return x end
  while hi - lo > 1 do
    local mid = (lo + hi) // 2
    if z:offset_at(mid) == new then hi = mid else lo = mid end
  end
  return hi
end

-- ---------------------------------------------------------------- parsing

local function value_of(token, spec)
  if token:match("^%d+$") then
    local v = tonumber(token)
    if v < spec.lo or v > spec.hi then
      return nil, string.format("'%s' is out of range (%d-%d)", token, spec.lo, spec.hi)
    end
    return v
  end
  if spec.names then
    local v = spec.names[token:lower()]
    if v then return v end
    local list = {}
    for name, n in pairs(spec.names) do list[#list + 1] = {n, name} end
    table.sort(list, function(x, y) return x[1] < y[1] end)
    for i, e in ipairs(list) do list[i] = e[2] end
    return nil, string.format("'%s' is neither a number (%d-%d) nor a name (%s)", token, spec.lo, spec.hi,
      table.concat(list, ", "))
  end
  return nil, string.format("'%s' is not a number (%d-%d)", token, spec.lo, spec.hi)
end

-- The set of values a field allows (a table value → true), or nil and why.
local function parse_field(text, spec)
  local set = {}
  for item in (text .. ","):gmatch("([^,]*),") do
    if item == "" then return nil, "empty element in the list '" .. text .. "'" end
    local base, step = item:match("^([^/]*)/(.*)$")
    if not base then base = item end
    local n = 1
    if step then
      if not step:match("^%d+$") then return nil, string.format("step '%s' is not a number", step) end
      n = tonumber(step)
      if n == 0 then return nil, "step must be positive" end
    end
    local lo, hi
    if base == "*" then
      lo, hi = spec.lo, spec.star_hi or spec.hi
    else
      local a, b = base:match("^([^-]+)%-([^-]+)$")
      if a then
        local err
        lo, err = value_of(a, spec)
        if not lo then return nil, err end
        hi, err = value_of(b, spec)
        if not hi then return nil, err end
        if lo > hi then return nil, string.format("range '%s' is backwards", base) end
      else
        local err
        lo, err = value_of(base, spec)
        if not lo then return nil, err end
        hi = step and (spec.star_hi or spec.hi) or lo
      end
    end
    for v = lo, hi, n do set[v] = true end
  end
  if spec == DOW and set[7] then set[0], set[7] = true, nil end
  return set
end

-- For each value lo..hi, the smallest allowed value >= it (nil past the last).
local function next_table(set, lo, hi)
  local t, nxt = {}, nil
  for v = hi, lo, -1 do
    if set[v] then nxt = v end
    t[v] = nxt
  end
  return t
end

--- Parses a cron expression (five or six fields, or a macro).
--- Errors: `nil, message`, e.g. "cron '*/0 * * * *': minute field: step must be positive"; an expression
--- that matches no date is refused too.
---@param expr string
---@return lufa.schedule.cron.Cron|nil cron
---@return string? err
function M.parse(expr)
  if type(expr) ~= "string" then return nil, "a cron expression must be a string" end
  local function fail(fmt, ...) return nil, string.format("cron '%s': " .. fmt, expr, ...) end
  local text = expr:match("^%s*(.-)%s*$")
  if text:sub(1, 1) == "@" then
    local macro = MACROS[text:lower()]
    if not macro then
      return fail("unknown macro (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)")
    end
    text = macro
  end
  local words = {}
  for w in text:gmatch("%S+") do words[#words + 1] = w end
  local specs
  if #words == 5 then specs = {MINUTE, HOUR, DOM, MONTH, DOW}
  elseif #words == 6 then specs = {SECOND, MINUTE, HOUR, DOM, MONTH, DOW}
  else
    return fail("expected 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first; got %d",
      #words)
  end
  local sets = {}
  for i, spec in ipairs(specs) do
    local set, why = parse_field(words[i], spec)
    if not set then return fail("%s field: %s", spec.name, why) end
    sets[spec.name] = set
  end
  local first = #words - 4   -- the minute field's position
  local c = setmetatable({expr = expr, seconds = #words == 6}, Cron)
  c.second_set = sets.second or {[0] = true}
  c.minute_set, c.hour_set, c.dom_set, c.month_set, c.dow_set =
    sets.minute, sets.hour, sets["day-of-month"], sets.month, sets["day-of-week"]
  c.dom_star = words[first + 2]:sub(1, 1) == "*"
  c.dow_star = words[first + 4]:sub(1, 1) == "*"
  c.next_second = next_table(c.second_set, 0, 59)
  c.next_minute = next_table(c.minute_set, 0, 59)
  c.next_hour = next_table(c.hour_set, 0, 23)
  c.next_month = next_table(c.month_set, 1, 12)
  if not c.dom_star and c.dow_star then
    -- only the day of month decides: some allowed month must have some allowed day
    local possible = false
    for m = 1, 12 do
      if c.month_set[m] then
        for d = 1, m == 2 and 29 or zone.days_in_month(2001, m) do
          if c.dom_set[d] then possible = true end
        end
      end
    end
    if not possible then return fail("day-of-month and month fields never meet (no such date)") end
  end
  return c
end

-- ---------------------------------------------------------------- fire times

--- Whether day y-m-d matches: both day fields when either starts with '*' (its set then holds every day,
--- or every n-th for '*/n'), else either one (Vixie).
---@nodiscard
---@param y integer
---@param m integer
---@param d integer
---@return boolean
function Cron:day_ok(y, m, d)
  local dom = self.dom_set[d]
  local dow = self.dow_set[zone.weekday(zone.days_from_civil(y, m, d)) - 1]
  if self.dom_star or self.dow_star then return dom and dow or false end
  return dom or dow or false
end

--- The first matching wall-clock second (seconds from the epoch read as UTC) at or after wall second w,
--- or nil when none within SEARCH_YEARS.
---@nodiscard
---@param w number wall seconds
---@return integer|nil w
function Cron:next_wall(w)
  local y, mo, d, h, mi, s = zone.wall_fields(w)
  s = math.floor(s)
  local limit = y + SEARCH_YEARS
  local nm, nh, nmi, ns = self.next_month, self.next_hour, self.next_minute, self.next_second
  while true do
    if y > limit then return nil end
    local m2 = nm[mo]
    if not m2 then y, mo, d, h, mi, s = y + 1, 1, 1, 0, 0, 0
    elseif m2 ~= mo then mo, d, h, mi, s = m2, 1, 0, 0, 0
    elseif d > zone.days_in_month(y, mo) then
      if mo == 12 then y, mo = y + 1, 1 else mo = mo + 1 end
      d, h, mi, s = 1, 0, 0, 0
    elseif not self:day_ok(y, mo, d) then d, h, mi, s = d + 1, 0, 0, 0
    else
      local h2 = nh[h]
      if not h2 then d, h, mi, s = d + 1, 0, 0, 0
      elseif h2 ~= h then h, mi, s = h2, 0, 0
      else
        local mi2 = nmi[mi]
        if not mi2 then h, mi, s = h + 1, 0, 0
        elseif mi2 ~= mi then mi, s = mi2, 0
        else
          local s2 = ns[s]
          if not s2 then mi, s = mi + 1, 0
          else return zone.days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s2 end
        end
      end
    end
  end
end

--- The first instant strictly after `t` (epoch seconds) whose wall-clock time in `z` (a zone object from
--- lufa.schedule.zone; UTC when nil) matches, or nil when none within 8 years.
---@nodiscard
---@param t number
---@param z? lufa.schedule.zone.Zone
---@return integer|nil t
function Cron:next_after(t, z)
  if t ~= t or t == math.huge or t == -math.huge then return nil end
  z = z or zone.utc()
  local off = z:offset_at(t)
  local w = math.floor(t) + off
  -- just after a transition, wall times skipped by it (read with the old offset) may still lie ahead
  if z:offset_at(t - LOOKBACK) ~= off then w = w - LOOKBACK end
  local best, best_wall
  while true do
    local cand = self:next_wall(w)
    if not cand or (best_wall and cand > best_wall) then return best end
    local x, status = z:wall_to_utc(cand)
    if status == "gap" then x = change_before(z, x) end
    if x > t and (not best or x < best) then
      -- a later wall time can map to an earlier instant only up to the wall time of this one
      best, best_wall = x, x + z:offset_at(x)
    end
    w = cand + 1
  end
end

--- The next `n` fire times after `t` in zone `z` (fewer when the search gives up).
---@nodiscard
---@param t number
---@param n integer
---@param z? lufa.schedule.zone.Zone
---@return integer[] times
function Cron:next_n(t, n, z)
  local out = {}
  for i = 1, n do
    t = self:next_after(t, z)
    if not t then break end
    out[i] = t
  end
  return out
end

function Cron:__tostring() return "cron " .. self.expr end

return M
