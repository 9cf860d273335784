-- Time zones: name lookup (IANA, Windows, UTC), offsets from TZif files and their footer rule (beyond
-- the file's last transition), wall time ↔ UTC with the gap and fold statuses, compared with the
-- system's `date` over hundreds of instants in several zones.
local runs = require "lufa.runs"
local zone = require "lufa.schedule.zone"

local function t(s) return assert(runs.parse_time(s)) end
local function iso(x) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(x)) end

local function get(name) return assert(zone.get(name)) end

describe("zone.get", function()
  it("knows UTC by its three spellings", function()
    for _, n in ipairs{"UTC", "Etc/UTC", "Z"} do
      local z = get(n)
      assert.are.equal("Etc/UTC", z.name)
      assert.are.same({0, "UTC", false}, {z:offset_at(t"2027-07-01T00:00:00Z")})
    end
    assert.are.equal("UTC", get("UTC").windows)
    assert.is_nil(get("Z").windows)
  end)

  it("maps Windows zone ids to IANA names and keeps the Windows id", function()
    local cases = {
      ["Pacific Standard Time"] = "America/Los_Angeles", ["W. Europe Standard Time"] = "Europe/Berlin",
      ["GMT Standard Time"] = "Europe/London", ["India Standard Time"] = "Asia/Kolkata",
      ["Tokyo Standard Time"] = "Asia/Tokyo", ["AUS Eastern Standard Time"] = "Australia/Sydney",
      ["Romance Standard Time"] = "Europe/Paris", ["Central Europe Standard Time"] = "Europe/Budapest",
      ["US Mountain Standard Time"] = "America/Phoenix", ["Mountain Standard Time"] = "America/Denver",
      ["Central Standard Time"] = "America/Chicago", ["Eastern Standard Time"] = "America/New_York",
      ["China Standard Time"] = "Asia/Shanghai", ["FLE Standard Time"] = "Europe/Kyiv",
      ["Nepal Standard Time"] = "Asia/Kathmandu", ["Dateline Standard Time"] = "Etc/GMT+12",
    }
    for win, iana in pairs(cases) do
      local z = get(win)
      assert.are.equal(iana, z.name)
      assert.are.equal(win, z.windows)
    end
    assert.are.equal("Europe/Berlin", get("w. europe standard time").name)
    assert.is_nil(get("Europe/Berlin").windows)
  end)

  it("has every Windows id of the table resolvable on this system", function()
    local table_ = require "lufa.schedule.windows_zones"
    local n = 0
    for win, iana in pairs(table_.iana) do
      local z, err = zone.get(win)
      assert.is_not_nil(z, err)
      assert.are.equal(iana, z.name)
      n = n + 1
    end
    assert.is_true(n >= 139)
  end)

  it("refuses unknown names and anything shaped like a path", function()
    local msg = "unknown time zone 'Mars/Olympus' (expected an IANA name such as Europe/Berlin or a Windows name " ..
      "such as W. Europe Standard Time)"
    assert.are.same({nil, msg}, {zone.get("Mars/Olympus")})
    for _, n in ipairs{"../../etc/passwd", "/etc/localtime", "Europe//Berlin", "", "Pacific Standard"} do
      local z, err = zone.get(n)
      assert.is_nil(z)
      assert.matches("unknown time zone", err)
    end
    assert.is_nil((zone.get(nil)))
  end)

  it("reads $TZDIR, and says so when a known zone has no file there", function()
    local util = require "tests.support.util"
    local p = assert(io.popen("TZDIR=/nonexistent-tzdir " .. util.shell_quote(util.lufa_binary()) ..
      [[ -e 'local z = require "lufa.schedule.zone"; print(select(2, z.get("Pacific Standard Time")));]] ..
      [[ print(z.get("UTC").name)' 2>&1]]))
    local out = p:read("a")
    p:close()
    assert.are.equal("time zone 'Pacific Standard Time' is America/Los_Angeles, which has no TZif file in " ..
      "/nonexistent-tzdir (is tzdata installed?)\nEtc/UTC\n", out)
  end)

  it("caches zones by name", function()
    assert.are.equal(get("Europe/Berlin"), get("Europe/Berlin"))
    assert.are_not.equal(get("Europe/Berlin"), get("W. Europe Standard Time"))
  end)
end)

describe("a zone's offset", function()
  it("follows DST in Pacific time, with abbreviations", function()
    local z = get("Pacific Standard Time")
    assert.are.same({-28800, "PST", false}, {z:offset_at(t"2027-01-15T12:00:00Z")})
    assert.are.same({-25200, "PDT", true}, {z:offset_at(t"2027-07-15T12:00:00Z")})
    -- the transitions themselves: 2027-03-14 10:00Z and 2027-11-07 09:00Z
    assert.are.equal(-28800, (z:offset_at(t"2027-03-14T09:59:59Z")))
    assert.are.equal(-25200, (z:offset_at(t"2027-03-14T10:00:00Z")))
    assert.are.equal(-25200, (z:offset_at(t"2027-11-07T08:59:59Z")))
    assert.are.equal(-28800, (z:offset_at(t"2027-11-07T09:00:00Z")))
    assert.are.equal(-28800, (z:offset_at(t"2027-03-14T09:59:59Z" + 0.5)))
  end)

  it("comes from the footer rule beyond the file's last transition (2040)", function()
    local z = get("America/Los_Angeles")
    assert.is_not_nil(z.rule)
    assert.is_true(#z.trans == 0 or z.trans[#z.trans] < t"2040-01-01T00:00:00Z")
    -- 2040: DST from Sunday March 11 02:00 PST (10:00Z) to Sunday November 4 02:00 PDT (09:00Z)
    assert.are.same({-28800, "PST", false}, {z:offset_at(t"2040-03-11T09:59:59Z")})
    assert.are.same({-25200, "PDT", true}, {z:offset_at(t"2040-03-11T10:00:00Z")})
    assert.are.same({-25200, "PDT", true}, {z:offset_at(t"2040-11-04T08:59:59Z")})
    assert.are.same({-28800, "PST", false}, {z:offset_at(t"2040-11-04T09:00:00Z")})
    local b = get("Europe/Berlin")   -- last Sunday of March / October at 01:00Z
    assert.are.same({3600, "CET", false}, {b:offset_at(t"2040-03-25T00:59:59Z")})
    assert.are.same({7200, "CEST", true}, {b:offset_at(t"2040-03-25T01:00:00Z")})
    assert.are.same({3600, "CET", false}, {b:offset_at(t"2040-10-28T01:00:00Z")})
  end)

  it("in the southern hemisphere has DST across the new year (Australia/Sydney)", function()
    local z = get("AUS Eastern Standard Time")
    assert.are.same({39600, "AEDT", true}, {z:offset_at(t"2027-01-15T00:00:00Z")})
    assert.are.same({36000, "AEST", false}, {z:offset_at(t"2027-07-15T00:00:00Z")})
    -- 2027-04-04 03:00 AEDT → 02:00 AEST (16:00Z on 04-03); 2027-10-03 02:00 AEST → 03:00 AEDT (16:00Z 10-02)
    assert.are.equal(39600, (z:offset_at(t"2027-04-03T15:59:59Z")))
    assert.are.equal(36000, (z:offset_at(t"2027-04-03T16:00:00Z")))
    assert.are.equal(36000, (z:offset_at(t"2027-10-02T15:59:59Z")))
    assert.are.equal(39600, (z:offset_at(t"2027-10-02T16:00:00Z")))
    assert.are.equal(39600, (z:offset_at(t"2041-01-01T00:00:00Z")))   -- footer, southern rule
    assert.are.equal(36000, (z:offset_at(t"2041-06-01T00:00:00Z")))
  end)

  it("may be a half hour (Asia/Kolkata, Australia/Adelaide)", function()
    assert.are.same({19800, "IST", false}, {get("India Standard Time"):offset_at(t"2027-06-01T00:00:00Z")})
    local a = get("Cen. Australia Standard Time")
    assert.are.same({37800, "ACDT", true}, {a:offset_at(t"2027-01-01T00:00:00Z")})
    assert.are.same({34200, "ACST", false}, {a:offset_at(t"2027-07-01T00:00:00Z")})
    local l = get("Asia/Kolkata"):to_local(t"2027-01-04T08:00:00Z")
    assert.are.same({2027, 1, 4, 13, 30, 0}, {l.year, l.month, l.day, l.hour, l.min, l.sec})
  end)
end)

describe("a slim TZif file (no transitions, only the footer rule)", function()
  -- version 2: an empty version-1 block, a 64-bit block with one local time type, then the footer
  local function tzif(footer, types)
    local function block()
      local head = "TZif2" .. string.rep("\0", 15) .. string.pack(">I4I4I4I4I4I4", 0, 0, 0, 0, #types, 4)
      local body = {}
      for _, ty in ipairs(types) do body[#body + 1] = string.pack(">i4BB", ty[1], ty[2], 0) end
      return head .. table.concat(body) .. "LMT\0"
    end
    return block() .. block() .. "\n" .. footer .. "\n"
  end

  it("gives every offset from the rule", function()
    local z = assert(zone.from_tzif(tzif("PST8PDT,M3.2.0,M11.1.0", {{-28800, 0}}), "Test/Slim"))
    assert.are.equal("Test/Slim", z.name)
    assert.are.same({-28800, "PST", false}, {z:offset_at(t"2027-01-01T00:00:00Z")})
    assert.are.same({-25200, "PDT", true}, {z:offset_at(t"2027-03-14T10:00:00Z")})
    assert.are.same({t"2027-03-14T10:30:00Z", "gap"}, {z:to_utc{year = 2027, month = 3, day = 14, hour = 2, min = 30}})
    assert.are.same({t"2027-11-07T08:30:00Z", "fold"}, {z:to_utc{year = 2027, month = 11, day = 7, hour = 1, min = 30}})
    local k = assert(zone.from_tzif(tzif("IST-5:30", {{19800, 0}}), "Test/Kolkata"))
    assert.are.same({19800, "IST", false}, {k:offset_at(t"2045-01-01T00:00:00Z")})
    local q = assert(zone.from_tzif(tzif("<+0545>-5:45", {{20700, 0}}), "Test/Quoted"))
    assert.are.same({20700, "+0545", false}, {q:offset_at(0)})
    local j = assert(zone.from_tzif(tzif("EST5EDT,J60/2,J300/2", {{-18000, 0}}), "Test/Julian"))
    -- J60 is March 1 in every year (February 29 not counted): 07:00Z
    assert.are.equal(-18000, (j:offset_at(t"2028-03-01T06:59:59Z")))
    assert.are.equal(-14400, (j:offset_at(t"2028-03-01T07:00:00Z")))
  end)

  it("reports a damaged file", function()
    assert.are.same({nil, "not a TZif file"}, {zone.from_tzif("hello", "Test/Bad")})
    assert.matches("truncated", select(2, zone.from_tzif("TZif2" .. string.rep("\0", 10), "Test/Short")))
    assert.matches("unreadable TZ rule", select(2, zone.from_tzif(tzif("PST8PDT,M3", {{-28800, 0}}), "Test/Rule")))
  end)
end)

describe("to_local", function()
  it("gives os.date's fields in the zone", function()
    local l = get("Europe/Berlin"):to_local(t"2028-02-29T23:30:15Z")
    assert.are.same({year = 2028, month = 3, day = 1, hour = 0, min = 30, sec = 15, wday = 4, yday = 61,
      offset = 3600, abbr = "CET", isdst = false}, l)
    local u = get("UTC"):to_local(t"2027-12-31T23:59:59Z" + 0.75)
    assert.are.same({2027, 12, 31, 23, 59, 59, 6, 365}, {u.year, u.month, u.day, u.hour, u.min, u.sec, u.wday, u.yday})
    for _, x in ipairs{0, 86400 * 3, t"1969-12-31T23:00:00Z", t"2000-02-29T12:00:00Z", t"2100-03-01T00:00:00Z"} do
      local a, b = get("UTC"):to_local(x), os.date("!*t", x)
      assert.are.same({b.year, b.month, b.day, b.hour, b.min, b.sec, b.wday, b.yday},
        {a.year, a.month, a.day, a.hour, a.min, a.sec, a.wday, a.yday})
    end
  end)
end)

describe("to_utc", function()
  it("reads a wall time that exists once", function()
    local z = get("Pacific Standard Time")
    assert.are.same({t"2027-03-12T10:30:00Z"}, {z:to_utc{year = 2027, month = 3, day = 12, hour = 2, min = 30}})
    assert.are.same({t"2027-07-04T16:00:00Z"}, {z:to_utc{year = 2027, month = 7, day = 4, hour = 9}})
  end)

  it("reads a skipped wall time with the offset before the transition (gap)", function()
    local p = get("Pacific Standard Time")
    local x, status = p:to_utc{year = 2027, month = 3, day = 14, hour = 2, min = 30}
    assert.are.equal("2027-03-14T10:30:00Z", iso(x))
    assert.are.equal("gap", status)
    local l = p:to_local(x)   -- which is 03:30 PDT
    assert.are.same({3, 30, "PDT"}, {l.hour, l.min, l.abbr})
    local b = get("W. Europe Standard Time")
    x, status = b:to_utc{year = 2027, month = 3, day = 28, hour = 2, min = 15}
    assert.are.same({"2027-03-28T01:15:00Z", "gap"}, {iso(x), status})
    x, status = b:to_utc{year = 2027, month = 3, day = 28, hour = 3, min = 0}
    assert.are.same({"2027-03-28T01:00:00Z"}, {iso(x), status})
  end)

  it("reads a repeated wall time as its first occurrence (fold)", function()
    local p = get("America/Los_Angeles")
    local x, status = p:to_utc{year = 2027, month = 11, day = 7, hour = 1, min = 30}
    assert.are.same({"2027-11-07T08:30:00Z", "fold"}, {iso(x), status})
    local b = get("Europe/Berlin")
    x, status = b:to_utc{year = 2027, month = 10, day = 31, hour = 2, min = 30}
    assert.are.same({"2027-10-31T00:30:00Z", "fold"}, {iso(x), status})
    x, status = b:to_utc{year = 2027, month = 10, day = 31, hour = 3, min = 0}
    assert.are.same({"2027-10-31T02:00:00Z"}, {iso(x), status})
    local s = get("Australia/Sydney")   -- 2027-04-04 02:30 happens at 15:30Z (AEDT) and 16:30Z (AEST)
    x, status = s:to_utc{year = 2027, month = 4, day = 4, hour = 2, min = 30}
    assert.are.same({"2027-04-03T15:30:00Z", "fold"}, {iso(x), status})
    x, status = s:to_utc{year = 2027, month = 10, day = 3, hour = 2, min = 30}
    assert.are.same({"2027-10-02T16:30:00Z", "gap"}, {iso(x), status})
  end)

  it("uses the footer rule for 2040 wall times", function()
    local p = get("Pacific Standard Time")
    assert.are.same({t"2040-03-11T10:30:00Z", "gap"}, {p:to_utc{year = 2040, month = 3, day = 11, hour = 2, min = 30}})
    assert.are.same({t"2040-11-04T08:30:00Z", "fold"}, {p:to_utc{year = 2040, month = 11, day = 4, hour = 1, min = 30}})
    assert.are.same({t"2040-07-01T19:00:00Z"}, {p:to_utc{year = 2040, month = 7, day = 1, hour = 12}})
  end)

  it("normalises fields out of range as os.time does", function()
    local u = get("UTC")
    assert.are.equal("2027-02-01T00:00:00Z", iso(u:to_utc{year = 2027, month = 1, day = 32}))
    assert.are.equal("2028-01-15T00:00:00Z", iso(u:to_utc{year = 2027, month = 13, day = 15}))
    assert.are.equal("2027-01-05T00:00:00Z", iso(u:to_utc{year = 2027, month = 1, day = 4, hour = 24}))
    assert.are.equal("2026-12-31T00:00:00Z", iso(u:to_utc{year = 2027, month = 1, day = 0}))
    assert.are.equal("2026-10-31T23:59:00Z", iso(u:to_utc{year = 2027, month = -1, day = 1, min = -1}))
    assert.are.equal("2028-02-29T00:00:00Z", iso(u:to_utc{year = 2028, month = 2, day = 29}))
    assert.are.equal("2027-03-01T00:00:00Z", iso(u:to_utc{year = 2027, month = 2, day = 29}))
    local p = get("Pacific Standard Time")   -- March 13 + 25 h is 03:00 PDT on the 14th
    assert.are.equal("2027-03-14T10:00:00Z", iso(p:to_utc{year = 2027, month = 3, day = 13, hour = 27}))
  end)
end)

describe("the zones against the system's date command", function()
  -- instants every 1,234,567 s (about 14 days, drifting through the hours) from 2023 to 2046; the command
  -- line is constant: seq makes the instants, date reads them from its input
  local ZONES = {"America/Los_Angeles", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata", "Australia/Lord_Howe",
    "America/Sao_Paulo", "Europe/London"}
  local COMMANDS = {}
  for _, name in ipairs(ZONES) do
    COMMANDS[name] = "seq -f '@%.0f' 1672531200 1234567 2398000000 | TZ=" .. name ..
      " date -f - '+%s %Y %m %d %H %M %S %z %Z'"
  end

  for _, name in ipairs(ZONES) do
    it("agree for " .. name, function()
      local z = get(name)
      local p = assert(io.popen(COMMANDS[name]))
      local n, roundtrip = 0, 0
      for line in p:lines() do
        local s, y, mo, d, h, mi, se, off, abbr = line:match("^(%-?%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%S+) (%S+)$")
        assert.is_not_nil(s, line)
        local x = tonumber(s)
        local sign, oh, om = off:match("^([+-])(%d%d)(%d%d)$")
        local want_off = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
        local l = z:to_local(x)
        assert.are.same({tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(se), want_off, abbr},
          {l.year, l.month, l.day, l.hour, l.min, l.sec, l.offset, l.abbr}, line)
        local back, status = z:to_utc(l)
        if status ~= "fold" then
          assert.are.equal(x, back, line)
          roundtrip = roundtrip + 1
        end
        n = n + 1
      end
      p:close()
      assert.is_true(n > 550, "date printed " .. n .. " lines")
      assert.is_true(roundtrip > 540)
    end)
  end
end)
