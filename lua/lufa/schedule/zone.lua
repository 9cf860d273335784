--- Time zones for schedules: IANA zones read from the system's TZif files, Windows zone ids (as ADF
--- writes them) mapped to IANA names, and the conversions between UTC instants and wall-clock time.
---
--- Everything is arithmetic on days from the civil calendar: the machine's own zone (os.time, os.date
--- without "!") is never consulted. TZif files (RFC 8536, versions 1 to 4) come from $TZDIR or
--- /usr/share/zoneinfo; instants after a file's last transition follow its footer's POSIX TZ rule
--- ("PST8PDT,M3.2.0,M11.1.0"), so slim files and dates past 2037 work.
---
--- Example:
--- ```lua
--- local zone = require "lufa.schedule.zone"
--- local z = assert(zone.get("Pacific Standard Time"))   -- or "America/Los_Angeles", "UTC"
--- local t = zone.wall_seconds { year = 2027, month = 7, day = 1, hour = 12 }
--- print(z.name, z:offset_at(t))
--- local l = z:to_local(t)
--- print(l.year, l.month, l.day, l.hour, l.abbr)
--- print(z:to_utc { year = 2027, month = 3, day = 14, hour = 2, min = 30 })
--- print(zone.weekday(zone.days_from_civil(2027, 1, 1)), zone.is_leap(2028), zone.days_in_month(2027, 2))
--- ```
--- ```text output
--- America/Los_Angeles	-25200	PDT	true
--- 2027	7	1	5	PDT
--- 1805020200	gap
--- 6	true	28
--- ```
local windows = require "lufa.schedule.windows_zones"

---@class lufa.schedule.zone
local M = {}

---@class lufa.schedule.zone.Fields
---@field year integer
---@field month? integer 1..12 (default 1; out of range is normalised as os.time does)
---@field day? integer default 1
---@field hour? integer default 0
---@field min? integer default 0
---@field sec? integer default 0

---@class lufa.schedule.zone.Local
---@field year integer
---@field month integer
---@field day integer
---@field hour integer
---@field min integer
---@field sec integer
---@field wday integer 1 = Sunday, as in os.date
---@field yday integer
---@field offset integer seconds east of UTC
---@field abbr string e.g. "PDT"
---@field isdst boolean

-- ---------------------------------------------------------------- civil calendar

--- Days from 1970-01-01 to the proleptic Gregorian date y-m-d (m 1..12, d may exceed the month).
---@nodiscard
---@param y integer
---@param m integer
---@param d integer
---@return integer days
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

--- The date y, m, d of a day number (days from 1970-01-01).
---@nodiscard
---@param z integer the day number
---@return integer y
---@return integer m
---@return integer d
local function civil_from_days(z)
  z = z + 719468
  local era = z // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

--- Whether `y` is a leap year of the Gregorian calendar.
---@nodiscard
---@param y integer
---@return boolean
local function is_leap(y) return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) end

local MONTH_DAYS = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
--- The number of days of month `m` of year `y`.
---@nodiscard
---@param y integer
---@param m integer 1..12
---@return integer days
local function days_in_month(y, m)
  if m == 2 and is_leap(y) then return 29 end
  return MONTH_DAYS[m]
end

--- Weekday of a day number: 1 = Sunday .. 7 = Saturday (as os.date's wday); 1970-01-01 was a Thursday.
---@nodiscard
---@param days integer
---@return integer wday
local function weekday(days) return (days + 4) % 7 + 1 end

--- Seconds from the epoch of a wall-clock time read as if it were UTC, fields normalised as os.time does
--- (month 13 is January of the next year, day 0 the last of the previous month, hour 24 the next day).
---@nodiscard
---@param f lufa.schedule.zone.Fields
---@return integer w wall seconds
local function wall_seconds(f)
  local m0 = (f.month or 1) - 1
  local y, m = (f.year or 1970) + m0 // 12, m0 % 12 + 1
  return (days_from_civil(y, m, 1) + (f.day or 1) - 1) * 86400 + (f.hour or 0) * 3600 + (f.min or 0) * 60 + (f.sec or 0)
end

M.days_from_civil, M.civil_from_days, M.days_in_month, M.weekday, M.is_leap =
  days_from_civil, civil_from_days, days_in_month, weekday, is_leap
M.wall_seconds = wall_seconds

--- The civil fields of a wall-clock second count (as made by wall_seconds): y, m, d, hour, min, sec.
---@nodiscard
---@param w integer wall seconds
---@return integer y
---@return integer m
---@return integer d
---@return integer hour
---@return integer min
---@return integer sec
function M.wall_fields(w)
  local days = w // 86400
  local s = w - days * 86400
  local y, m, d = civil_from_days(math.floor(days))
  return y, m, d, math.floor(s // 3600), math.floor(s % 3600 // 60), s % 60
end

-- ---------------------------------------------------------------- POSIX TZ rules (the TZif footer)

-- A rule string is "STDoffset[DST[offset][,start[/time],end[/time]]]"; offsets count hours WEST of
-- Greenwich ("PST8" is UTC-8), so they are negated here to the usual east-positive seconds.
local function parse_hms(s, pos)
  local sign, h, rest = s:match("^([+-]?)(%d+)()", pos)
  if not h then return nil end
  local secs = tonumber(h) * 3600
  pos = rest
  local mi, r2 = s:match("^:(%d+)()", pos)
  if mi then
    secs, pos = secs + tonumber(mi) * 60, r2
    local se, r3 = s:match("^:(%d+)()", pos)
    if se then secs, pos = secs + tonumber(se), r3 end
  end
  return sign == "-" and -secs or secs, pos
end

local function parse_name(s, pos)
  local quoted, r = s:match("^<([^>]*)>()", pos)
  if quoted then return quoted, r end
  local name, r2 = s:match("^(%a%a%a+)()", pos)
  return name, r2
end

-- A date rule: "Jn" (day 1..365, February 29 never counted), "n" (0..365, counted), "Mm.w.d"
-- (weekday d of week w of month m, w = 5 the last).
local function parse_date_rule(s, pos)
  local rule = {}
  local j, r = s:match("^J(%d+)()", pos)
  if j then rule.kind, rule.n, pos = "J", tonumber(j), r
  else
    local m, w, d, r2 = s:match("^M(%d+)%.(%d)%.(%d)()", pos)
    if m then rule.kind, rule.m, rule.w, rule.d, pos = "M", tonumber(m), tonumber(w), tonumber(d), r2
    else
      local n, r3 = s:match("^(%d+)()", pos)
      if not n then return nil end
      rule.kind, rule.n, pos = "N", tonumber(n), r3
    end
  end
  rule.time = 7200   -- 02:00 local time unless given
  if s:sub(pos, pos) == "/" then
    local secs, r4 = parse_hms(s, pos + 1)
    if not secs then return nil end
    rule.time, pos = secs, r4
  end
  return rule, pos
end

--- A POSIX TZ rule such as "PST8PDT,M3.2.0,M11.1.0" (the TZif footer), parsed; nil when malformed.
---@nodiscard
---@param s string|nil
---@return table|nil rule
local function parse_posix(s)
  if not s or s == "" then return nil end
  local rule = {}
  local pos
  rule.std_abbr, pos = parse_name(s, 1)
  if not rule.std_abbr then return nil end
  local off
  off, pos = parse_hms(s, pos)
  if not off then return nil end
  rule.std_off = -off
  if pos > #s then return rule end
  rule.dst_abbr, pos = parse_name(s, pos)
  if not rule.dst_abbr then return nil end
  rule.dst_off = rule.std_off + 3600
  if pos <= #s and s:sub(pos, pos) ~= "," then
    off, pos = parse_hms(s, pos)
    if not off then return nil end
    rule.dst_off = -off
  end
  if s:sub(pos, pos) ~= "," then
    -- no transition rule: POSIX leaves it to the implementation; US rules are the traditional default
    rule.start = {kind = "M", m = 3, w = 2, d = 0, time = 7200}
    rule.finish = {kind = "M", m = 11, w = 1, d = 0, time = 7200}
    return rule
  end
  rule.start, pos = parse_date_rule(s, pos + 1)
  if not rule.start or s:sub(pos, pos) ~= "," then return nil end
  rule.finish, pos = parse_date_rule(s, pos + 1)
  if not rule.finish or pos <= #s then return nil end
  return rule
end

-- The day number of a date rule in year y.
local function rule_day(rule, y)
  if rule.kind == "J" then
    local n = rule.n
    if is_leap(y) and n >= 60 then n = n + 1 end   -- Jn never counts February 29
    return days_from_civil(y, 1, 1) + n - 1
  elseif rule.kind == "N" then
    return days_from_civil(y, 1, 1) + rule.n
  end
  local first = days_from_civil(y, rule.m, 1)
  local wd = (weekday(first) - 1)   -- 0 = Sunday
  local d = first + (rule.d - wd) % 7 + (rule.w - 1) * 7
  local last = first + days_in_month(y, rule.m) - 1
  while d > last do d = d - 7 end
  return d
end

-- DST start and end instants (UTC) of year y under a rule: start is given in standard time, end in DST.
local function rule_year(rule, y)
  local c = rule.cache[y]
  if not c then
    c = {rule_day(rule.start, y) * 86400 + rule.start.time - rule.std_off,
         rule_day(rule.finish, y) * 86400 + rule.finish.time - rule.dst_off}
    rule.cache[y] = c
  end
  return c[1], c[2]
end

local function posix_offset(rule, t)
  if not rule.dst_abbr then return rule.std_off, rule.std_abbr, false end
  local y = civil_from_days(math.floor((t + rule.std_off) // 86400))
  local s, e = rule_year(rule, y)
  local dst
  if s < e then dst = t >= s and t < e
  else dst = not (t >= e and t < s) end   -- southern hemisphere: DST spans the new year
  if dst then return rule.dst_off, rule.dst_abbr, true end
  return rule.std_off, rule.std_abbr, false
end

M.parse_posix = parse_posix

-- ---------------------------------------------------------------- TZif files

local function parse_tzif(data)
  if data:sub(1, 4) ~= "TZif" then return nil, "not a TZif file" end
  local version = data:sub(5, 5)
  local function header(at)
    if #data < at + 43 then return nil end
    local isut, isstd, leap, timecnt, typecnt, charcnt = string.unpack(">I4I4I4I4I4I4", data, at + 20)
    return {isut = isut, isstd = isstd, leap = leap, timecnt = timecnt, typecnt = typecnt, charcnt = charcnt}
  end
  local h = header(1)
  if not h then return nil, "truncated TZif header" end
  local at, tsize = 45, 4
  if version >= "2" then
    -- skip the version-1 block: the 64-bit block and the footer follow it
    at = at + h.timecnt * 5 + h.typecnt * 6 + h.charcnt + h.leap * 8 + h.isstd + h.isut
    h = header(at)
    if not h or data:sub(at, at + 3) ~= "TZif" then return nil, "truncated TZif file" end
    at, tsize = at + 44, 8
  end
  local need = h.timecnt * (tsize + 1) + h.typecnt * 6 + h.charcnt + h.leap * (tsize + 4) + h.isstd + h.isut
  if #data < at + need - 1 then return nil, "truncated TZif data" end
  if h.typecnt == 0 then return nil, "TZif file without local time types" end
  local z = {trans = {}, idx = {}, types = {}}
  local fmt = tsize == 8 and ">i8" or ">i4"
  for i = 1, h.timecnt do z.trans[i] = string.unpack(fmt, data, at + (i - 1) * tsize) end
  at = at + h.timecnt * tsize
  for i = 1, h.timecnt do z.idx[i] = data:byte(at + i - 1) + 1 end
  at = at + h.timecnt
  local abbr_at = at + h.typecnt * 6
  for i = 1, h.typecnt do
    local off, isdst, ai = string.unpack(">i4BB", data, at + (i - 1) * 6)
    local abbr = data:sub(abbr_at + ai, abbr_at + h.charcnt - 1):match("^[^%z]*")
    z.types[i] = {off = off, isdst = isdst == 1, abbr = abbr}
  end
  at = abbr_at + h.charcnt + h.leap * (tsize + 4) + h.isstd + h.isut
  if tsize == 8 then
    local footer = data:match("^\n([^\n]*)\n", at)
    if footer and footer ~= "" then
      z.rule = parse_posix(footer)
      if not z.rule then return nil, string.format("unreadable TZ rule '%s' in the TZif footer", footer) end
      z.rule.cache = {}
    end
  end
  return z
end

-- ---------------------------------------------------------------- zone objects

--- A time zone (`zone.get`, `zone.from_tzif`, `zone.utc`); `tostring` gives its name.
---@class lufa.schedule.zone.Zone
---@field name string the IANA name
---@field windows? string the Windows id, when asked for by one
local Zone = {}
Zone.__index = Zone

--- The offset from UTC in force at instant `t` (epoch seconds, may be fractional).
---@nodiscard
---@param t number
---@return integer offset seconds, east positive
---@return string abbr the abbreviation, e.g. "PDT"
---@return boolean isdst whether it is daylight saving time
function Zone:offset_at(t)
  local trans = self.trans
  local n = #trans
  if n == 0 or t < trans[1] then
    if n == 0 and self.rule then return posix_offset(self.rule, t) end
    local ty = self.types[1]
    return ty.off, ty.abbr, ty.isdst
  end
  if t >= trans[n] and self.rule then return posix_offset(self.rule, t) end
  local lo, hi = 1, n   -- the last transition at or before t
  while lo < hi do
    local mid = (lo + hi + 1) // 2
    if trans[mid] <= t then lo = mid else hi = mid - 1 end
  end
  local ty = self.types[self.idx[lo]]
  return ty.off, ty.abbr, ty.isdst
end

--- The wall-clock time at instant `t` (integer fields, the fraction of a second dropped; wday 1 = Sunday as
--- in os.date).
---@nodiscard
---@param t number epoch seconds
---@return lufa.schedule.zone.Local fields
function Zone:to_local(t)
  local off, abbr, isdst = self:offset_at(t)
  local w = math.floor(t) + off
  local days = w // 86400
  local s = w - days * 86400
  local y, m, d = civil_from_days(days)
  return {year = y, month = m, day = d, hour = s // 3600, min = s % 3600 // 60, sec = s % 60,
    wday = weekday(days), yday = days - days_from_civil(y, 1, 1) + 1, offset = off, abbr = abbr, isdst = isdst}
end

--- The UTC instant of a wall-clock time given as seconds from the epoch read as UTC (see wall_seconds).
---@nodiscard
---@param w integer wall seconds
---@return integer t epoch seconds
---@return "gap"|"fold"|nil status as for to_utc
function Zone:wall_to_utc(w)
  -- the offsets a day either side cover any one transition near w
  local before = self:offset_at(w - 86400)
  local after = self:offset_at(w + 86400)
  local ok_before = self:offset_at(w - before) == before
  if before == after then
    if ok_before then return w - before end
  else
    local ok_after = self:offset_at(w - after) == after
    if ok_before and ok_after then return math.min(w - before, w - after), "fold" end
    if ok_before then return w - before end
    if ok_after then return w - after end
  end
  -- the wall time was skipped: read it with the offset in force before the transition
  return w - before, "gap"
end

--- The UTC instant of a wall-clock time in this zone. Status "gap": the wall time does not exist (spring
--- forward: it is read with the offset in force before the transition, so 02:30 PST-rule is 03:30 PDT);
--- "fold": it occurs twice (the first, earlier instant is returned).
---@nodiscard
---@param f lufa.schedule.zone.Fields values out of range are normalised as os.time does (day 32, month 13, hour 24, negative minutes)
---@return integer t epoch seconds
---@return "gap"|"fold"|nil status
function Zone:to_utc(f)
  return self:wall_to_utc(wall_seconds(f))
end

function Zone:__tostring()
  return "zone " .. (self.windows or self.name)
end

-- ---------------------------------------------------------------- lookup

local UTC_DATA = {trans = {}, idx = {}, types = {{off = 0, isdst = false, abbr = "UTC"}}}

local cache = {}      -- requested name → zone object
local by_iana = {}    -- IANA name → parsed data, shared by the IANA and Windows spellings

local function unknown(name)
  return nil, string.format("unknown time zone '%s' (expected an IANA name such as Europe/Berlin or a Windows " ..
    "name such as W. Europe Standard Time)", tostring(name))
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("a")
  f:close()
  return data
end

local function load_iana(name)
  if name == "Etc/UTC" then return UTC_DATA end
  local data = by_iana[name]
  if data then return data end
  -- a name is path segments of letters, digits, '_', '+', '-' (never "..", never absolute)
  if not (name:match("^[%w_+-]+$") or name:match("^[%w_+-]+/[%w_+%-/]*[%w_+-]$")) or name:find("//", 1, true) then
    return nil
  end
  local dir = os.getenv("TZDIR")
  if not dir or dir == "" then dir = "/usr/share/zoneinfo" end
  local bytes = read_file(dir .. "/" .. name)
  if not bytes and windows.older[name] then bytes = read_file(dir .. "/" .. windows.older[name]) end
  if not bytes then return nil end
  local z, err = parse_tzif(bytes)
  if not z then return nil, string.format("time zone '%s': %s/%s: %s", name, dir, name, err) end
  by_iana[name] = z
  return z
end

local windows_lower
local function windows_name(name)
  local iana = windows.iana[name]
  if iana then return name, iana end
  if not windows_lower then
    windows_lower = {}
    for k in pairs(windows.iana) do windows_lower[k:lower()] = k end
  end
  local k = windows_lower[name:lower()]
  if k then return k, windows.iana[k] end
end

--- The zone named `name`: "UTC", "Etc/UTC" or "Z"; an IANA name ("America/Los_Angeles"); or a Windows
--- zone id as ADF writes it ("Pacific Standard Time"; letter case is not significant). Zones are cached.
--- Errors: `nil, message` for an unknown zone or an unreadable TZif file.
---@param name string
---@return lufa.schedule.zone.Zone|nil zone
---@return string? err
function M.get(name)
  if type(name) ~= "string" then return unknown(name) end
  local z = cache[name]
  if z then return z end
  local iana, win
  if name == "Z" or name == "Etc/UTC" or name:upper() == "UTC" then
    iana, win = "Etc/UTC", name:upper() == "UTC" and "UTC" or nil
  else
    win, iana = windows_name(name)
    if not win then iana = name end
  end
  local data, err = load_iana(iana)
  if not data then
    if err then return nil, err end
    if win then   -- a known id whose zone this system lacks
      return nil, string.format("time zone '%s' is %s, which has no TZif file in %s (is tzdata installed?)", name, iana,
        (os.getenv("TZDIR") or "") ~= "" and os.getenv("TZDIR") or "/usr/share/zoneinfo")
    end
    return unknown(name)
  end
  z = setmetatable({name = iana, windows = win, trans = data.trans, idx = data.idx, types = data.types,
    rule = data.rule}, Zone)
  cache[name] = z
  return z
end

--- A zone from the bytes of a TZif file (not cached), named `name`.
--- Errors: `nil, message` for bytes that are not TZif.
---@param bytes string
---@param name string
---@return lufa.schedule.zone.Zone|nil zone
---@return string? err
function M.from_tzif(bytes, name)
  local data, err = parse_tzif(bytes)
  if not data then return nil, err end
  return setmetatable({name = name, trans = data.trans, idx = data.idx, types = data.types, rule = data.rule}, Zone)
end

--- The UTC zone (always there, even without tzdata).
---@return lufa.schedule.zone.Zone zone
function M.utc() return M.get("UTC") end

return M
