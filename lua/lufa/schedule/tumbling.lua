--- A TumblingWindowTrigger's windows: fixed, contiguous, non-overlapping intervals
-- `[startTime + k·size, startTime + (k+1)·size)` counted from k = 0, each due at its end + delay.
-- Minute and Hour windows have a fixed length; Month windows are calendar months counted from
-- startTime (UTC, its day clamped to the month's length, as ADF's window bounds are).
-- @module lufa.schedule.tumbling
local L = require "lufa.pipeline.lenient"
local runs = require "lufa.runs"

local M = {}

local FREQUENCIES = {"Minute", "Hour", "Month"}
local UNIT = {Minute = 60, Hour = 3600}
local MIN_WINDOW = 15 * 60   -- the service refuses smaller windows
local MAX_CONCURRENCY = 50

local Windows = {}
Windows.__index = Windows

local function days_in_month(y, m)
  local d = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
  if m == 2 and (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then return 29 end
  return d[m]
end

-- startTime + `months` calendar months, in UTC, the day clamped to the target month.
local function add_months(t, months)
  local f = os.date("!*t", math.floor(t))
  local frac = t - math.floor(t)
  local m0 = f.month - 1 + months
  local y, m = f.year + m0 // 12, m0 % 12 + 1
  local d = math.min(f.day, days_in_month(y, m))
  local s = runs.parse_time(string.format("%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, f.hour, f.min, f.sec))
  return s + frac
end

--- The start of window k (k ≥ 0), or nil for k < 0.
function Windows:bound(k)
  if k < 0 then return nil end
  if self.frequency == "Month" then return add_months(self.start, k * self.interval) end
  return self.start + k * self.size
end

--- Window k's bounds `start, end` (epoch seconds), or nil when k < 0 or the window does not end by endTime.
function Windows:window(k)
  local ws, we = self:bound(k), self:bound(k + 1)
  if not ws then return nil end
  if self.end_time and we > self.end_time then return nil end
  return ws, we
end

--- The index of the window that contains `t` (-1 before the first window).
function Windows:index_at(t)
  if t < self.start then return -1 end
  if self.frequency ~= "Month" then return math.floor((t - self.start) / self.size) end
  local f0, f = os.date("!*t", math.floor(self.start)), os.date("!*t", math.floor(t))
  local k = ((f.year - f0.year) * 12 + f.month - f0.month) // self.interval
  while k > 0 and self:bound(k) > t do k = k - 1 end
  while self:bound(k + 1) <= t do k = k + 1 end
  return k
end

--- When window k's run is due (its end + delay), or nil when the window does not exist.
function Windows:due(k)
  local _, we = self:window(k)
  return we and we + self.delay
end

--- The windows due by `now` from index `from` on: a list of indices, oldest first (at most `limit`).
function Windows:windows_due(from, now, limit)
  local list = {}
  local k = math.max(from or 0, 0)
  while (not limit or #list < limit) do
    local due = self:due(k)
    if not due or due > now then break end
    list[#list + 1] = k
    k = k + 1
  end
  return list
end

-- A signed timespan: "-01:00:00" (dependency offsets are negative).
local function signed_timespan(v)
  if type(v) ~= "string" then return nil, "expected a timespan string such as -01:00:00" end
  local neg, rest = v:match("^(%-?)(.*)$")
  local s, why = L.timespan(rest)
  if not s then return nil, why end
  return neg == "-" and -s or s
end

local function problem(list, path, fmt, ...)
  list[#list + 1] = {path = path, severity = "error", message = string.format(fmt, ...)}
end

local function utc_time(tp, key, problems, required)
  local v = L.get(tp, key)
  if v == nil then
    if required then problem(problems, "." .. key, "a TumblingWindowTrigger needs %s (UTC, e.g. 2027-01-04T00:00:00Z)", key) end
    return nil
  end
  local t = type(v) == "string" and runs.parse_time(v)
  if not t then
    problem(problems, "." .. key, "expected an ISO 8601 UTC time such as 2027-01-04T00:00:00Z, got '%s'", tostring(v))
    return nil
  end
  if not v:match("Z$") and not v:match("[+-]00:?00$") then
    problem(problems, "." .. key, "a TumblingWindowTrigger's %s is UTC: write it with Z (got '%s')", key, v)
  end
  return t
end

local function compile_depends(tp, tw, problems)
  local list = L.get(tp, "dependsOn")
  if list == nil then return end
  if not L.is_array(list) then problem(problems, ".dependsOn", "expected an array of dependency references") return end
  for i, d in ipairs(list) do
    local path = string.format(".dependsOn[%d]", i - 1)
    local kind = L.get(d, "type")
    local dep = {}
    local offset, size = L.get(d, "offset"), L.get(d, "size")
    if offset ~= nil then
      local s, why = signed_timespan(offset)
      if not s then problem(problems, path .. ".offset", "%s", why) end
      dep.offset = s
    end
    if size ~= nil then
      local s, why = signed_timespan(size)
      if not s or s <= 0 then problem(problems, path .. ".size", "%s", why or "size must be positive") end
      dep.size = s
    end
    if kind == "SelfDependencyTumblingWindowTriggerReference" then
      dep.kind = "self"
      if not dep.offset or dep.offset >= 0 then
        problem(problems, path .. ".offset", "a self-dependency needs a negative offset (e.g. -01:00:00: the previous window)")
      end
    elseif kind == "TumblingWindowTriggerDependencyReference" then
      dep.kind = "trigger"
      dep.trigger = L.get(L.get(d, "referenceTrigger"), "referenceName")
      if type(dep.trigger) ~= "string" then
        problem(problems, path .. ".referenceTrigger", "a dependency needs referenceTrigger.referenceName")
      end
    else
      problem(problems, path .. ".type", "unknown dependency type '%s' (expected SelfDependencyTumblingWindowTriggerReference " ..
        "or TumblingWindowTriggerDependencyReference)", tostring(kind))
    end
    tw.depends[#tw.depends + 1] = dep
  end
end

--- Compiles a TumblingWindowTrigger's typeProperties.
-- @return windows (nil on errors), problems (paths relative to typeProperties)
function M.compile(tp)
  local problems = {}
  local tw = setmetatable({depends = {}, delay = 0, max_concurrency = 1, retry = {count = 0, interval = 30}}, Windows)
  local freq = L.get(tp, "frequency")
  tw.frequency = L.enum(freq, FREQUENCIES)
  if not tw.frequency then
    problem(problems, ".frequency", "frequency must be Minute, Hour or Month, got '%s'", tostring(freq))
  end
  local interval = L.get(tp, "interval")
  tw.interval = math.tointeger(interval)
  if not tw.interval or tw.interval < 1 then
    problem(problems, ".interval", "interval must be a positive integer, got %s", tostring(interval))
    tw.interval = nil
  end
  if tw.frequency and tw.interval and UNIT[tw.frequency] then
    tw.size = UNIT[tw.frequency] * tw.interval
    if tw.size < MIN_WINDOW then
      problem(problems, ".interval", "a window must be at least 15 minutes long, got %d minute(s)", tw.size // 60)
    end
  end
  tw.start = utc_time(tp, "startTime", problems, true)
  tw.end_time = utc_time(tp, "endTime", problems, false)
  if tw.start and tw.end_time and tw.end_time <= tw.start then
    problem(problems, ".endTime", "endTime must be after startTime")
  end
  local delay = L.get(tp, "delay")
  if delay ~= nil then
    local s, why = L.timespan(delay)
    if not s then problem(problems, ".delay", "%s", why) else tw.delay = s end
  end
  local mc = L.get(tp, "maxConcurrency")
  if mc == nil then
    problem(problems, ".maxConcurrency", "a TumblingWindowTrigger needs maxConcurrency (1-%d)", MAX_CONCURRENCY)
  else
    tw.max_concurrency = math.tointeger(mc)
    if not tw.max_concurrency or tw.max_concurrency < 1 or tw.max_concurrency > MAX_CONCURRENCY then
      problem(problems, ".maxConcurrency", "maxConcurrency must be an integer from 1 to %d, got %s", MAX_CONCURRENCY, tostring(mc))
      tw.max_concurrency = 1
    end
  end
  local retry = L.get(tp, "retryPolicy")
  if retry ~= nil then
    local count, interval_s = L.get(retry, "count"), L.get(retry, "intervalInSeconds")
    if count ~= nil then
      tw.retry.count = math.tointeger(count)
      if not tw.retry.count or tw.retry.count < 0 then
        problem(problems, ".retryPolicy.count", "count must be a non-negative integer, got %s", tostring(count))
        tw.retry.count = 0
      end
    end
    if interval_s ~= nil then
      tw.retry.interval = math.tointeger(interval_s)
      if not tw.retry.interval or tw.retry.interval < 30 or tw.retry.interval > 86400 then
        problem(problems, ".retryPolicy.intervalInSeconds", "intervalInSeconds must be an integer from 30 to 86400, got %s",
          tostring(interval_s))
        tw.retry.interval = 30
      end
    end
  end
  compile_depends(tp, tw, problems)
  if #problems > 0 then return nil, problems end
  return tw, problems
end

return M
