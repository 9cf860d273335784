-- lufa.schedule from Lua: cron, every and recurrence jobs as tasks of the script's loop, on a virtual
-- clock; overlap policies; errors in a job; cancelling; bad arguments.
local lufa = require "lufa"
local runs = require "lufa.runs"
local schedule = require "lufa.schedule"
local clock = require "lufa.schedule.clock"
local util = require "tests.support.util"

local T0 = runs.parse_time("2027-01-04T08:00:00Z")
local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

describe("lufa.schedule", function()
  it("cron: calls the function at each time of the expression in its zone", function()
    local c = clock.virtual(T0 - 1)
    local times = {}
    local job = schedule.cron("30 9 * * *", function(t) times[#times + 1] = iso(t) end,
      {zone = "W. Europe Standard Time", clock = c})
    assert.are.equal("2027-01-04T08:30:00Z", iso(job:next()))
    util.wait_until(function() return #times >= 3 end, 10)
    job:cancel()
    assert.are.same({"2027-01-04T08:30:00Z", "2027-01-05T08:30:00Z", "2027-01-06T08:30:00Z"},
      {times[1], times[2], times[3]})
    assert.is_true(job:count() >= 3)
  end)

  it("recurrence: follows an ADF recurrence", function()
    local c = clock.virtual(T0 - 1)
    local times = {}
    local job = schedule.recurrence({frequency = "Month", interval = 1, startTime = "2027-01-01T00:00:00Z",
      schedule = {monthDays = {-1}, hours = {6}, minutes = {0}}}, function(t) times[#times + 1] = iso(t) end,
      {clock = c})
    util.wait_until(function() return #times >= 3 end, 10)
    job:cancel()
    assert.are.same({"2027-01-31T06:00:00Z", "2027-02-28T06:00:00Z", "2027-03-31T06:00:00Z"},
      {times[1], times[2], times[3]})
  end)

  it("every: on the real clock, other tasks run meanwhile; cancel stops it", function()
    local beats = 0
    local job = schedule.every(0.05, function() beats = beats + 1 end)
    local other = false
    lufa.spawn(function() other = true end)
    util.wait_until(function() return beats >= 3 end, 10)
    job:cancel()
    local seen = beats
    lufa.sleep(0.2)
    assert.is_true(other)
    assert.is_true(seen >= 3)
    assert.is_true(beats <= seen + 1)   -- a call already started may finish; no new one begins
  end)

  it("overlap skip: a fire while the previous call runs is not called", function()
    local c = clock.virtual(T0 - 1)
    local started, release = 0, false
    local job = schedule.cron("* * * * *", function()
      started = started + 1
      util.wait_until(function() return release end, 10)
    end, {clock = c, overlap = "skip"})
    lufa.sleep(0.05)          -- the virtual clock runs through many minutes meanwhile
    assert.are.equal(1, started)
    release = true
    job:cancel()
  end)

  it("on_error receives a job's error with its scheduled time, and the job goes on", function()
    local c = clock.virtual(T0 - 1)
    local errors = {}
    local job = schedule.every(60, function(t) error("failed at " .. iso(t), 0) end,
      {clock = c, on_error = function(err, t) errors[#errors + 1] = {err, iso(t)} end})
    util.wait_until(function() return #errors >= 2 end, 10)
    job:cancel()
    assert.are.same({"failed at 2027-01-04T08:00:59Z", "2027-01-04T08:00:59Z"}, errors[1])
  end)

  it("refuses bad arguments with what was expected", function()
    assert.has_error(function() schedule.cron("every day", function() end) end)
    assert.has_error(function() schedule.cron("0 * * * *", function() end, {zone = "Nowhere/Land"}) end)
    assert.has_error(function() schedule.every(0, function() end) end, "every: seconds must be a positive number")
    assert.has_error(function() schedule.every(1, function() end, {overlap = "queue"}) end)
    assert.has_error(function() schedule.recurrence({frequency = "Fortnightly", interval = 1,
      startTime = "2027-01-01T00:00:00Z"}, function() end) end)
  end)
end)
