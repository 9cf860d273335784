-- Cron expressions: fields, lists, ranges, steps, names, macros, the optional seconds field, Vixie's
-- day-of-month OR day-of-week rule, errors naming the field and token, and fire times across DST in
-- Pacific time and Berlin (a skipped time fires once at the change, a repeated one once).
local runs = require "lufa.runs"
local cron = require "lufa.schedule.cron"
local zone = require "lufa.schedule.zone"

local function t(s) return assert(runs.parse_time(s)) end
local function iso(x) return x and os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(x)) end

local function fires(expr, from, n, zname)
  local c = assert(cron.parse(expr))
  local z = zname and assert(zone.get(zname))
  local out = {}
  for i, x in ipairs(c:next_n(t(from), n, z)) do out[i] = iso(x) end
  return out
end

describe("cron.parse", function()
  it("keeps the expression's text", function()
    assert.are.equal("30 2 * * *", assert(cron.parse("30 2 * * *")).expr)
    assert.are.equal("@daily", assert(cron.parse("@daily")).expr)
  end)

  it("explains what is wrong, naming the field and the token", function()
    local cases = {
      ["*/0 * * * *"] = "cron '*/0 * * * *': minute field: step must be positive",
      ["61 * * * *"] = "cron '61 * * * *': minute field: '61' is out of range (0-59)",
      ["0 24 * * *"] = "cron '0 24 * * *': hour field: '24' is out of range (0-23)",
      ["0 0 0 * *"] = "cron '0 0 0 * *': day-of-month field: '0' is out of range (1-31)",
      ["0 0 * 13 *"] = "cron '0 0 * 13 *': month field: '13' is out of range (1-12)",
      ["0 0 * * 8"] = "cron '0 0 * * 8': day-of-week field: '8' is out of range (0-7)",
      ["0 0 * foo *"] = "cron '0 0 * foo *': month field: 'foo' is neither a number (1-12) nor a name (jan, feb, " ..
        "mar, apr, may, jun, jul, aug, sep, oct, nov, dec)",
      ["0 0 * * funday"] = "cron '0 0 * * funday': day-of-week field: 'funday' is neither a number (0-7) nor a name " ..
        "(sun, mon, tue, wed, thu, fri, sat)",
      ["jan * * * *"] = "cron 'jan * * * *': minute field: 'jan' is not a number (0-59)",
      ["10-5 * * * *"] = "cron '10-5 * * * *': minute field: range '10-5' is backwards",
      ["1,,2 * * * *"] = "cron '1,,2 * * * *': minute field: empty element in the list '1,,2'",
      ["*/x * * * *"] = "cron '*/x * * * *': minute field: step 'x' is not a number",
      ["0 0 ? * *"] = "cron '0 0 ? * *': day-of-month field: '?' is not a number (1-31)",
      ["0 0 L * *"] = "cron '0 0 L * *': day-of-month field: 'L' is not a number (1-31)",
      ["* * * *"] = "cron '* * * *': expected 5 fields (minute hour day-of-month month day-of-week), or 6 with " ..
        "seconds first; got 4",
      ["* * * * * * *"] = "cron '* * * * * * *': expected 5 fields (minute hour day-of-month month day-of-week), or " ..
        "6 with seconds first; got 7",
      ["@often"] = "cron '@often': unknown macro (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, " ..
        "@hourly)",
      ["@reboot"] = "cron '@reboot': unknown macro (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, " ..
        "@hourly)",
      ["0 0 30 2 *"] = "cron '0 0 30 2 *': day-of-month and month fields never meet (no such date)",
      ["0 0 31 4,6,9,11 *"] = "cron '0 0 31 4,6,9,11 *': day-of-month and month fields never meet (no such date)",
      ["60 * * * * *"] = "cron '60 * * * * *': second field: '60' is out of range (0-59)",
    }
    for expr, why in pairs(cases) do
      assert.are.same({nil, why}, {cron.parse(expr)})
    end
    assert.are.same({nil, "a cron expression must be a string"}, {cron.parse(5)})
  end)

  it("accepts February 29 (a leap day happens)", function()
    assert.are.same({"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}, fires("0 0 29 2 *", "2027-01-01T00:00:00Z", 2))
  end)
end)

describe("cron fields", function()
  it("take lists, ranges and steps", function()
    assert.are.same({"2027-01-04T08:00:00Z", "2027-01-04T08:15:00Z", "2027-01-04T08:30:00Z", "2027-01-04T08:45:00Z",
      "2027-01-04T09:00:00Z"}, fires("*/15 * * * *", "2027-01-04T07:59:59Z", 5))
    assert.are.same({"2027-01-04T01:05:00Z", "2027-01-04T03:05:00Z", "2027-01-04T05:05:00Z", "2027-01-04T07:05:00Z",
      "2027-01-04T09:05:00Z", "2027-01-05T01:05:00Z"}, fires("5 1-10/2 * * *", "2027-01-04T00:00:00Z", 6))
    assert.are.same({"2027-01-04T00:50:00Z", "2027-01-04T00:55:00Z", "2027-01-04T01:50:00Z"},
      fires("50/5 * * * *", "2027-01-04T00:00:00Z", 3))
    assert.are.same({"2027-01-04T00:01:00Z", "2027-01-04T00:02:00Z", "2027-01-04T00:07:00Z", "2027-01-04T00:30:00Z",
      "2027-01-04T00:45:00Z", "2027-01-04T01:01:00Z"}, fires("1,2,7,30-59/15 * * * *", "2027-01-04T00:00:00Z", 6))
  end)

  it("take month and weekday names in any case, and 7 for Sunday", function()
    assert.are.same({"2027-01-04T09:00:00Z", "2027-01-05T09:00:00Z", "2027-01-08T09:00:00Z", "2027-01-11T09:00:00Z"},
      fires("0 9 * * Mon-TUE,fri", "2027-01-01T12:00:00Z", 4))
    assert.are.same({"2027-01-03T09:00:00Z", "2027-01-10T09:00:00Z"}, fires("0 9 * * 7", "2027-01-01T00:00:00Z", 2))
    assert.are.same(fires("0 9 * * 0", "2027-01-01T00:00:00Z", 4), fires("0 9 * * sun", "2027-01-01T00:00:00Z", 4))
    assert.are.same({"2027-01-01T09:00:00Z", "2027-01-02T09:00:00Z", "2027-01-03T09:00:00Z", "2027-01-08T09:00:00Z"},
      fires("0 9 * * 5-7", "2027-01-01T00:00:00Z", 4))
    assert.are.same({"2027-06-01T00:00:00Z", "2027-12-01T00:00:00Z", "2028-06-01T00:00:00Z"},
      fires("0 0 1 JUN,dec *", "2027-01-01T00:00:00Z", 3))
  end)

  it("have macros", function()
    local from = "2027-01-01T00:00:00Z"
    assert.are.same({"2027-01-01T01:00:00Z", "2027-01-01T02:00:00Z"}, fires("@hourly", from, 2))
    assert.are.same({"2027-01-02T00:00:00Z", "2027-01-03T00:00:00Z"}, fires("@daily", from, 2))
    assert.are.same(fires("@daily", from, 3), fires("@midnight", from, 3))
    assert.are.same({"2027-01-03T00:00:00Z", "2027-01-10T00:00:00Z"}, fires("@weekly", from, 2))   -- Sundays
    assert.are.same({"2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z"}, fires("@monthly", from, 2))
    assert.are.same({"2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"}, fires("@yearly", from, 2))
    assert.are.same(fires("@yearly", from, 2), fires("@ANNUALLY", from, 2))
  end)

  it("may start with a seconds field", function()
    assert.are.same({"2027-01-04T00:00:15Z", "2027-01-04T00:00:30Z", "2027-01-04T00:00:45Z", "2027-01-04T00:01:15Z"},
      fires("15-45/15 * * * * *", "2027-01-04T00:00:00Z", 4))
    assert.are.same({"2027-01-04T02:30:10Z"}, fires("10 30 2 * * *", "2027-01-04T00:00:00Z", 1))
  end)

  it("match a day when either day field matches if both are restricted (Vixie)", function()
    -- the 1st, the 15th and every Monday of January 2027 (Mondays: 4, 11, 18, 25)
    assert.are.same({"2027-01-04T00:00:00Z", "2027-01-11T00:00:00Z", "2027-01-15T00:00:00Z", "2027-01-18T00:00:00Z",
      "2027-01-25T00:00:00Z", "2027-02-01T00:00:00Z"}, fires("0 0 1,15 * mon", "2027-01-01T00:00:00Z", 6))
    -- a field starting with '*' makes it AND: days 1, 11, 21, 31 that are Mondays
    assert.are.same({"2027-01-11T00:00:00Z", "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z", "2027-05-31T00:00:00Z"},
      fires("0 0 */10 * mon", "2027-01-01T00:00:00Z", 4))
    -- only the day of month restricted: weekdays do not matter
    assert.are.same({"2027-01-13T00:00:00Z", "2027-02-13T00:00:00Z"}, fires("0 0 13 * *", "2027-01-01T00:00:00Z", 2))
  end)
end)

describe("cron next_after", function()
  it("is strictly after t, also for fractional t", function()
    local c = assert(cron.parse("0 * * * *"))
    assert.are.equal("2027-01-04T09:00:00Z", iso(c:next_after(t"2027-01-04T08:00:00Z")))
    assert.are.equal("2027-01-04T08:00:00Z", iso(c:next_after(t"2027-01-04T08:00:00Z" - 0.001)))
    assert.are.equal("2027-01-04T09:00:00Z", iso(c:next_after(t"2027-01-04T08:00:00Z" + 0.5)))
  end)

  it("has no fire time after an infinite or NaN instant", function()
    local c = assert(cron.parse("* * * * *"))
    assert.is_nil(c:next_after(math.huge))
    assert.is_nil(c:next_after(-math.huge))
    assert.is_nil(c:next_after(0 / 0))
  end)

  it("uses the zone's wall clock (half-hour offset, Windows name)", function()
    assert.are.same({"2027-01-04T03:30:00Z", "2027-01-05T03:30:00Z"},
      fires("0 9 * * *", "2027-01-04T00:00:00Z", 2, "India Standard Time"))
    assert.are.same({"2027-01-04T00:00:00Z"}, fires("0 9 * * *", "2027-01-03T12:00:00Z", 1, "Tokyo Standard Time"))
  end)

  it("fires a time skipped by spring-forward once, at the first valid instant (Pacific)", function()
    assert.are.same({"2027-03-13T10:30:00Z", "2027-03-14T10:00:00Z", "2027-03-15T09:30:00Z"},
      fires("30 2 * * *", "2027-03-13T00:00:00Z", 3, "Pacific Standard Time"))
    -- every 20 minutes: 02:00, 02:20 and 02:40 do not exist; they fire once, at 03:00 PDT, with 03:00 itself
    assert.are.same({"2027-03-14T09:20:00Z", "2027-03-14T09:40:00Z", "2027-03-14T10:00:00Z", "2027-03-14T10:20:00Z",
      "2027-03-14T10:40:00Z", "2027-03-14T11:00:00Z"},
      fires("*/20 * * * *", "2027-03-14T09:10:00Z", 6, "Pacific Standard Time"))
    -- seconds field: 02:30:15 is skipped too and fires at the change
    assert.are.same({"2027-03-14T10:00:00Z"}, fires("15 30 2 * * *", "2027-03-14T09:00:00Z", 1, "Pacific Standard Time"))
  end)

  it("does not fire a skipped time again when called just after the change", function()
    -- 03:15 PDT on the spring-forward day: the skipped 02:30 fired at 03:00; next is the 15th's 02:30 PDT
    assert.are.equal("2027-03-15T09:30:00Z",
      iso(assert(cron.parse("30 2 * * *")):next_after(t"2027-03-14T10:15:00Z", zone.get("America/Los_Angeles"))))
  end)

  it("fires a repeated time once, at its first occurrence (Pacific fall-back)", function()
    assert.are.same({"2027-11-06T08:30:00Z", "2027-11-07T08:30:00Z", "2027-11-08T09:30:00Z"},
      fires("30 1 * * *", "2027-11-06T00:00:00Z", 3, "Pacific Standard Time"))
    assert.are.same({"2027-11-07T08:00:00Z", "2027-11-07T08:20:00Z", "2027-11-07T08:40:00Z", "2027-11-07T10:00:00Z"},
      fires("*/20 * * * *", "2027-11-07T07:50:00Z", 4, "Pacific Standard Time"))
    -- asked during the second 01:xx hour: nothing more fires until 02:00 PST
    assert.are.same({"2027-11-07T10:00:00Z"}, fires("*/20 * * * *", "2027-11-07T09:10:00Z", 1, "Pacific Standard Time"))
  end)

  it("handles both Berlin transitions", function()
    assert.are.same({"2027-03-27T01:30:00Z", "2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"},
      fires("30 2 * * *", "2027-03-27T00:00:00Z", 3, "W. Europe Standard Time"))
    assert.are.same({"2027-10-30T00:30:00Z", "2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"},
      fires("30 2 * * *", "2027-10-30T00:00:00Z", 3, "Europe/Berlin"))
    -- hourly across the fall-back: 02:00 CEST, 03:00 CET (the repeated 02:00 CET is not fired again)
    assert.are.same({"2027-10-31T00:00:00Z", "2027-10-31T02:00:00Z", "2027-10-31T03:00:00Z"},
      fires("0 * * * *", "2027-10-30T23:30:00Z", 3, "Europe/Berlin"))
  end)

  it("handles the southern hemisphere and 2040 (footer rule)", function()
    assert.are.same({"2027-10-02T16:00:00Z", "2027-10-03T15:30:00Z"},
      fires("30 2 * * *", "2027-10-02T12:00:00Z", 2, "AUS Eastern Standard Time"))
    assert.are.same({"2040-03-10T10:30:00Z", "2040-03-11T10:00:00Z", "2040-03-12T09:30:00Z"},
      fires("30 2 * * *", "2040-03-10T00:00:00Z", 3, "Pacific Standard Time"))
  end)

  it("agrees with a minute-by-minute check over a spring-forward week (skipped times at the change)", function()
    local z = zone.get("Europe/Berlin")
    for _, expr in ipairs{"*/7 1-3 * * *", "30 2 * * *", "0,30 2 * * sun", "59 1,2,3 27-31 3 *"} do
      local c = assert(cron.parse(expr))
      local from = t"2027-03-25T00:00:00Z"
      local walked = {}
      for x = from + 60, from + 7 * 86400, 60 do
        local l = z:to_local(x)
        local hit = c.minute_set[l.min] and c.hour_set[l.hour] and c:day_ok(l.year, l.month, l.day)
        local before = z:to_local(x - 60)
        if before.offset ~= l.offset then
          -- the change: every wall minute it skipped counts here
          for w = 1, (l.offset - before.offset) // 60 do
            local wall = before.hour * 60 + before.min + w   -- minutes into the (same) day
            if c.minute_set[wall % 60] and c.hour_set[wall // 60 % 24] and c:day_ok(l.year, l.month, l.day) then
              hit = true
            end
          end
        end
        if hit then walked[#walked + 1] = iso(x) end
      end
      local got = {}
      for i, x in ipairs(c:next_n(from, #walked + 1, z)) do got[i] = iso(x) end
      assert.is_true(#walked > 0)
      assert.are.same(walked, {table.unpack(got, 1, #walked)}, expr)
    end
  end)

  it("agrees with a minute-by-minute check over a DST week", function()
    local z = zone.get("Europe/Berlin")
    for _, expr in ipairs{"*/7 1-3 * * *", "0,30 2 * * sun", "59 1,2,3 27-31 3,10 *"} do
      local c = assert(cron.parse(expr))
      local from = t"2027-10-27T00:00:00Z"
      local walked = {}
      for x = from + 60, from + 7 * 86400, 60 do
        local l = z:to_local(x)
        local mins = c.minute_set[l.min] and c.hour_set[l.hour] and c:day_ok(l.year, l.month, l.day)
        local first = z:to_utc(l) == x   -- the first occurrence of this wall time
        if mins and first then walked[#walked + 1] = iso(x) end
      end
      local got = {}
      for i, x in ipairs(c:next_n(from, #walked + 1, z)) do got[i] = iso(x) end
      assert.is_true(#walked > 0)
      assert.are.same(walked, {table.unpack(got, 1, #walked)}, expr)
    end
  end)

  it("gives up after a bounded search (8 years)", function()
    -- days 1 (*/31) that are Mondays, in February: 2027-02-01, then not until 2038-02-01
    local c = assert(cron.parse("0 0 */31 2 mon"))
    assert.are.equal("2027-02-01T00:00:00Z", iso(c:next_after(t"2027-01-01T00:00:00Z")))
    assert.is_nil(c:next_after(t"2027-02-02T00:00:00Z"))
    assert.are.equal("2038-02-01T00:00:00Z", iso(c:next_after(t"2033-01-01T00:00:00Z")))
  end)

  it("jumps over years to a rare date without scanning minutes", function()
    local c = assert(cron.parse("0 12 29 2 *"))
    local x = t"2027-01-01T00:00:00Z"
    local list = {}
    for i = 1, 100 do x = c:next_after(x, zone.get("Pacific Standard Time")); list[i] = x end
    -- the 100th leap year from 2028 is 2436 (2100, 2200 and 2300 are not leap years); 12:00 PST is 20:00Z
    assert.are.equal("2436-02-29T20:00:00Z", iso(list[100]))
    assert.are.equal("2104-02-29T20:00:00Z", iso(list[19]))
  end)
end)
