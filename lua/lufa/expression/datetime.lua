--- Date and time functions of the ADF expression language.
-- Timestamps are strings; internally a time is `{ticks =, kind =}` where ticks
-- count 100 ns since 0001-01-01T00:00:00 and kind is "utc" or "unspecified"
-- (a wall-clock time in some zone, printed without a zone suffix).
-- @module lufa.expression.datetime

local V = require "lufa.expression.values"
local F = require "lufa.expression.functions"
local zones = require "lufa.expression.timezones"

local define = F.define
local raise = V.raise
local format, lower = string.format, string.lower

local M = {}

local TICKS_PER_SECOND = 10000000
local TICKS_PER_MINUTE = 60 * TICKS_PER_SECOND
local TICKS_PER_HOUR = 60 * TICKS_PER_MINUTE
local TICKS_PER_DAY = 24 * TICKS_PER_HOUR
local UNIX_EPOCH_TICKS = 621355968000000000
local MAX_TICKS = 3155378975999999999 -- 9999-12-31T23:59:59.9999999

M.TICKS_PER_SECOND, M.TICKS_PER_MINUTE, M.TICKS_PER_HOUR, M.TICKS_PER_DAY =
  TICKS_PER_SECOND, TICKS_PER_MINUTE, TICKS_PER_HOUR, TICKS_PER_DAY

local month_names = { "January", "February", "March", "April", "May", "June", "July", "August",
  "September", "October", "November", "December" }
local day_names = { [0] = "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday" }
local month_by_abbrev = {}
for i, name in ipairs(month_names) do month_by_abbrev[lower(name:sub(1, 3))] = i end

local function is_leap(y) return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) end
local days_before_month = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 }

local function days_in_month(y, m)
  if m == 2 then return is_leap(y) and 29 or 28 end
  return ({ 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 })[m]
end
M.days_in_month = days_in_month

--- Days from 0001-01-01 to y-m-d (proleptic Gregorian).
function M.days_from_civil(y, m, d)
  local py = y - 1
  local days = py * 365 + py // 4 - py // 100 + py // 400 + days_before_month[m] + d - 1
  if m > 2 and is_leap(y) then days = days + 1 end
  return days
end
local days_from_civil = M.days_from_civil

--- Year, month, day of a day number (0 = 0001-01-01).
function M.civil_from_days(days)
  local n400 = days // 146097; days = days % 146097
  local n100 = days // 36524; if n100 == 4 then n100 = 3 end
  days = days - n100 * 36524
  local n4 = days // 1461; days = days % 1461
  local n1 = days // 365; if n1 == 4 then n1 = 3 end
  days = days - n1 * 365
  local y = n400 * 400 + n100 * 100 + n4 * 4 + n1 + 1
  local leap = is_leap(y)
  local m = 12
  for i = 2, 12 do
    local start = days_before_month[i] + ((leap and i > 2) and 1 or 0)
    if days < start then m = i - 1 break end
  end
  local d = days - days_before_month[m] - ((leap and m > 2) and 1 or 0) + 1
  return y, m, d
end
local civil_from_days = M.civil_from_days

--- Broken-down fields of a tick count.
function M.fields(ticks)
  local days = ticks // TICKS_PER_DAY
  local rest = ticks % TICKS_PER_DAY
  local y, m, d = civil_from_days(days)
  return {
    year = y, month = m, day = d,
    hour = rest // TICKS_PER_HOUR, minute = (rest // TICKS_PER_MINUTE) % 60,
    second = (rest // TICKS_PER_SECOND) % 60, fraction = rest % TICKS_PER_SECOND,
    weekday = (days + 1) % 7, yearday = days - days_from_civil(y, 1, 1) + 1,
  }
end
local fields = M.fields

local function build(fname, text, y, mo, d, h, mi, s, frac)
  if mo < 1 or mo > 12 or d < 1 or y < 1 or y > 9999 or d > days_in_month(y, mo) or h > 23 or mi > 59 or s > 59 then
    raise("argument", format("function '%s' got the invalid date or time '%s'", fname, text))
  end
  local f = 0
  if frac and frac ~= "" then
    f = math.tointeger(tonumber((frac .. "0000000"):sub(1, 7)))
  end
  return days_from_civil(y, mo, d) * TICKS_PER_DAY + h * TICKS_PER_HOUR + mi * TICKS_PER_MINUTE +
    s * TICKS_PER_SECOND + f
end

-- Zone suffix at `rest`: Z, ±hh:mm, ±hhmm or ±hh. Returns minutes east of UTC (nil: none) and what remains.
local function zone_suffix(rest)
  if rest == "" then return nil, "" end
  if rest == "Z" or rest == "z" then return 0, "" end
  local sign, hh, mm = rest:match("^([-+])(%d%d):?(%d%d)$")
  if not sign then sign, hh = rest:match("^([-+])(%d%d)$"); mm = "00" end
  if not sign then return nil, rest end
  local minutes = tonumber(hh) * 60 + tonumber(mm)
  return sign == "-" and -minutes or minutes, ""
end

--- Parse a timestamp string.
-- ISO 8601 (`2018-03-15`, `2018-03-15T13:00:00.1234567Z`, `…+02:00`), `MM/dd/yyyy[ HH:mm[:ss][ AM|PM]]`
-- and RFC 1123 (`Thu, 15 Mar 2018 13:00:00 GMT`) are accepted.
-- @return ticks, kind ("utc" when a zone was given, else "unspecified"), or raises
function M.parse(fname, text)
  if type(text) ~= "string" then
    raise("type", format("function '%s' expects a timestamp string but got %s", fname, V.a(text)))
  end
  local s = text:match("^%s*(.-)%s*$")
  local y, mo, d, rest = s:match("^(%d%d%d%d)-(%d%d?)-(%d%d?)(.*)$")
  if not y then y, mo, d, rest = s:match("^(%d%d%d%d)/(%d%d?)/(%d%d?)(.*)$") end
  if not y then mo, d, y, rest = s:match("^(%d%d?)/(%d%d?)/(%d%d%d%d)(.*)$") end
  local h, mi, sec, frac, ampm = 0, 0, 0, nil, nil
  local offset
  if y then
    if rest ~= "" then
      local hh, mm, tail = rest:match("^[T ](%d%d?):(%d%d)(.*)$")
      if hh then
        h, mi, rest = tonumber(hh), tonumber(mm), tail
        local ss, tail2 = rest:match("^:(%d%d)(.*)$")
        if ss then
          sec, rest = tonumber(ss), tail2
          local ff, tail3 = rest:match("^[.,](%d+)(.*)$")
          if ff then frac, rest = ff, tail3 end
        end
        local ap, tail4 = rest:match("^%s*([AaPp][Mm])(.*)$")
        if ap then ampm, rest = lower(ap), tail4 end
      end
      offset, rest = zone_suffix(rest:match("^%s*(.-)$"))
      if rest ~= "" then y = nil end
    end
  else
    local dd, mon, yy, hh, mm, ss = s:match("^%a%a%a, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
    if dd and month_by_abbrev[lower(mon)] then
      y, mo, d, h, mi, sec, offset = yy, month_by_abbrev[lower(mon)], dd, tonumber(hh), tonumber(mm), tonumber(ss), 0
    end
  end
  if not y then
    raise("argument", format("function '%s' expects a timestamp such as 2018-03-15T13:00:00Z but got '%s'",
      fname, text))
  end
  if ampm then
    if h < 1 or h > 12 then raise("argument", format("function '%s' got the invalid time '%s'", fname, text)) end
    if ampm == "am" and h == 12 then h = 0 elseif ampm == "pm" and h < 12 then h = h + 12 end
  end
  local ticks = build(fname, text, tonumber(y), tonumber(mo), tonumber(d), h, mi, sec, frac)
  if offset then
    return ticks - offset * TICKS_PER_MINUTE, "utc", true
  end
  return ticks, "unspecified", false
end
local parse = M.parse

-- ---------------------------------------------------------------- formatting

-- .NET's standard formats with the en-US culture, which ADF uses
-- (`D` gives "Tuesday, January 2, 2018", `G` "1/2/2018 1:05:00 PM").
local standard_formats = {
  d = "M/d/yyyy",
  D = "dddd, MMMM d, yyyy",
  f = "dddd, MMMM d, yyyy h:mm tt",
  F = "dddd, MMMM d, yyyy h:mm:ss tt",
  g = "M/d/yyyy h:mm tt",
  G = "M/d/yyyy h:mm:ss tt",
  M = "MMMM d", m = "MMMM d",
  O = "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK", o = "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
  R = "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'", r = "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
  s = "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
  t = "h:mm tt",
  T = "h:mm:ss tt",
  u = "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
  U = "dddd, MMMM d, yyyy h:mm:ss tt",
  Y = "MMMM yyyy", y = "MMMM yyyy",
}

local function pad(n, width) return format("%0" .. width .. "d", n) end

local function offset_text(minutes, style)
  local sign = minutes < 0 and "-" or "+"
  minutes = math.abs(minutes)
  local hh, mm = minutes // 60, minutes % 60
  if style == 1 then return sign .. hh end
  if style == 2 then return sign .. pad(hh, 2) end
  return sign .. pad(hh, 2) .. ":" .. pad(mm, 2)
end

--- Format ticks with a .NET standard (one letter) or custom format string (en-US culture).
-- @param ticks the time
-- @param kind "utc" or "unspecified"
-- @param fmt the format (default "o")
-- @param fname the calling function's name, for errors
function M.format(ticks, kind, fmt, fname)
  fmt = fmt or "o"
  if fmt == "" then fmt = "G" end
  if #fmt == 1 then
    local pattern = standard_formats[fmt]
    if not pattern then
      raise("argument", format("function '%s' does not know the standard format '%s' (use d, D, f, F, g, G, M, o, " ..
        "R, s, t, T, u, U or Y, or a custom format such as yyyy-MM-dd)", fname or "formatDateTime", fmt))
    end
    fmt = pattern
  end
  local t = fields(ticks)
  local out = {}
  local i, n = 1, #fmt
  while i <= n do
    local c = fmt:sub(i, i)
    local j = i
    while j < n and fmt:sub(j + 1, j + 1) == c do j = j + 1 end
    local run = j - i + 1
    if c == "y" then
      if run == 1 then out[#out + 1] = tostring(t.year % 100)
      elseif run == 2 then out[#out + 1] = pad(t.year % 100, 2)
      else out[#out + 1] = pad(t.year, run) end
    elseif c == "M" then
      if run == 1 then out[#out + 1] = tostring(t.month)
      elseif run == 2 then out[#out + 1] = pad(t.month, 2)
      elseif run == 3 then out[#out + 1] = month_names[t.month]:sub(1, 3)
      else out[#out + 1] = month_names[t.month] end
    elseif c == "d" then
      if run == 1 then out[#out + 1] = tostring(t.day)
      elseif run == 2 then out[#out + 1] = pad(t.day, 2)
      elseif run == 3 then out[#out + 1] = day_names[t.weekday]:sub(1, 3)
      else out[#out + 1] = day_names[t.weekday] end
    elseif c == "H" then
      out[#out + 1] = run == 1 and tostring(t.hour) or pad(t.hour, 2)
    elseif c == "h" then
      local h12 = t.hour % 12
      if h12 == 0 then h12 = 12 end
      out[#out + 1] = run == 1 and tostring(h12) or pad(h12, 2)
    elseif c == "m" then
      out[#out + 1] = run == 1 and tostring(t.minute) or pad(t.minute, 2)
    elseif c == "s" then
      out[#out + 1] = run == 1 and tostring(t.second) or pad(t.second, 2)
    elseif c == "f" or c == "F" then
      if run > 7 then raise("argument", "a date format allows at most 7 '" .. c .. "' characters") end
      local digits = pad(t.fraction, 7):sub(1, run)
      if c == "F" then
        digits = digits:gsub("0+$", "")
        -- An empty F part also drops the '.' written just before it.
        if digits == "" and out[#out] == "." then out[#out] = nil end
      end
      out[#out + 1] = digits
    elseif c == "t" then
      local am = t.hour < 12
      out[#out + 1] = run == 1 and (am and "A" or "P") or (am and "AM" or "PM")
    elseif c == "K" then
      for _ = 1, run do
        if kind == "utc" then out[#out + 1] = "Z" end
      end
    elseif c == "z" then
      out[#out + 1] = offset_text(0, math.min(run, 3))
    elseif c == "g" then
      out[#out + 1] = "A.D."
    elseif c == "'" or c == '"' then
      local close = fmt:find(c, i + 1, true)
      if not close then raise("argument", "the date format '" .. fmt .. "' has an unclosed quote") end
      out[#out + 1] = fmt:sub(i + 1, close - 1)
      j = close
    elseif c == "\\" then
      if i == n then raise("argument", "the date format '" .. fmt .. "' ends with a lone backslash") end
      out[#out + 1] = fmt:sub(i + 1, i + 1)
      j = i + 1
    elseif c == "%" then
      -- '%x' uses x as a custom specifier on its own; nothing to print for '%'.
      j = i
    else
      out[#out + 1] = fmt:sub(i, j)
    end
    i = j + 1
  end
  return table.concat(out)
end
local format_time = M.format

-- ---------------------------------------------------------------- arithmetic

local function check_range(fname, ticks)
  if ticks < 0 or ticks > MAX_TICKS then
    raise("argument", format("function '%s' produced a time outside years 1 to 9999", fname))
  end
  return ticks
end

-- n units of `per` ticks, refused before the 64-bit product could wrap around: no shift of more than the
-- whole range of years 1 to 9999 can give a time inside it.
local function delta_ticks(fname, n, per)
  if math.abs(n + 0.0) > MAX_TICKS / per then check_range(fname, -1) end
  return math.tointeger(n) and n * per or math.floor(n * per + 0.5)
end

--- Add calendar months, clamping the day to the target month's length (.NET AddMonths).
function M.add_months(fname, ticks, months)
  local t = fields(ticks)
  local total = t.year * 12 + (t.month - 1) + months
  local y, m = total // 12, total % 12 + 1
  if y < 1 or y > 9999 then raise("argument", format("function '%s' produced a time outside years 1 to 9999", fname)) end
  local d = math.min(t.day, days_in_month(y, m))
  return days_from_civil(y, m, d) * TICKS_PER_DAY + ticks % TICKS_PER_DAY
end
local add_months = M.add_months

local unit_ticks = {
  second = TICKS_PER_SECOND, minute = TICKS_PER_MINUTE, hour = TICKS_PER_HOUR,
  day = TICKS_PER_DAY, week = 7 * TICKS_PER_DAY,
}

local function shift(fname, ticks, amount, unit)
  if type(amount) ~= "number" then
    raise("type", format("function '%s' expects a number of units but got %s", fname, V.a(amount)))
  end
  local u = lower(V.check_string(fname, 3, unit)):gsub("s$", "")
  if u == "month" or u == "year" then
    local n = V.check_integer(fname, 2, amount)
    if math.abs(n + 0.0) > (u == "year" and 10000 or 120000) then check_range(fname, -1) end
    return add_months(fname, ticks, u == "year" and n * 12 or n)
  end
  local per = unit_ticks[u]
  if not per then
    raise("argument", format("function '%s' expects a unit of Second, Minute, Hour, Day, Week, Month or Year " ..
      "but got '%s'", fname, unit))
  end
  return check_range(fname, ticks + delta_ticks(fname, amount, per))
end

--- Current time in ticks, from scope.now() when given (Unix seconds or a timestamp string).
function M.now_ticks(scope)
  local now = scope and scope.now
  local v = now and now() or os.time()
  if type(v) == "string" then return (parse("utcNow", v)) end
  if type(v) ~= "number" then raise("evaluation", "scope.now() must return Unix seconds or a timestamp string") end
  return UNIX_EPOCH_TICKS + math.floor(v * TICKS_PER_SECOND + 0.5)
end
local now_ticks = M.now_ticks

local function fmt_arg(fname, fmt)
  if fmt == nil then return nil end
  return V.check_string(fname, 0, fmt)
end

-- Date arithmetic keeps the kind of its input: a time given with Z or an offset
-- is an instant and prints in UTC with Z; one given without a zone stays
-- zone-less (no Z), as .NET's DateTime with an unspecified kind does.
local function time_result(fname, ticks, fmt, kind)
  return format_time(check_range(fname, ticks), kind or "utc", fmt_arg(fname, fmt), fname)
end

local function define_add(name, per)
  define(name, 2, 3, function(_, ts, n, fmt)
    local ticks, kind = parse(name, ts)
    if type(n) ~= "number" then
      raise("type", format("function '%s' expects a number as argument 2 but got %s", name, V.a(n)))
    end
    return time_result(name, ticks + delta_ticks(name, n, per), fmt, kind)
  end)
end

define_add("addDays", TICKS_PER_DAY)
define_add("addHours", TICKS_PER_HOUR)
define_add("addMinutes", TICKS_PER_MINUTE)
define_add("addSeconds", TICKS_PER_SECOND)

define("addToTime", 3, 4, function(_, ts, n, unit, fmt)
  local ticks, kind = parse("addToTime", ts)
  return time_result("addToTime", shift("addToTime", ticks, n, unit), fmt, kind)
end)

define("subtractFromTime", 3, 4, function(_, ts, n, unit, fmt)
  if type(n) ~= "number" then
    raise("type", "function 'subtractFromTime' expects a number as argument 2 but got " .. V.a(n))
  end
  local ticks, kind = parse("subtractFromTime", ts)
  return time_result("subtractFromTime", shift("subtractFromTime", ticks, -n, unit), fmt, kind)
end)

define("getFutureTime", 2, 3, function(scope, n, unit, fmt)
  return time_result("getFutureTime", shift("getFutureTime", now_ticks(scope), n, unit), fmt)
end)

define("getPastTime", 2, 3, function(scope, n, unit, fmt)
  if type(n) ~= "number" then raise("type", "function 'getPastTime' expects a number but got " .. V.a(n)) end
  return time_result("getPastTime", shift("getPastTime", now_ticks(scope), -n, unit), fmt)
end)

define("utcNow", 0, 1, function(scope, fmt)
  return time_result("utcNow", now_ticks(scope), fmt)
end)

define("formatDateTime", 1, 2, function(_, ts, fmt)
  local ticks, kind = parse("formatDateTime", ts)
  return format_time(ticks, kind, fmt_arg("formatDateTime", fmt), "formatDateTime")
end)

define("dayOfMonth", 1, 1, function(_, ts) return fields(parse("dayOfMonth", ts)).day end)
define("dayOfWeek", 1, 1, function(_, ts) return fields(parse("dayOfWeek", ts)).weekday end)
define("dayOfYear", 1, 1, function(_, ts) return fields(parse("dayOfYear", ts)).yearday end)

define("startOfDay", 1, 2, function(_, ts, fmt)
  local ticks, kind = parse("startOfDay", ts)
  return time_result("startOfDay", ticks - ticks % TICKS_PER_DAY, fmt, kind)
end)

define("startOfHour", 1, 2, function(_, ts, fmt)
  local ticks, kind = parse("startOfHour", ts)
  return time_result("startOfHour", ticks - ticks % TICKS_PER_HOUR, fmt, kind)
end)

define("startOfMonth", 1, 2, function(_, ts, fmt)
  local ticks, kind = parse("startOfMonth", ts)
  local t = fields(ticks)
  return time_result("startOfMonth", days_from_civil(t.year, t.month, 1) * TICKS_PER_DAY, fmt, kind)
end)

define("ticks", 1, 1, function(_, ts) return (parse("ticks", ts)) end)

-- ---------------------------------------------------------------- time zones

local function zone_arg(fname, id)
  local zone = zones.lookup(V.check_string(fname, 2, id))
  if not zone then
    raise("argument", format("function '%s' does not know the time zone '%s' (use a Windows time zone id such " ..
      "as 'Pacific Standard Time'; see docs/expressions.md for the list)", fname, id))
  end
  return zone
end

-- A time given with a zone is an instant; one without is a wall-clock time in `zone`.
local function instant_from(fname, ts, zone)
  local ticks, _, zoned = parse(fname, ts)
  if zoned then return ticks end
  local utc, why = zones.to_utc(zone, ticks)
  if not utc then raise("argument", format("function '%s': '%s' %s", fname, ts, why)) end
  return utc
end

define("convertFromUtc", 2, 3, function(_, ts, tz, fmt)
  local zone = zone_arg("convertFromUtc", tz)
  local ticks = parse("convertFromUtc", ts)
  local wall = zones.from_utc(zone, ticks)
  return format_time(check_range("convertFromUtc", wall), zone.id == "UTC" and "utc" or "unspecified",
    fmt_arg("convertFromUtc", fmt), "convertFromUtc")
end)

define("convertToUtc", 2, 3, function(_, ts, tz, fmt)
  local zone = zone_arg("convertToUtc", tz)
  return time_result("convertToUtc", instant_from("convertToUtc", ts, zone), fmt)
end)

define("convertTimeZone", 3, 4, function(_, ts, from, to, fmt)
  local src = zone_arg("convertTimeZone", from)
  local dst = zone_arg("convertTimeZone", to)
  local wall = zones.from_utc(dst, instant_from("convertTimeZone", ts, src))
  return format_time(check_range("convertTimeZone", wall), dst.id == "UTC" and "utc" or "unspecified",
    fmt_arg("convertTimeZone", fmt), "convertTimeZone")
end)

return M
