--- Windows time-zone ids with their current standard offsets and daylight-saving rules.
-- Only today's rules are applied, to every year (historical rule changes are not modelled).
-- @module lufa.expression.timezones

local M = {}

local TICKS_PER_MINUTE = 600000000
local TICKS_PER_HOUR = 60 * TICKS_PER_MINUTE
local TICKS_PER_DAY = 24 * TICKS_PER_HOUR

local function is_leap(y) return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) end
local month_lengths = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function days_from_civil(y, m, d)
  local py = y - 1
  local days = py * 365 + py // 4 - py // 100 + py // 400 + d - 1
  for i = 1, m - 1 do days = days + month_lengths[i] end
  if m > 2 and is_leap(y) then days = days + 1 end
  return days
end

local function year_of(ticks)
  -- Good enough to pick the rule year: refine from an estimate.
  local y = ticks // (TICKS_PER_DAY * 36524 // 100) + 1
  while days_from_civil(y, 1, 1) * TICKS_PER_DAY > ticks do y = y - 1 end
  while days_from_civil(y + 1, 1, 1) * TICKS_PER_DAY <= ticks do y = y + 1 end
  return y
end

-- Day number of the n-th (n >= 1) or last (n = -1) Sunday of a month.
local function sunday(y, m, n)
  if n == -1 then
    local len = month_lengths[m] + ((m == 2 and is_leap(y)) and 1 or 0)
    local last = days_from_civil(y, m, len)
    return last - (last + 1) % 7
  end
  local first = days_from_civil(y, m, 1)
  local to_sunday = (7 - (first + 1) % 7) % 7
  return first + to_sunday + (n - 1) * 7
end

-- A rule gives the UTC ticks where daylight time starts and ends in year y.
-- `start`/`finish`: {month, nth Sunday, local hour, "standard" | "daylight" | "utc" clock}.
local rules = {
  us = { start = { 3, 2, 2, "standard" }, finish = { 11, 1, 2, "daylight" } },
  eu = { start = { 3, -1, 1, "utc" }, finish = { 10, -1, 1, "utc" } },
  au = { start = { 10, 1, 2, "standard" }, finish = { 4, 1, 3, "daylight" } },
  nz = { start = { 9, -1, 2, "standard" }, finish = { 4, 1, 3, "daylight" } },
}

local function transition(zone, y, spec)
  local month, nth, hour, clock = spec[1], spec[2], spec[3], spec[4]
  local wall = sunday(y, month, nth) * TICKS_PER_DAY + hour * TICKS_PER_HOUR
  if clock == "utc" then return wall end
  local offset = zone.offset + (clock == "daylight" and zone.dst_shift or 0)
  return wall - offset * TICKS_PER_MINUTE
end

--- True when daylight time is in force at the UTC instant `utc`.
function M.is_daylight(zone, utc)
  local rule = rules[zone.rule]
  if not rule then return false end
  local y = year_of(utc + zone.offset * TICKS_PER_MINUTE)
  local s = transition(zone, y, rule.start)
  local f = transition(zone, y, rule.finish)
  if s < f then return utc >= s and utc < f end
  -- Southern hemisphere: daylight time spans the new year.
  return utc >= s or utc < f
end

--- Offset in minutes east of UTC at the UTC instant `utc`.
function M.offset_at(zone, utc)
  return zone.offset + (M.is_daylight(zone, utc) and zone.dst_shift or 0)
end

--- Wall-clock ticks in `zone` for the UTC instant `utc`.
function M.from_utc(zone, utc)
  return utc + M.offset_at(zone, utc) * TICKS_PER_MINUTE
end

--- UTC ticks for a wall-clock time in `zone`.
-- An ambiguous time (clocks going back) is read as standard time; a time in the
-- gap (clocks going forward) does not exist.
-- @return ticks, or nil and a reason
function M.to_utc(zone, wall)
  local as_standard = wall - zone.offset * TICKS_PER_MINUTE
  if not M.is_daylight(zone, as_standard) then return as_standard end
  local as_daylight = wall - (zone.offset + zone.dst_shift) * TICKS_PER_MINUTE
  if M.is_daylight(zone, as_daylight) then return as_daylight end
  return nil, "is not a valid time in '" .. zone.id .. "' (the clocks skip it when daylight time starts)"
end

-- id, offset in minutes east of UTC, daylight rule (nil: none)
local table_of_zones = {
  { "Dateline Standard Time", -720 },
  { "UTC-11", -660 },
  { "Hawaiian Standard Time", -600 },
  { "Alaskan Standard Time", -540, "us" },
  { "Pacific Standard Time", -480, "us" },
  { "US Mountain Standard Time", -420 },
  { "Mountain Standard Time", -420, "us" },
  { "Mountain Standard Time (Mexico)", -420 },
  { "Central Standard Time", -360, "us" },
  { "Central America Standard Time", -360 },
  { "Central Standard Time (Mexico)", -360 },
  { "Canada Central Standard Time", -360 },
  { "Eastern Standard Time", -300, "us" },
  { "US Eastern Standard Time", -300, "us" },
  { "SA Pacific Standard Time", -300 },
  { "Atlantic Standard Time", -240, "us" },
  { "SA Western Standard Time", -240 },
  { "Newfoundland Standard Time", -210, "us" },
  { "E. South America Standard Time", -180 },
  { "Argentina Standard Time", -180 },
  { "SA Eastern Standard Time", -180 },
  { "UTC-02", -120 },
  { "Cape Verde Standard Time", -60 },
  { "UTC", 0 },
  { "GMT Standard Time", 0, "eu" },
  { "Greenwich Standard Time", 0 },
  { "W. Europe Standard Time", 60, "eu" },
  { "Central Europe Standard Time", 60, "eu" },
  { "Central European Standard Time", 60, "eu" },
  { "Romance Standard Time", 60, "eu" },
  { "W. Central Africa Standard Time", 60 },
  { "E. Europe Standard Time", 120, "eu" },
  { "FLE Standard Time", 120, "eu" },
  { "GTB Standard Time", 120, "eu" },
  { "South Africa Standard Time", 120 },
  { "Russian Standard Time", 180 },
  { "Turkey Standard Time", 180 },
  { "Arabic Standard Time", 180 },
  { "Arab Standard Time", 180 },
  { "E. Africa Standard Time", 180 },
  { "Iran Standard Time", 210 },
  { "Arabian Standard Time", 240 },
  { "Afghanistan Standard Time", 270 },
  { "Pakistan Standard Time", 300 },
  { "West Asia Standard Time", 300 },
  { "India Standard Time", 330 },
  { "Sri Lanka Standard Time", 330 },
  { "Nepal Standard Time", 345 },
  { "Bangladesh Standard Time", 360 },
  { "Myanmar Standard Time", 390 },
  { "SE Asia Standard Time", 420 },
  { "China Standard Time", 480 },
  { "Singapore Standard Time", 480 },
  { "Taipei Standard Time", 480 },
  { "W. Australia Standard Time", 480 },
  { "Tokyo Standard Time", 540 },
  { "Korea Standard Time", 540 },
  { "Cen. Australia Standard Time", 570, "au" },
  { "AUS Central Standard Time", 570 },
  { "E. Australia Standard Time", 600 },
  { "AUS Eastern Standard Time", 600, "au" },
  { "Tasmania Standard Time", 600, "au" },
  { "West Pacific Standard Time", 600 },
  { "Central Pacific Standard Time", 660 },
  { "UTC+12", 720 },
  { "New Zealand Standard Time", 720, "nz" },
  { "Tonga Standard Time", 780 },
}

local by_id = {}
local ids = {}
for _, z in ipairs(table_of_zones) do
  local zone = { id = z[1], offset = z[2], rule = z[3], dst_shift = 60 }
  by_id[z[1]:lower()] = zone
  ids[#ids + 1] = z[1]
end
by_id["coordinated universal time"] = by_id["utc"]

--- Find a zone by its Windows id, ignoring letter case.
function M.lookup(id)
  return by_id[id:lower()]
end

--- All known ids, in offset order.
function M.ids()
  return ids
end

return M
