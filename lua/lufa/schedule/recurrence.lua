--- A ScheduleTrigger's `recurrence` (frequency, interval, startTime, endTime, timeZone, schedule): its
--- checks, with JSON paths, and its fire times.
---
--- Semantics (../shared/docs/protocols/adf-triggers.md §2):
--- * Without a schedule, Minute and Hour recurrences step in elapsed time (startTime + k·interval minutes
---   or hours, in UTC), so an hourly trigger fires 23 or 25 times on a DST change day: a fixed cadence is
---   what such triggers are for, and stepping wall-clock hours would fire twice or not at all in the
---   changed hour. Day, Week and Month recurrences keep the wall-clock time of startTime in the trigger's
---   zone ("an 8 AM daily trigger fires at 8 AM in both PST and PDT"); Month counts calendar months from
---   startTime and clamps its day to short months (Jan 31 → Feb 28 → Mar 31), never drifting.
--- * With a schedule, each frequency period (counted from the one holding startTime, weeks starting on
---   Monday) is limited and expanded by the schedule: days (monthDays, monthlyOccurrences, weekDays) ×
---   hours × minutes, a missing hours/minutes taking startTime's (except the frequency's own unit and
---   smaller: an Hour recurrence without hours fires every hour). Schedule times are at second 0, matched
---   against wall-clock time in the zone; nothing fires before startTime.
--- * A wall time skipped by spring-forward fires at the instant the offset before the change gives
---   (02:30 PST-rule = 03:30 PDT); a repeated wall time fires once, at its first occurrence (lufa's choice:
---   ADF does not document either; the alternative would be to skip the day).
--- * endTime is exclusive: nothing fires at or after it.
---
--- Example:
--- ```lua
--- local recurrence = require "lufa.schedule.recurrence"
--- local compiled, problems = recurrence.compile { frequency = "Day", interval = 1,
---   startTime = "2027-03-12T02:30:00", timeZone = "Pacific Standard Time" }
--- for _, at in ipairs(compiled:next_n(0, 3)) do print(os.date("!%Y-%m-%d %H:%M", at)) end
--- print(#problems, recurrence.validate({ frequency = "Fortnight", interval = 1 })[1].path)
--- ```
--- ```text output
--- 2027-03-12 10:30
--- 2027-03-13 10:30
--- 2027-03-14 10:30
--- 0	.frequency
--- ```
local L = require "lufa.pipeline.lenient"
local zone = require "lufa.schedule.zone"

---@class lufa.schedule.recurrence
local M = {}

---@class lufa.schedule.recurrence.Recurrence
---@field frequency "Minute"|"Hour"|"Day"|"Week"|"Month"
---@field interval integer
---@field startTime string ISO-8601, in `timeZone` unless it carries an offset or Z
---@field endTime? string exclusive
---@field timeZone? string an IANA or Windows zone name (default UTC)
---@field schedule? {minutes?: integer[], hours?: integer[], weekDays?: string[], monthDays?: integer[], monthlyOccurrences?: table[]}

---@class lufa.schedule.recurrence.Problem
---@field path string relative to the recurrence: ".frequency", ".schedule.hours[1]", "" for the object (indices from 0)
---@field message string
---@field severity "error"|"warning"

local FREQUENCIES = {"Minute", "Hour", "Day", "Week", "Month"}
local FIELDS = {"frequency", "interval", "startTime", "endTime", "timeZone", "schedule"}
local SCHEDULE_FIELDS = {"minutes", "hours", "weekDays", "monthDays", "monthlyOccurrences"}
local WEEKDAYS = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
local UNIT = {Minute = 60, Hour = 3600}
local MAX_INTERVAL = 1000          -- the documented range is 1-1000
local SEARCH_YEARS = 100           -- how far next_after looks for a schedule that (almost) never matches

local zone_days_in_month, days_from_civil, civil_from_days = zone.days_in_month, zone.days_from_civil,
  zone.civil_from_days

-- ---------------------------------------------------------------- reading the JSON

-- "2027-01-04T08:00:00Z", "2027-03-12T02:30:00", "2027-03-12T02:30:00.5-08:00", "2027-03-12":
-- wall-clock seconds (read as UTC) and the UTC offset written, if any (seconds; "Z" is 0).
local function parse_datetime(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  local h, mi, sec, frac, tz = 0, 0, 0, "", ""
  if rest ~= "" then
    local hh, mm, r = rest:match("^[Tt ](%d%d):(%d%d)(.*)$")
    if not hh then return nil end
    h, mi, rest = tonumber(hh), tonumber(mm), r
    local ss, r2 = rest:match("^:(%d%d)(.*)$")
    if ss then sec, rest = tonumber(ss), r2 end
    local f, r3 = rest:match("^(%.%d+)(.*)$")
    if f then frac, rest = f, r3 end
    tz = rest
  end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > zone_days_in_month(y, mo) or h > 23 or mi > 59 or sec > 59 then return nil end
  local offset
  if tz == "Z" or tz == "z" then offset = 0
  elseif tz ~= "" then
    local sign, oh, om = tz:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  local wall = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec
  if frac ~= "" then wall = wall + tonumber("0" .. frac) end
  return wall, offset
end

local function is_int(v) return math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v) and v == v
  and v ~= math.huge and v ~= -math.huge) end

local function weekday_index(name)
  if type(name) ~= "string" then return nil end
  local l = name:lower()
  for i, w in ipairs(WEEKDAYS) do if w:lower() == l then return i end end
end

local function allowed_for(field)
  if field == "weekDays" then return {Week = true} end
  if field == "monthDays" or field == "monthlyOccurrences" then return {Month = true} end
end

-- ---------------------------------------------------------------- checks

-- Reads and checks `rec`; returns the parts (for compile) and the problems.
local function read(rec)
  local problems = {}
  local function problem(path, severity, fmt, ...)
    problems[#problems + 1] = {path = path, severity = severity, message = string.format(fmt, ...)}
  end
  local parts = {}
  if not L.is_object(rec) then
    problem("", "error", "a recurrence must be an object with frequency, interval and startTime")
    return parts, problems
  end
  for k in pairs(rec) do
    if type(k) ~= "string" or not L.enum(k, FIELDS) then
      problem("." .. tostring(k), "warning", "unknown recurrence field '%s' (known: %s)", tostring(k),
        table.concat(FIELDS, ", "))
    end
  end

  local freq = L.get(rec, "frequency")
  if freq == nil then
    problem(".frequency", "error", "a recurrence needs a frequency (one of %s)", table.concat(FREQUENCIES, ", "))
  else
    parts.frequency = L.enum(freq, FREQUENCIES)
    if not parts.frequency then
      problem(".frequency", "error", "unknown frequency '%s' (expected one of %s)", tostring(freq),
        table.concat(FREQUENCIES, ", "))
    end
  end

  local interval = L.get(rec, "interval")
  if interval == nil then parts.interval = 1
  elseif type(interval) ~= "number" or not math.tointeger(interval) or interval < 1 then
    problem(".interval", "error", "interval must be a positive integer (how many %s between runs), got %s",
      parts.frequency and (parts.frequency:lower() .. "s") or "periods",
      type(interval) == "string" and string.format("the string '%s'", interval) or tostring(interval))
  else
    parts.interval = math.tointeger(interval)
    if parts.interval > MAX_INTERVAL then
      problem(".interval", "warning", "interval %d is above ADF's documented limit of %d", parts.interval, MAX_INTERVAL)
    end
  end

  local tzname = L.get(rec, "timeZone")
  if tzname == nil then parts.zone = zone.get("UTC")
  else
    local z, err = zone.get(tzname)
    if not z then problem(".timeZone", "error", "%s", err) else parts.zone = z end
  end
  local utc = parts.zone and parts.zone.name == "Etc/UTC"

  local function instant(field)
    local v = L.get(rec, field)
    if v == nil then return nil, false end
    local wall, offset = parse_datetime(v)
    if not wall then
      problem("." .. field, "error", "%s %s is not a date-time (expected yyyy-MM-ddTHH:mm:ss, with a Z when timeZone " ..
        "is UTC, e.g. 2027-01-04T08:00:00Z)", field, type(v) == "string" and ("'" .. v .. "'") or tostring(v))
      return nil, true
    end
    if offset and parts.zone and not utc then
      problem("." .. field, "error", "%s '%s' has a UTC offset, but with timeZone '%s' ADF expects the wall-clock " ..
        "time in that zone without 'Z' or an offset (e.g. %s)", field, v, tostring(tzname),
        (v:match("^[^Zz+]*"):gsub("%-%d%d:?%d%d$", "")))
      return nil, true
    end
    if not parts.zone then return nil, true end
    if offset then return wall - offset, false end
    if utc then
      problem("." .. field, "warning", "%s '%s' has no 'Z': with timeZone UTC ADF expects yyyy-MM-ddTHH:mm:ssZ " ..
        "(lufa reads it as UTC)", field, v)
    end
    local t = parts.zone:wall_to_utc(wall)
    return t, false, wall
  end

  local bad_start
  parts.start, bad_start, parts.start_wall = instant("startTime")
  if parts.start == nil and not bad_start and L.get(rec, "startTime") == nil then
    problem(".startTime", "error", "a recurrence needs a startTime (e.g. 2027-01-04T08:00:00Z)")
  end
  -- the wall-clock time of startTime in the zone: as written, or (written with an offset) as read back
  if parts.start and not parts.start_wall then parts.start_wall = parts.start + parts.zone:offset_at(parts.start) end
  parts.end_time = instant("endTime")
  if parts.end_time and parts.start and parts.end_time <= parts.start then
    problem(".endTime", "error", "endTime %s is not after startTime %s", tostring(L.get(rec, "endTime")),
      tostring(L.get(rec, "startTime")))
  end

  local schedule = L.get(rec, "schedule")
  if schedule ~= nil then
    if not L.is_object(schedule) then
      problem(".schedule", "error", "schedule must be an object with minutes, hours, weekDays, monthDays or " ..
        "monthlyOccurrences")
    else
      parts.schedule = {}
      for k in pairs(schedule) do
        if type(k) ~= "string" or not L.enum(k, SCHEDULE_FIELDS) then
          problem(".schedule." .. tostring(k), "error", "unknown schedule field '%s' (known: %s)", tostring(k),
            table.concat(SCHEDULE_FIELDS, ", "))
        end
      end
      for _, field in ipairs(SCHEDULE_FIELDS) do
        local list = L.get(schedule, field)
        local path = ".schedule." .. field
        local allowed = allowed_for(field)
        if list == nil then goto continue end
        if allowed and parts.frequency and not allowed[parts.frequency] then
          problem(path, "error", "schedule.%s needs frequency %s (this recurrence's frequency is %s)", field,
            next(allowed), parts.frequency)
        end
        if type(list) == "table" and next(list) == nil then
          problem(path, "error", "schedule.%s is empty (leave it out instead)", field)
          goto continue
        end
        if not L.is_array(list) then
          problem(path, "error", "schedule.%s must be an array", field)
          goto continue
        end
        local values = {}
        for i, v in ipairs(list) do
          local at = string.format("%s[%d]", path, i - 1)
          if field == "minutes" or field == "hours" then
            local hi = field == "minutes" and 59 or 23
            if not is_int(v) or v < 0 or v > hi then
              problem(at, "error", "%s must be whole numbers from 0 to %d, got %s", field, hi, tostring(v))
            else values[#values + 1] = math.tointeger(v) end
          elseif field == "monthDays" then
            if not is_int(v) or v == 0 or v < -31 or v > 31 then
              problem(at, "error", "monthDays must be 1 to 31, or -31 to -1 counting from the month's end " ..
                "(-1 = the last day), got %s", tostring(v))
            else values[#values + 1] = math.tointeger(v) end
          elseif field == "weekDays" then
            local wd = weekday_index(v)
            if not wd then
              problem(at, "error", "unknown weekday '%s' (expected %s)", tostring(v), table.concat(WEEKDAYS, ", "))
            else values[#values + 1] = wd end
          else -- monthlyOccurrences
            if not L.is_object(v) then
              problem(at, "error", "a monthly occurrence is an object {\"day\": \"Friday\", \"occurrence\": -1}")
            else
              local wd = weekday_index(L.get(v, "day"))
              if not wd then
                problem(at .. ".day", "error", "unknown weekday '%s' (expected %s)", tostring(L.get(v, "day")),
                  table.concat(WEEKDAYS, ", "))
              end
              local occ = L.get(v, "occurrence")
              if occ ~= nil and (not is_int(occ) or occ == 0 or occ < -5 or occ > 5) then
                problem(at .. ".occurrence", "error", "occurrence must be 1 to 5, or -5 to -1 counting from the " ..
                  "month's end (-1 = the last), got %s", tostring(occ))
              elseif wd then
                values[#values + 1] = {day = wd, occurrence = occ and math.tointeger(occ)}
              end
            end
          end
        end
        if field == "weekDays" and #list > 7 then
          problem(path, "error", "weekDays has %d entries (at most 7)", #list)
        end
        parts.schedule[field] = values
        ::continue::
      end
    end
  end
  return parts, problems
end

--- The problems of a recurrence object: list of `{path, message, severity}`, `path` relative to the
--- recurrence (".frequency", ".schedule.hours[1]", "" for the object itself; indices count from 0).
---@nodiscard
---@param rec table
---@return lufa.schedule.recurrence.Problem[] problems
function M.validate(rec)
  local _, problems = read(rec)
  return problems
end

-- ---------------------------------------------------------------- fire times

--- A compiled recurrence (`recurrence.compile`).
---@class lufa.schedule.recurrence.Compiled
local Compiled = {}
Compiled.__index = Compiled

local function sorted_unique(list)
  local seen, out = {}, {}
  for _, v in ipairs(list) do if not seen[v] then seen[v], out[#out + 1] = true, v end end
  table.sort(out)
  return out
end

local function week_of(days) return (days + 3) // 7 end   -- weeks from Monday 1969-12-29

--- Without a schedule: fire time k (k >= 0).
---@private
function Compiled:fire(k)
  local f = self.frequency
  if UNIT[f] then return self.start + k * self.interval * UNIT[f] end
  if f == "Day" or f == "Week" then
    return (self.zone:wall_to_utc(self.start_wall + k * self.step_days * 86400))
  end
  local y0, m0, d0 = self.y0, self.m0, self.d0
  local mi = m0 - 1 + k * self.interval
  local y, m = y0 + mi // 12, mi % 12 + 1
  local d = math.min(d0, zone_days_in_month(y, m))
  return (self.zone:wall_to_utc(days_from_civil(y, m, d) * 86400 + self.tod0))
end

--- The index of the first fire time after t, estimated by arithmetic, then corrected.
---@private
function Compiled:plain_next(t)
  if t < self.start then return self.start end
  local f = self.frequency
  local k
  if UNIT[f] then
    k = (t - self.start) // (self.interval * UNIT[f]) + 1
  elseif f == "Day" or f == "Week" then
    k = math.floor((t - self.start) // (self.step_days * 86400))
  else
    local l = self.zone:to_local(t)
    k = ((l.year * 12 + l.month) - (self.y0 * 12 + self.m0)) // self.interval
  end
  k = math.max(0, math.floor(k))
  while k > 0 and self:fire(k - 1) > t do k = k - 1 end
  while self:fire(k) <= t do k = k + 1 end
  return self:fire(k)
end

--- The days of month (y, m) the schedule names, sorted.
---@private
function Compiled:month_days(y, m)
  local s = self.schedule
  local dim = zone_days_in_month(y, m)
  local out = {}
  if not s.monthDays and not s.monthlyOccurrences then
    out[1] = math.min(self.d0, dim)
    return out
  end
  for _, d in ipairs(s.monthDays or {}) do
    local day = d > 0 and d or dim + 1 + d
    if day >= 1 and day <= dim then out[#out + 1] = day end
  end
  if s.monthlyOccurrences then
    local first_wd = zone.weekday(days_from_civil(y, m, 1))   -- 1 = Sunday
    for _, o in ipairs(s.monthlyOccurrences) do
      local first = 1 + (o.day - first_wd) % 7
      local days = {}
      for d = first, dim, 7 do days[#days + 1] = d end
      if not o.occurrence then
        for _, d in ipairs(days) do out[#out + 1] = d end
      else
        local d = o.occurrence > 0 and days[o.occurrence] or days[#days + 1 + o.occurrence]
        if d then out[#out + 1] = d end
      end
    end
  end
  return sorted_unique(out)
end

--- The first valid day (day number) at or after `dn` and the period it is in, per the frequency's
--- period rule and the schedule's day filters; nil past `limit`.
---@private
function Compiled:next_day(dn, limit)
  local f, iv = self.frequency, self.interval
  while dn <= limit do
    if f == "Day" then
      local p = dn - self.day0
      if p < 0 then dn = self.day0 elseif p % iv ~= 0 then dn = dn + (iv - p % iv) else return dn end
    elseif f == "Week" then
      local p = week_of(dn) - self.week0
      if p < 0 or p % iv ~= 0 then
        local skip = p < 0 and -p or (iv - p % iv)
        dn = (week_of(dn) + skip) * 7 - 3          -- the Monday of the next valid week
      elseif self.weekdays[zone.weekday(dn)] then return dn
      else dn = dn + 1 end
    elseif f == "Month" then
      local y, m, d = civil_from_days(dn)
      local p = (y * 12 + m) - (self.y0 * 12 + self.m0)
      if p < 0 or p % iv ~= 0 then
        local skip = p < 0 and -p or (iv - p % iv)
        local mi = m - 1 + skip
        dn = days_from_civil(y + mi // 12, mi % 12 + 1, 1)
      else
        for _, day in ipairs(self:month_days(y, m)) do
          if day >= d then return days_from_civil(y, m, day) end
        end
        dn = days_from_civil(y, m, zone_days_in_month(y, m)) + 1
      end
    else
      return dn   -- Minute, Hour: every day; the times carry the period rule
    end
  end
  return nil
end

--- Whether the time of day `tod` (seconds) on day `dn` is in a fired period (Minute and Hour schedules).
---@private
function Compiled:time_in_period(dn, tod)
  local f = self.frequency
  if f == "Hour" then
    local p = (dn * 24 + tod // 3600) - self.hour0
    return p >= 0 and p % self.interval == 0
  elseif f == "Minute" then
    local p = (dn * 1440 + tod // 60) - self.minute0
    return p >= 0 and p % self.interval == 0
  end
  return true
end

--- With a schedule: the first fire time after t (and at or after startTime) on day dn, or nil.
---@private
function Compiled:first_on_day(dn, after)
  local z = self.zone
  local base = dn * 86400
  -- the day's instants lie within a day either side of `base` (offsets are under 24 h): the same offset at
  -- both ends means no transition in between, and the wall times map in order
  local off_a = z:offset_at(base - 86400)
  local off_b = z:offset_at(base + 2 * 86400)
  local best
  for _, tod in ipairs(self.times) do
    if self:time_in_period(dn, tod) then
      local w = base + tod
      local x
      if off_a == off_b then x = w - off_a else x = z:wall_to_utc(w) end
      if x > after and x >= self.start then
        if off_a == off_b then return x end   -- no transition near: times are in order
        if not best or x < best then best = x end
      end
    end
  end
  return best
end

--- With a schedule: the first fire time strictly after `t`, or nil.
---@private
function Compiled:scheduled_next(t)
  local from = math.max(t, self.start)
  local dn = math.floor((from + self.zone:offset_at(from)) // 86400) - 1
  local limit = dn + SEARCH_YEARS * 366
  while true do
    dn = self:next_day(dn, limit)
    if not dn then return nil end
    local x = self:first_on_day(dn, t)
    if x then return x end
    dn = dn + 1
  end
end

--- The first fire time strictly after `t` (epoch seconds), or nil when there is none (endTime reached,
--- or a schedule that matches no day within a century).
---@nodiscard
---@param t number
---@return integer|nil t
function Compiled:next_after(t)
  if t ~= t or t == math.huge then return nil end   -- NaN, or after the end of time
  local x
  if self.schedule then x = self:scheduled_next(t) else x = self:plain_next(t) end
  if x and self.end_time and x >= self.end_time then return nil end
  return x
end

--- The next `n` fire times after `t` (fewer when the recurrence ends).
---@nodiscard
---@param t number
---@param n integer
---@return integer[] times
function Compiled:next_n(t, n)
  local out = {}
  for i = 1, n do
    t = self:next_after(t)
    if not t then break end
    out[i] = t
  end
  return out
end

--- Checks and compiles a recurrence object.
--- Errors: a nil `compiled` when any problem is an error.
---@param rec lufa.schedule.recurrence.Recurrence
---@return lufa.schedule.recurrence.Compiled|nil compiled
---@return lufa.schedule.recurrence.Problem[] problems see validate
function M.compile(rec)
  local parts, problems = read(rec)
  for _, p in ipairs(problems) do
    if p.severity == "error" then return nil, problems end
  end
  local c = setmetatable({zone = parts.zone, start = parts.start, end_time = parts.end_time,
    frequency = parts.frequency, interval = parts.interval, start_wall = parts.start_wall}, Compiled)
  local y, m, d, h, mi = zone.wall_fields(parts.start_wall)
  c.y0, c.m0, c.d0 = y, m, d
  c.tod0 = parts.start_wall - days_from_civil(y, m, d) * 86400
  c.day0 = days_from_civil(y, m, d)
  c.week0 = week_of(c.day0)
  c.hour0 = c.day0 * 24 + h
  c.minute0 = c.day0 * 1440 + h * 60 + mi
  c.step_days = c.frequency == "Week" and 7 * c.interval or c.interval
  local sched = parts.schedule
  if sched and next(sched) ~= nil then
    c.schedule = sched
    local hours = sched.hours
    if not hours then
      if c.frequency == "Minute" or c.frequency == "Hour" then hours = {} for i = 0, 23 do hours[#hours + 1] = i end
      else hours = {h} end
    end
    local minutes = sched.minutes
    if not minutes then
      if c.frequency == "Minute" then minutes = {} for i = 0, 59 do minutes[#minutes + 1] = i end
      else minutes = {mi} end
    end
    hours, minutes = sorted_unique(hours), sorted_unique(minutes)
    c.times = {}
    for _, hh in ipairs(hours) do
      for _, mm in ipairs(minutes) do c.times[#c.times + 1] = hh * 3600 + mm * 60 end
    end
    c.weekdays = {}
    for _, wd in ipairs(sched.weekDays or {zone.weekday(c.day0)}) do c.weekdays[wd] = true end
  end
  return c, problems
end

return M
