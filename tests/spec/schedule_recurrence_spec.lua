-- ADF ScheduleTrigger recurrences: every test vector of adf-triggers.md §6 (T1–T15) with its exact
-- instants, DST in several zones, next_after from far past startTime agreeing with a step-by-step walk,
-- and the checks of a recurrence with their JSON paths and messages.
local json = require "lufa.json"
local runs = require "lufa.runs"
local recurrence = require "lufa.schedule.recurrence"

local function t(s) return assert(runs.parse_time(s)) end
local function iso(x) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(x)) end

local function compile(rec)
  local c, problems = recurrence.compile(rec)
  assert.is_not_nil(c, problems and problems[1] and (problems[1].path .. ": " .. problems[1].message))
  return c
end

-- The first n fire times when the scheduler's "now" is `now` (default: just before startTime).
local function fires(rec, n, now)
  local c = compile(rec)
  local out = {}
  for i, x in ipairs(c:next_n(now and t(now) or c.start - 1, n)) do out[i] = iso(x) end
  return out
end

local function problems_of(rec)
  local out = {}
  for _, p in ipairs(recurrence.validate(rec)) do out[#out + 1] = p.severity .. " " .. p.path .. ": " .. p.message end
  table.sort(out)
  return out
end

describe("the test vectors", function()
  it("T1: a Minute grid anchored on startTime, not on :00", function()
    assert.are.same({"2027-01-04T08:07:00Z", "2027-01-04T08:22:00Z", "2027-01-04T08:37:00Z", "2027-01-04T08:52:00Z"},
      fires({frequency = "Minute", interval = 15, startTime = "2027-01-04T08:07:00Z", timeZone = "UTC"}, 4))
  end)

  it("T2: a daily wall time skipped by spring-forward fires at the pre-transition offset's instant", function()
    -- ⚠ undocumented; lufa's default. The alternative reading skips 03-14.
    assert.are.same({"2027-03-12T10:30:00Z", "2027-03-13T10:30:00Z", "2027-03-14T10:30:00Z", "2027-03-15T09:30:00Z",
      "2027-03-16T09:30:00Z"},
      fires({frequency = "Day", interval = 1, startTime = "2027-03-12T02:30:00", timeZone = "Pacific Standard Time"}, 5))
  end)

  it("T3: the wall time is kept across fall-back", function()
    assert.are.same({"2027-11-05T09:30:00Z", "2027-11-06T09:30:00Z", "2027-11-07T10:30:00Z", "2027-11-08T10:30:00Z"},
      fires({frequency = "Day", interval = 1, startTime = "2027-11-05T02:30:00", timeZone = "Pacific Standard Time"}, 4))
  end)

  it("T4: a repeated wall time fires once, at its first occurrence", function()
    -- ⚠ undocumented; 01:30 on 11-07 is both 08:30Z and 09:30Z: lufa fires at 08:30Z only
    assert.are.same({"2027-11-06T08:30:00Z", "2027-11-07T08:30:00Z", "2027-11-08T09:30:00Z"},
      fires({frequency = "Day", interval = 1, startTime = "2027-11-06T01:30:00", timeZone = "Pacific Standard Time"}, 3))
  end)

  it("T5: the last Friday of every month", function()
    assert.are.same({"2027-01-29T06:00:00Z", "2027-02-26T06:00:00Z", "2027-03-26T06:00:00Z", "2027-04-30T06:00:00Z",
      "2027-05-28T06:00:00Z"},
      fires({frequency = "Month", interval = 1, startTime = "2027-01-01T00:00:00Z",
        schedule = {monthlyOccurrences = {{day = "Friday", occurrence = -1}}, hours = {6}, minutes = {0}}}, 5))
  end)

  it("T6: monthDays 31 skips the months without a 31st", function()
    assert.are.same({"2027-01-31T12:00:00Z", "2027-03-31T12:00:00Z", "2027-05-31T12:00:00Z", "2027-07-31T12:00:00Z",
      "2027-08-31T12:00:00Z"},
      fires({frequency = "Month", interval = 1, startTime = "2027-01-15T00:00:00Z",
        schedule = {monthDays = {31}, hours = {12}, minutes = {0}}}, 5))
  end)

  it("T7: monthDays 1 and -1 (the last day)", function()
    assert.are.same({"2027-02-28T06:00:00Z", "2027-03-01T06:00:00Z", "2027-03-31T06:00:00Z", "2027-04-01T06:00:00Z",
      "2027-04-30T06:00:00Z"},
      fires({frequency = "Month", interval = 1, startTime = "2027-02-10T00:00:00Z",
        schedule = {monthDays = {1, -1}, hours = {6}, minutes = {0}}}, 5))
  end)

  it("T8: hours × minutes is a cross product; two triggers give 09:00 and 17:30", function()
    assert.are.same({"2027-01-04T09:00:00Z", "2027-01-04T09:30:00Z", "2027-01-04T17:00:00Z", "2027-01-04T17:30:00Z",
      "2027-01-06T09:00:00Z"},
      fires({frequency = "Week", interval = 1, startTime = "2027-01-04T00:00:00Z",
        schedule = {weekDays = {"Monday", "Wednesday", "Friday"}, hours = {9, 17}, minutes = {0, 30}}}, 5))
    local days = {"Monday", "Wednesday", "Friday"}
    local a = fires({frequency = "Week", startTime = "2027-01-04T00:00:00Z",
      schedule = {weekDays = days, hours = {9}, minutes = {0}}}, 3)
    local b = fires({frequency = "Week", startTime = "2027-01-04T00:00:00Z",
      schedule = {weekDays = days, hours = {17}, minutes = {30}}}, 3)
    local both = {}
    for _, x in ipairs(a) do both[#both + 1] = x end
    for _, x in ipairs(b) do both[#both + 1] = x end
    table.sort(both)
    assert.are.same({"2027-01-04T09:00:00Z", "2027-01-04T17:30:00Z", "2027-01-06T09:00:00Z", "2027-01-06T17:30:00Z",
      "2027-01-08T09:00:00Z"}, {table.unpack(both, 1, 5)})
  end)

  it("T9: schedule instants before startTime on the first day are dropped", function()
    assert.are.same({"2027-01-04T17:15:00Z", "2027-01-04T17:45:00Z", "2027-01-05T05:15:00Z", "2027-01-05T05:45:00Z",
      "2027-01-05T17:15:00Z"},
      fires({frequency = "Day", interval = 1, startTime = "2027-01-04T10:00:00Z",
        schedule = {hours = {5, 17}, minutes = {15, 45}}}, 5))
  end)

  it("T10: endTime is exclusive", function()
    -- ⚠ the inclusive reading would add 09:00
    local rec = {frequency = "Minute", interval = 15, startTime = "2027-01-04T08:00:00Z", endTime = "2027-01-04T09:00:00Z"}
    assert.are.same({"2027-01-04T08:00:00Z", "2027-01-04T08:15:00Z", "2027-01-04T08:30:00Z", "2027-01-04T08:45:00Z"},
      fires(rec, 10))
    local c = compile(rec)
    assert.is_nil(c:next_after(t"2027-01-04T08:45:00Z"))
    assert.are.equal(t"2027-01-04T09:00:00Z", c.end_time)
  end)

  it("T11: a past startTime keeps its grid and runs none of the missed times", function()
    assert.are.same({"2027-03-05T14:00:00Z", "2027-03-07T14:00:00Z", "2027-03-09T14:00:00Z"},
      fires({frequency = "Day", interval = 2, startTime = "2027-03-01T14:00:00Z"}, 3, "2027-03-04T13:00:00Z"))
    -- the documentation's own case
    assert.are.same({"2017-04-09T14:00:00Z", "2017-04-11T14:00:00Z", "2017-04-13T14:00:00Z"},
      fires({frequency = "Day", interval = 2, startTime = "2017-04-07T14:00:00Z"}, 3, "2017-04-08T13:00:00Z"))
  end)

  it("T12: Week/2 periods count from the (Monday) week holding startTime", function()
    -- ⚠ lufa's reading; the alternative (first match, then +14 days) gives 01-12, 01-26, 02-09
    assert.are.same({"2027-01-19T08:00:00Z", "2027-02-02T08:00:00Z", "2027-02-16T08:00:00Z"},
      fires({frequency = "Week", interval = 2, startTime = "2027-01-06T00:00:00Z",
        schedule = {weekDays = {"Tuesday"}, hours = {8}, minutes = {0}}}, 3))
  end)

  it("T13: the fifth Friday only in months that have one", function()
    assert.are.same({"2027-01-29T05:00:00Z", "2027-04-30T05:00:00Z", "2027-07-30T05:00:00Z", "2027-10-29T05:00:00Z",
      "2027-12-31T05:00:00Z"},
      fires({frequency = "Month", interval = 1, startTime = "2027-01-01T00:00:00Z",
        schedule = {monthlyOccurrences = {{day = "Friday", occurrence = 5}}, hours = {5}, minutes = {0}}}, 5))
  end)

  it("T14: Month without a schedule clamps to the month's end, counted from startTime", function()
    -- ⚠ the alternative skips short months
    assert.are.same({"2027-01-31T09:00:00Z", "2027-02-28T09:00:00Z", "2027-03-31T09:00:00Z", "2027-04-30T09:00:00Z"},
      fires({frequency = "Month", interval = 1, startTime = "2027-01-31T09:00:00Z"}, 4))
    assert.are.same({"2028-01-31T09:00:00Z", "2028-02-29T09:00:00Z", "2028-03-31T09:00:00Z"},
      fires({frequency = "Month", interval = 1, startTime = "2027-01-31T09:00:00Z"}, 3, "2028-01-01T00:00:00Z"))
  end)

  it("T15: minutes on an hourly frequency", function()
    assert.are.same({"2027-01-04T08:30:00Z", "2027-01-04T09:00:00Z", "2027-01-04T09:30:00Z", "2027-01-04T10:00:00Z"},
      fires({frequency = "Hour", interval = 1, startTime = "2027-01-04T08:10:00Z", schedule = {minutes = {0, 30}}}, 4))
  end)
end)

describe("a recurrence in a zone with DST", function()
  it("keeps the wall time of a daily schedule in W. Europe Standard Time, both directions", function()
    local rec = {frequency = "Day", interval = 1, startTime = "2027-03-26T00:00:00", timeZone = "W. Europe Standard Time",
      schedule = {hours = {2}, minutes = {30}}}
    -- 2027-03-28 02:30 does not exist in Berlin: it fires at 01:30Z (the CET reading, 03:30 CEST)
    assert.are.same({"2027-03-26T01:30:00Z", "2027-03-27T01:30:00Z", "2027-03-28T01:30:00Z", "2027-03-29T00:30:00Z"},
      fires(rec, 4))
    rec.startTime = "2027-10-29T00:00:00"
    -- 2027-10-31 02:30 happens twice (00:30Z CEST, 01:30Z CET): once, the first
    assert.are.same({"2027-10-29T00:30:00Z", "2027-10-30T00:30:00Z", "2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"},
      fires(rec, 4))
  end)

  it("steps an Hour frequency without a schedule in elapsed time (23 fires on the spring-forward day)", function()
    local c = compile{frequency = "Hour", interval = 1, startTime = "2027-03-14T00:00:00",
      timeZone = "Pacific Standard Time"}
    assert.are.equal(t"2027-03-14T08:00:00Z", c.start)
    local list = c:next_n(c.start - 1, 30)
    local n = 0
    for _, x in ipairs(list) do if x < t"2027-03-15T07:00:00Z" then n = n + 1 end end   -- local midnight to midnight
    assert.are.equal(23, n)
    for i = 2, #list do assert.are.equal(3600, list[i] - list[i - 1]) end
  end)

  it("fires an hourly minutes schedule at each wall-clock time once across fall-back", function()
    local c = compile{frequency = "Hour", interval = 1, startTime = "2027-11-07T00:00:00",
      timeZone = "Pacific Standard Time", schedule = {minutes = {0, 30}}}
    local out = {}
    for i, x in ipairs(c:next_n(c.start - 1, 6)) do out[i] = iso(x) end
    -- 00:00, 00:30 PDT, 01:00, 01:30 PDT (the repeated 01:00/01:30 PST are not fired again), 02:00 PST, 02:30 PST
    assert.are.same({"2027-11-07T07:00:00Z", "2027-11-07T07:30:00Z", "2027-11-07T08:00:00Z", "2027-11-07T08:30:00Z",
      "2027-11-07T10:00:00Z", "2027-11-07T10:30:00Z"}, out)
  end)

  it("works in the southern hemisphere (AUS Eastern Standard Time)", function()
    -- 2027-04-04: 03:00 AEDT → 02:00 AEST; 2027-10-03: 02:00 AEST → 03:00 AEDT
    assert.are.same({"2027-04-02T22:00:00Z", "2027-04-03T23:00:00Z", "2027-04-04T23:00:00Z"},
      fires({frequency = "Day", startTime = "2027-04-03T09:00:00", timeZone = "AUS Eastern Standard Time"}, 3))
    assert.are.same({"2027-10-01T16:30:00Z", "2027-10-02T16:30:00Z", "2027-10-03T15:30:00Z"},
      fires({frequency = "Day", startTime = "2027-10-02T02:30:00", timeZone = "Australia/Sydney"}, 3))
  end)

  it("handles a half-hour zone (India Standard Time) and Adelaide's DST", function()
    assert.are.same({"2027-01-04T02:30:00Z", "2027-01-05T02:30:00Z"},
      fires({frequency = "Day", startTime = "2027-01-04T08:00:00", timeZone = "India Standard Time"}, 2))
    -- the last Saturdays are January 30 (ACDT, +10:30) and July 31 (ACST, +09:30)
    assert.are.same({"2027-01-29T20:30:00Z", "2027-07-30T21:30:00Z"},
      fires({frequency = "Month", interval = 6, startTime = "2027-01-01T00:00:00", timeZone = "Australia/Adelaide",
        schedule = {monthlyOccurrences = {{day = "Saturday", occurrence = -1}}, hours = {7}, minutes = {0}}}, 2))
  end)

  it("agrees with a minute-by-minute check across fall-back in New Zealand (UTC+13 in summer)", function()
    local z = require("lufa.schedule.zone").get("Pacific/Auckland")
    local c = compile{frequency = "Day", startTime = "2027-04-01T00:00:00", timeZone = "New Zealand Standard Time",
      schedule = {hours = {2, 3, 12}, minutes = {0, 30}}}
    local walked = {}
    for x = t"2027-03-31T00:00:00Z", t"2027-04-10T00:00:00Z", 60 do
      local l = z:to_local(x)
      local wanted = (l.hour == 2 or l.hour == 3 or l.hour == 12) and (l.min == 0 or l.min == 30)
      if wanted and x >= c.start and z:to_utc(l) == x then walked[#walked + 1] = iso(x) end   -- first occurrences
    end
    local got = {}
    for i, x in ipairs(c:next_n(t"2027-03-31T00:00:00Z", #walked)) do got[i] = iso(x) end
    -- six a day (04-04's 02:00 and 02:30 once each, though they happen twice) for 04-01..04-09, five on 04-10
    assert.are.equal(9 * 6 + 5, #walked)
    assert.are.same(walked, got)
  end)

  it("uses the footer rule in 2040", function()
    assert.are.same({"2040-03-10T10:30:00Z", "2040-03-11T10:30:00Z", "2040-03-12T09:30:00Z"},
      fires({frequency = "Day", startTime = "2040-03-10T02:30:00", timeZone = "Pacific Standard Time"}, 3))
  end)
end)

describe("next_after", function()
  -- a step-by-step walk from startTime must agree with next_after called far past startTime
  local CASES = {
    {frequency = "Minute", interval = 7, startTime = "2027-01-04T08:07:13Z"},
    {frequency = "Hour", interval = 5, startTime = "2027-03-01T00:00:00", timeZone = "Pacific Standard Time"},
    {frequency = "Day", interval = 3, startTime = "2027-03-01T02:30:00", timeZone = "Pacific Standard Time"},
    {frequency = "Week", interval = 2, startTime = "2027-01-06T01:30:00", timeZone = "W. Europe Standard Time"},
    {frequency = "Month", interval = 1, startTime = "2027-01-31T02:30:00", timeZone = "Europe/Berlin"},
    {frequency = "Week", interval = 3, startTime = "2027-01-06T00:00:00", timeZone = "Australia/Sydney",
      schedule = {weekDays = {"Sunday", "Thursday"}, hours = {2, 14}, minutes = {30}}},
    {frequency = "Month", interval = 2, startTime = "2027-02-10T00:00:00", timeZone = "India Standard Time",
      schedule = {monthDays = {-1, 15}, monthlyOccurrences = {{day = "Monday"}}, hours = {6}}},
    {frequency = "Hour", interval = 3, startTime = "2027-03-13T00:10:00", timeZone = "Pacific Standard Time",
      schedule = {minutes = {0, 45}}},
  }
  for i, rec in ipairs(CASES) do
    it("agrees with a walk from startTime (" .. i .. ": " .. rec.frequency .. ")", function()
      local c = compile(rec)
      local walk = c:next_n(c.start - 1, 400)
      assert.are.equal(400, #walk)
      for j = 2, #walk do assert.is_true(walk[j] > walk[j - 1]) end
      local seed = 12345
      for _ = 1, 200 do
        seed = (seed * 1103515245 + 12345) % 2147483648
        local j = seed % 399 + 1
        local x = walk[j] + (walk[j + 1] - walk[j]) * ((seed % 1000) / 1000)   -- in [walk[j], walk[j+1])
        assert.are.equal(iso(walk[j + 1]), iso(c:next_after(x)), "after " .. iso(x))
      end
    end)
  end

  it("jumps far past startTime without walking there", function()
    local c = compile{frequency = "Minute", interval = 1, startTime = "2027-01-04T08:00:00Z"}
    assert.are.equal("2047-01-04T08:00:00Z", iso(c:next_after(t"2047-01-04T07:59:30Z")))
    local m = compile{frequency = "Month", interval = 7, startTime = "2027-01-31T09:00:00Z"}
    -- every 7th month from January 2027: 2047-01 is month 240, the next multiple of 7 is 245 (June, clamped to the 30th)
    assert.are.equal("2047-06-30T09:00:00Z", iso(m:next_after(t"2047-01-01T00:00:00Z")))
  end)

  it("has no fire time after the end of time, and the first one after its beginning", function()
    local c = compile{frequency = "Hour", startTime = "2027-01-04T08:00:00Z"}
    assert.is_nil(c:next_after(math.huge))
    assert.is_nil(c:next_after(0 / 0))
    assert.are.equal(c.start, c:next_after(-math.huge))
  end)

  it("returns nil for a schedule that never matches, after a bounded search", function()
    local c = compile{frequency = "Month", interval = 12, startTime = "2027-02-01T00:00:00Z",
      schedule = {monthDays = {30}, hours = {0}}}
    assert.is_nil(c:next_after(t"2027-01-01T00:00:00Z"))
  end)

  it("exposes the compiled fields", function()
    local c = compile{frequency = "week", interval = 2, startTime = "2027-01-06T00:00:00", timeZone = "Tokyo Standard Time",
      endTime = "2027-06-01T00:00:00"}
    assert.are.same({"Week", 2, "Asia/Tokyo", "Tokyo Standard Time"}, {c.frequency, c.interval, c.zone.name, c.zone.windows})
    assert.are.equal(t"2027-01-05T15:00:00Z", c.start)
    assert.are.equal(t"2027-05-31T15:00:00Z", c.end_time)
    assert.are.equal("Etc/UTC", compile{frequency = "Day", startTime = "2027-01-06T00:00:00Z"}.zone.name)
  end)

  it("reads property names in any letter case (as ADF does) and JSON input", function()
    local rec = json.decode([[{"Frequency": "month", "INTERVAL": 1, "starttime": "2027-01-01T00:00:00Z",
      "Schedule": {"MonthlyOccurrences": [{"Day": "friday", "Occurrence": -1}], "Hours": [6], "minutes": [0]}}]])
    assert.are.same({"2027-01-29T06:00:00Z", "2027-02-26T06:00:00Z"}, fires(rec, 2))
  end)
end)

describe("recurrence.validate", function()
  local START = "2027-01-04T08:00:00Z"

  it("accepts a good recurrence", function()
    assert.are.same({}, problems_of{frequency = "Day", interval = 1, startTime = START, timeZone = "UTC"})
  end)

  it("names the allowed frequencies", function()
    assert.are.same({"error .frequency: unknown frequency 'Fortnightly' (expected one of Minute, Hour, Day, Week, Month)"},
      problems_of{frequency = "Fortnightly", startTime = START})
    assert.are.same({"error .frequency: unknown frequency 'Year' (expected one of Minute, Hour, Day, Week, Month)"},
      problems_of{frequency = "Year", startTime = START})
    assert.are.same({"error .frequency: a recurrence needs a frequency (one of Minute, Hour, Day, Week, Month)"},
      problems_of{startTime = START})
  end)

  it("wants a positive integer interval", function()
    for _, v in ipairs{-3, 0, 1.5, 1e300} do
      assert.are.same({"error .interval: interval must be a positive integer (how many days between runs), got " ..
        tostring(v)}, problems_of{frequency = "Day", interval = v, startTime = START})
    end
    assert.are.same({"error .interval: interval must be a positive integer (how many hours between runs), got the " ..
      "string '2'"}, problems_of{frequency = "Hour", interval = "2", startTime = START})
    assert.are.same({"warning .interval: interval 5000 is above ADF's documented limit of 1000"},
      problems_of{frequency = "Minute", interval = 5000, startTime = START})
  end)

  it("wants a startTime that parses and an endTime after it", function()
    assert.are.same({"error .startTime: a recurrence needs a startTime (e.g. 2027-01-04T08:00:00Z)"},
      problems_of{frequency = "Day"})
    assert.are.same({"error .startTime: startTime 'tomorrow' is not a date-time (expected yyyy-MM-ddTHH:mm:ss, with a Z " ..
      "when timeZone is UTC, e.g. 2027-01-04T08:00:00Z)"}, problems_of{frequency = "Day", startTime = "tomorrow"})
    assert.are.same({"error .startTime: startTime '2027-02-30T08:00:00Z' is not a date-time (expected " ..
      "yyyy-MM-ddTHH:mm:ss, with a Z when timeZone is UTC, e.g. 2027-01-04T08:00:00Z)"},
      problems_of{frequency = "Day", startTime = "2027-02-30T08:00:00Z"})
    assert.are.same({"error .endTime: endTime 2027-01-04T08:00:00Z is not after startTime 2027-01-04T08:00:00Z"},
      problems_of{frequency = "Day", startTime = START, endTime = START})
    assert.are.same({}, problems_of{frequency = "Day", startTime = "2027-01-04T08:00:00+01:00"})
    assert.are.equal(t"2027-01-04T07:00:00Z", compile{frequency = "Day", startTime = "2027-01-04T08:00:00+01:00"}.start)
  end)

  it("says what ADF expects when startTime has an offset but the zone is not UTC", function()
    assert.are.same({"error .startTime: startTime '2027-03-12T02:30:00Z' has a UTC offset, but with timeZone " ..
      "'Pacific Standard Time' ADF expects the wall-clock time in that zone without 'Z' or an offset " ..
      "(e.g. 2027-03-12T02:30:00)"},
      problems_of{frequency = "Day", startTime = "2027-03-12T02:30:00Z", timeZone = "Pacific Standard Time"})
    assert.are.same({"error .endTime: endTime '2027-04-12T02:30:00-08:00' has a UTC offset, but with timeZone " ..
      "'Pacific Standard Time' ADF expects the wall-clock time in that zone without 'Z' or an offset " ..
      "(e.g. 2027-04-12T02:30:00)"},
      problems_of{frequency = "Day", startTime = "2027-03-12T02:30:00", endTime = "2027-04-12T02:30:00-08:00",
        timeZone = "Pacific Standard Time"})
  end)

  it("warns about a UTC startTime without its Z (ADF refuses it; lufa reads it as UTC)", function()
    assert.are.same({"warning .startTime: startTime '2027-01-04T08:00:00' has no 'Z': with timeZone UTC ADF expects " ..
      "yyyy-MM-ddTHH:mm:ssZ (lufa reads it as UTC)"}, problems_of{frequency = "Day", startTime = "2027-01-04T08:00:00"})
    assert.are.equal(t"2027-01-04T08:00:00Z", compile{frequency = "Day", startTime = "2027-01-04T08:00:00"}.start)
  end)

  it("rejects an unknown zone", function()
    assert.are.same({"error .timeZone: unknown time zone 'Pacific Time' (expected an IANA name such as Europe/Berlin " ..
      "or a Windows name such as W. Europe Standard Time)"},
      problems_of{frequency = "Day", startTime = "2027-03-12T02:30:00", timeZone = "Pacific Time"})
  end)

  it("allows weekDays only with Week and month days only with Month", function()
    assert.are.same({"error .schedule.weekDays: schedule.weekDays needs frequency Week (this recurrence's frequency is Day)"},
      problems_of{frequency = "Day", startTime = START, schedule = {weekDays = {"Monday"}}})
    assert.are.same({"error .schedule.monthDays: schedule.monthDays needs frequency Month (this recurrence's frequency " ..
      "is Week)", "error .schedule.monthlyOccurrences: schedule.monthlyOccurrences needs frequency Month (this " ..
      "recurrence's frequency is Hour)"},
      {problems_of{frequency = "Week", startTime = START, schedule = {monthDays = {1}}}[1],
       problems_of{frequency = "Hour", startTime = START, schedule = {monthlyOccurrences = {{day = "Monday"}}}}[1]})
    assert.are.same({}, problems_of{frequency = "Minute", startTime = START, schedule = {hours = {1}, minutes = {2}}})
  end)

  it("checks every schedule value with its index", function()
    assert.are.same({
      "error .schedule.hours[1]: hours must be whole numbers from 0 to 23, got 24",
      "error .schedule.minutes[0]: minutes must be whole numbers from 0 to 59, got 60",
      "error .schedule.minutes[2]: minutes must be whole numbers from 0 to 59, got 1.5",
    }, problems_of{frequency = "Day", startTime = START, schedule = {hours = {1, 24}, minutes = {60, 0, 1.5}}})
    assert.are.same({
      "error .schedule.monthDays[0]: monthDays must be 1 to 31, or -31 to -1 counting from the month's end " ..
        "(-1 = the last day), got 0",
      "error .schedule.monthDays[2]: monthDays must be 1 to 31, or -31 to -1 counting from the month's end " ..
        "(-1 = the last day), got -32",
      "error .schedule.monthlyOccurrences[0].occurrence: occurrence must be 1 to 5, or -5 to -1 counting from the " ..
        "month's end (-1 = the last), got 6",
      "error .schedule.monthlyOccurrences[1].day: unknown weekday 'Fri' (expected Sunday, Monday, Tuesday, Wednesday, " ..
        "Thursday, Friday, Saturday)",
      "error .schedule.monthlyOccurrences[2]: a monthly occurrence is an object {\"day\": \"Friday\", \"occurrence\": -1}",
    }, problems_of{frequency = "Month", startTime = START, schedule = {monthDays = {0, 31, -32},
      monthlyOccurrences = {{day = "Friday", occurrence = 6}, {day = "Fri"}, "Friday"}}})
    assert.are.same({"error .schedule.weekDays[1]: unknown weekday 'Funday' (expected Sunday, Monday, Tuesday, " ..
      "Wednesday, Thursday, Friday, Saturday)"},
      problems_of{frequency = "Week", startTime = START, schedule = {weekDays = {"monday", "Funday"}}})
  end)

  it("rejects empty arrays, non-arrays and unknown schedule fields", function()
    assert.are.same({"error .schedule.hours: schedule.hours is empty (leave it out instead)"},
      problems_of{frequency = "Day", startTime = START, schedule = {hours = {}}})
    assert.are.same({"error .schedule.hours: schedule.hours is empty (leave it out instead)"},
      problems_of(json.decode('{"frequency": "Day", "startTime": "' .. START .. '", "schedule": {"hours": []}}')))
    assert.are.same({"error .schedule.minutes: schedule.minutes must be an array"},
      problems_of{frequency = "Day", startTime = START, schedule = {minutes = 5}})
    assert.are.same({"error .schedule.seconds: unknown schedule field 'seconds' (known: minutes, hours, weekDays, " ..
      "monthDays, monthlyOccurrences)"}, problems_of{frequency = "Day", startTime = START, schedule = {seconds = {0}}})
    assert.are.same({"error .schedule: schedule must be an object with minutes, hours, weekDays, monthDays or " ..
      "monthlyOccurrences"}, problems_of{frequency = "Day", startTime = START, schedule = "daily"})
    assert.are.same({"warning .frequncy: unknown recurrence field 'frequncy' (known: frequency, interval, startTime, " ..
      "endTime, timeZone, schedule)"}, {problems_of{frequency = "Day", frequncy = "Day", startTime = START}[1]})
    assert.are.same({"error : a recurrence must be an object with frequency, interval and startTime"}, problems_of("Day"))
  end)

  it("makes compile return nil on errors and the compiled recurrence with warnings", function()
    local c, problems = recurrence.compile{frequency = "Fortnightly", interval = -3, startTime = START}
    assert.is_nil(c)
    assert.are.equal(2, #problems)
    c, problems = recurrence.compile{frequency = "Day", interval = 2000, startTime = START}
    assert.is_not_nil(c)
    assert.are.equal("warning", problems[1].severity)
  end)
end)
