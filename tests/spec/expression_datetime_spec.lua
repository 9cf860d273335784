-- Date and time behaviour of the expression language: parsing, .NET formats,
-- calendar arithmetic and time-zone rules around daylight-saving changes.

local expression = require "lufa.expression"

local function eval(text)
  local c, err = expression.compile(text)
  if not c then error(err, 0) end
  return c:eval({ now = function() return "2018-03-15T13:00:00Z" end })
end

local function fails(text, code)
  local ok, err = pcall(eval, text)
  assert.is_false(ok, "expected an error for " .. text)
  assert.are.equal(code, err.code)
  return err
end

describe("expression date and time", function()
  describe("parsing", function()
    local cases = {
      { "2018-03-15T13:00:00Z", "2018-03-15T13:00:00.0000000Z" },
      { "2018-03-15T13:00:00.1234567Z", "2018-03-15T13:00:00.1234567Z" },
      { "2018-03-15T13:00:00.12345678Z", "2018-03-15T13:00:00.1234567Z" },
      { "2018-03-15T18:30:00+05:30", "2018-03-15T13:00:00.0000000Z" },
      { "2018-03-15T08:00:00-0500", "2018-03-15T13:00:00.0000000Z" },
      { "2018-03-15", "2018-03-15T00:00:00.0000000" },
      { "2018-03-15 13:00", "2018-03-15T13:00:00.0000000" },
      { "2018/03/15 13:00:00", "2018-03-15T13:00:00.0000000" },
      { "03/15/2018 01:00 PM", "2018-03-15T13:00:00.0000000" },
      { "3/5/2018 12:00:00 AM", "2018-03-05T00:00:00.0000000" },
      { "Thu, 15 Mar 2018 13:00:00 GMT", "2018-03-15T13:00:00.0000000Z" },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        assert.are.equal(case[2], eval("@formatDateTime('" .. case[1] .. "')"))
      end)
    end

    it("rejects impossible dates and unknown shapes", function()
      fails("@formatDateTime('2019-02-29')", "argument")
      fails("@formatDateTime('2018-13-01')", "argument")
      fails("@formatDateTime('2018-03-15T25:00:00Z')", "argument")
      fails("@formatDateTime('15.03.2018')", "argument")
      fails("@formatDateTime('2018-03-15T13:00:00Zjunk')", "argument")
      local err = fails("@formatDateTime(20180315)", "type")
      assert.is_truthy(err.message:find("timestamp", 1, true))
    end)
  end)

  describe("formats", function()
    local ts = "2009-06-15T13:45:30.0050000Z"
    local cases = {
      -- Standard formats with en-US, as in .NET's documentation of them.
      { "d", "6/15/2009" }, { "D", "Monday, June 15, 2009" }, { "f", "Monday, June 15, 2009 1:45 PM" },
      { "F", "Monday, June 15, 2009 1:45:30 PM" }, { "g", "6/15/2009 1:45 PM" }, { "G", "6/15/2009 1:45:30 PM" },
      { "M", "June 15" }, { "o", "2009-06-15T13:45:30.0050000Z" }, { "R", "Mon, 15 Jun 2009 13:45:30 GMT" },
      { "s", "2009-06-15T13:45:30" }, { "t", "1:45 PM" }, { "T", "1:45:30 PM" }, { "u", "2009-06-15 13:45:30Z" },
      { "U", "Monday, June 15, 2009 1:45:30 PM" }, { "Y", "June 2009" },
      { "yy-M-d h:m:s t", "09-6-15 1:45:30 P" }, { "yyyyy", "02009" }, { "%y", "9" }, { "y", "June 2009" },
      { "ddd MMM", "Mon Jun" }, { "fff FFF ff FF", "005 005 00 " }, { "HH:mm:ss.FFFFFFF", "13:45:30.005" },
      { "zzz z zz", "+00:00 +0 +00" }, { "%d", "15" }, { "\\d\\a\\y d", "day 15" }, { "hh tt", "01 PM" },
    }
    for _, case in ipairs(cases) do
      it("'" .. case[1] .. "'", function()
        local fmt = case[1]:gsub("'", "''")
        assert.are.equal(case[2], eval("@formatDateTime('" .. ts .. "', '" .. fmt .. "')"))
      end)
    end

    it("drops the '.' before an empty F part", function()
      assert.are.equal("13:45:30", eval("@formatDateTime('2009-06-15T13:45:30Z', 'HH:mm:ss.FFF')"))
    end)

    it("prints 12 for noon and midnight on the 12-hour clock", function()
      assert.are.equal("12 AM", eval("@formatDateTime('2009-06-15T00:10:00Z', 'h tt')"))
      assert.are.equal("12 PM", eval("@formatDateTime('2009-06-15T12:10:00Z', 'h tt')"))
    end)

    it("rejects unknown standard formats and unclosed quotes", function()
      fails("@formatDateTime('2009-06-15', 'x')", "argument")
      fails("@formatDateTime('2009-06-15', 'yyyy ''open')", "argument")
    end)
  end)

  describe("arithmetic", function()
    it("adds calendar months and years with the day clamped", function()
      assert.are.equal("2016-02-29", eval("@addToTime('2016-01-31', 1, 'Month', 'yyyy-MM-dd')"))
      assert.are.equal("2017-02-28", eval("@addToTime('2016-02-29', 1, 'Year', 'yyyy-MM-dd')"))
      assert.are.equal("2017-12-31", eval("@subtractFromTime('2018-01-31', 1, 'Month', 'yyyy-MM-dd')"))
    end)

    it("accepts plural and lower-case units and fractional amounts", function()
      assert.are.equal("2018-01-15", eval("@addToTime('2018-01-01', 2, 'weeks', 'yyyy-MM-dd')"))
      assert.are.equal("12:30", eval("@addHours('2018-01-01T12:00:00Z', 0.5, 'HH:mm')"))
    end)

    it("refuses to leave years 1 to 9999", function()
      fails("@addDays('9999-12-31T00:00:00Z', 1)", "argument")
      fails("@addToTime('0001-01-01', -1, 'Second')", "argument")
    end)

    it("counts ticks and week days", function()
      assert.are.equal(630822816000000000, eval("@ticks('2000-01-01T00:00:00Z')"))
      assert.are.equal(6, eval("@dayOfWeek('2000-01-01')"))
      assert.are.equal(60, eval("@dayOfYear('2000-02-29')"))
      assert.are.equal(1, eval("@dayOfWeek('1900-01-01')"))
    end)

    it("uses scope.now() for utcNow and relative times", function()
      assert.are.equal("2018-03-15T13:00:00.0000000Z", eval("@utcNow()"))
      assert.are.equal("2018-03-14", eval("@getPastTime(1, 'Day', 'yyyy-MM-dd')"))
      assert.are.equal("2018-04-15", eval("@getFutureTime(1, 'Month', 'yyyy-MM-dd')"))
    end)
  end)

  describe("time zones", function()
    local function from_utc(ts, zone) return eval("@convertFromUtc('" .. ts .. "', '" .. zone .. "', 's')") end
    local function to_utc(ts, zone) return eval("@convertToUtc('" .. ts .. "', '" .. zone .. "', 's')") end

    it("follows the US daylight rule", function()
      assert.are.equal("2018-03-11T01:59:59", from_utc("2018-03-11T09:59:59Z", "Pacific Standard Time"))
      assert.are.equal("2018-03-11T03:00:00", from_utc("2018-03-11T10:00:00Z", "Pacific Standard Time"))
      assert.are.equal("2018-11-04T01:59:59", from_utc("2018-11-04T08:59:59Z", "Pacific Standard Time"))
      assert.are.equal("2018-11-04T01:00:00", from_utc("2018-11-04T09:00:00Z", "Pacific Standard Time"))
      assert.are.equal("2018-07-04T08:00:00", from_utc("2018-07-04T12:00:00Z", "Eastern Standard Time"))
    end)

    it("follows the EU daylight rule", function()
      assert.are.equal("2018-03-25T01:59:59", from_utc("2018-03-25T00:59:59Z", "W. Europe Standard Time"))
      assert.are.equal("2018-03-25T03:00:00", from_utc("2018-03-25T01:00:00Z", "W. Europe Standard Time"))
      assert.are.equal("2018-10-28T02:59:59", from_utc("2018-10-28T00:59:59Z", "W. Europe Standard Time"))
      assert.are.equal("2018-10-28T02:00:00", from_utc("2018-10-28T01:00:00Z", "W. Europe Standard Time"))
      assert.are.equal("2018-07-01T13:00:00", from_utc("2018-07-01T12:00:00Z", "GMT Standard Time"))
    end)

    it("follows the southern-hemisphere rules", function()
      assert.are.equal("2018-04-01T02:59:59", from_utc("2018-03-31T15:59:59Z", "AUS Eastern Standard Time"))
      assert.are.equal("2018-04-01T02:00:00", from_utc("2018-03-31T16:00:00Z", "AUS Eastern Standard Time"))
      assert.are.equal("2018-10-07T03:00:00", from_utc("2018-10-06T16:00:00Z", "AUS Eastern Standard Time"))
      assert.are.equal("2018-09-30T03:00:00", from_utc("2018-09-29T14:00:00Z", "New Zealand Standard Time"))
      assert.are.equal("2018-07-01T20:00:00", from_utc("2018-07-01T10:00:00Z", "E. Australia Standard Time"))
    end)

    it("handles fixed offsets, including half hours", function()
      assert.are.equal("2018-07-01T17:30:00", from_utc("2018-07-01T12:00:00Z", "India Standard Time"))
      assert.are.equal("2018-07-01T17:45:00", from_utc("2018-07-01T12:00:00Z", "Nepal Standard Time"))
      assert.are.equal("2018-07-01T12:00:00", from_utc("2018-07-01T12:00:00Z", "utc"))
    end)

    it("reads an ambiguous local time as standard time and rejects a skipped one", function()
      assert.are.equal("2018-11-04T09:30:00", to_utc("2018-11-04 01:30:00", "Pacific Standard Time"))
      local err = fails("@convertToUtc('2018-03-25 02:30:00', 'W. Europe Standard Time')", "argument")
      assert.is_truthy(err.message:find("not a valid time", 1, true))
    end)

    it("treats a time that carries its own offset as an instant", function()
      assert.are.equal("2018-07-01T10:00:00", to_utc("2018-07-01T12:00:00+02:00", "Tokyo Standard Time"))
    end)

    it("prints a converted time without a zone suffix, and UTC with Z", function()
      assert.are.equal("2018-07-01T05:00:00.0000000",
        eval("@convertTimeZone('2018-07-01T12:00:00Z', 'UTC', 'Pacific Standard Time')"))
      assert.are.equal("2018-07-01T12:00:00.0000000Z",
        eval("@convertTimeZone('2018-07-01 05:00:00', 'Pacific Standard Time', 'UTC')"))
    end)

    it("names an unknown zone", function()
      local err = fails("@convertFromUtc('2018-07-01T12:00:00Z', 'Europe/Paris')", "argument")
      assert.is_truthy(err.message:find("'Europe/Paris'", 1, true))
    end)
  end)
end)
