-- Tumbling windows: bounds, indices, due times (end + delay), calendar-month windows, and the checks of
-- a TumblingWindowTrigger's typeProperties with their JSON paths.
local runs = require "lufa.runs"
local tumbling = require "lufa.schedule.tumbling"

local function t(s) return assert(runs.parse_time(s)) end
local function iso(x) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(x)) end

local function compile(tp)
  tp.maxConcurrency = tp.maxConcurrency or 1
  return tumbling.compile(tp)
end

local function messages(problems)
  local out = {}
  for _, p in ipairs(problems) do out[#out + 1] = p.path .. ": " .. p.message end
  table.sort(out)
  return out
end

describe("tumbling windows", function()
  it("are contiguous from startTime, keep its seconds, and are due at their end plus the delay", function()
    local tw = assert(compile{frequency = "Hour", interval = 1, startTime = "2027-01-04T10:10:10Z", delay = "00:10:00"})
    local ws, we = tw:window(0)
    assert.are.same({"2027-01-04T10:10:10Z", "2027-01-04T11:10:10Z"}, {iso(ws), iso(we)})
    ws, we = tw:window(5)
    assert.are.same({"2027-01-04T15:10:10Z", "2027-01-04T16:10:10Z"}, {iso(ws), iso(we)})
    assert.are.equal("2027-01-04T16:20:10Z", iso(tw:due(5)))
    assert.is_nil(tw:window(-1))
  end)

  it("find the window holding an instant (-1 before the first)", function()
    local tw = assert(compile{frequency = "Minute", interval = 15, startTime = "2027-01-04T00:00:00Z"})
    assert.are.equal(-1, tw:index_at(t"2027-01-03T23:59:59Z"))
    assert.are.equal(0, tw:index_at(t"2027-01-04T00:00:00Z"))
    assert.are.equal(0, tw:index_at(t"2027-01-04T00:14:59Z"))
    assert.are.equal(1, tw:index_at(t"2027-01-04T00:15:00Z"))
    assert.are.equal(96, tw:index_at(t"2027-01-05T00:00:00Z"))
  end)

  it("stop at endTime: a window that would end after it does not exist", function()
    local tw = assert(compile{frequency = "Hour", interval = 2, startTime = "2027-01-04T00:00:00Z",
      endTime = "2027-01-04T05:00:00Z"})
    assert.is_not_nil(tw:window(1))   -- 02:00-04:00
    assert.is_nil(tw:window(2))       -- 04:00-06:00 ends after 05:00
    assert.is_nil(tw:due(2))
  end)

  it("list the windows due by now, oldest first, limited", function()
    local tw = assert(compile{frequency = "Hour", interval = 1, startTime = "2027-01-04T00:00:00Z", delay = "00:10:00"})
    assert.are.same({0, 1, 2}, tw:windows_due(0, t"2027-01-04T03:30:00Z"))
    assert.are.same({1, 2}, tw:windows_due(1, t"2027-01-04T03:30:00Z"))
    assert.are.same({0, 1}, tw:windows_due(0, t"2027-01-04T03:30:00Z", 2))
    assert.are.same({}, tw:windows_due(0, t"2027-01-04T01:09:59Z"))
  end)

  it("of a Month are calendar months from startTime, the day clamped to short months", function()
    local tw = assert(compile{frequency = "Month", interval = 1, startTime = "2027-01-31T06:00:00Z"})
    local bounds = {}
    for k = 0, 3 do bounds[#bounds + 1] = iso((tw:window(k))) end
    assert.are.same({"2027-01-31T06:00:00Z", "2027-02-28T06:00:00Z", "2027-03-31T06:00:00Z", "2027-04-30T06:00:00Z"},
      bounds)
    assert.are.equal(1, tw:index_at(t"2027-03-01T00:00:00Z"))
    assert.are.equal(2, tw:index_at(t"2027-03-31T06:00:00Z"))
    assert.are.equal(-1, tw:index_at(t"2027-01-31T05:59:59Z"))
    local quarterly = assert(compile{frequency = "Month", interval = 3, startTime = "2027-01-01T00:00:00Z"})
    assert.are.equal("2028-01-01T00:00:00Z", iso((quarterly:window(4))))
    assert.are.equal(4, quarterly:index_at(t"2028-02-15T00:00:00Z"))
  end)

  it("carry retryPolicy, maxConcurrency and dependencies", function()
    local tw = assert(compile{frequency = "Hour", interval = 1, startTime = "2027-01-04T00:00:00Z", maxConcurrency = 4,
      retryPolicy = {count = 2, intervalInSeconds = 120},
      dependsOn = {{type = "SelfDependencyTumblingWindowTriggerReference", offset = "-01:00:00", size = "01:00:00"},
        {type = "TumblingWindowTriggerDependencyReference", referenceTrigger = {referenceName = "Upstream",
          type = "TriggerReference"}, offset = "-02:00:00"}}})
    assert.are.equal(4, tw.max_concurrency)
    assert.are.same({count = 2, interval = 120}, tw.retry)
    assert.are.same({kind = "self", offset = -3600, size = 3600}, tw.depends[1])
    assert.are.same({kind = "trigger", trigger = "Upstream", offset = -7200}, tw.depends[2])
  end)

  it("refuse bad properties, each with its path", function()
    local tw, problems = tumbling.compile{frequency = "Day", interval = 0, startTime = "2027-01-04T00:00:00",
      endTime = "yesterday", delay = "10 minutes", maxConcurrency = 51,
      retryPolicy = {count = -1, intervalInSeconds = 5},
      dependsOn = {{type = "SelfDependencyTumblingWindowTriggerReference", offset = "01:00:00"},
        {type = "Whatever"}}}
    assert.is_nil(tw)
    assert.are.same({
      ".delay: expected d.hh:mm:ss (for example 0.12:00:00), got '10 minutes'",
      ".dependsOn[0].offset: a self-dependency needs a negative offset (e.g. -01:00:00: the previous window)",
      ".dependsOn[1].type: unknown dependency type 'Whatever' (expected SelfDependencyTumblingWindowTriggerReference " ..
        "or TumblingWindowTriggerDependencyReference)",
      ".endTime: expected an ISO 8601 UTC time such as 2027-01-04T00:00:00Z, got 'yesterday'",
      ".frequency: frequency must be Minute, Hour or Month, got 'Day'",
      ".interval: interval must be a positive integer, got 0",
      ".maxConcurrency: maxConcurrency must be an integer from 1 to 50, got 51",
      ".retryPolicy.count: count must be a non-negative integer, got -1",
      ".retryPolicy.intervalInSeconds: intervalInSeconds must be an integer from 30 to 86400, got 5",
      ".startTime: a TumblingWindowTrigger's startTime is UTC: write it with Z (got '2027-01-04T00:00:00')",
    }, messages(problems))
  end)

  it("refuse windows under 15 minutes and a missing maxConcurrency", function()
    local _, problems = tumbling.compile{frequency = "Minute", interval = 5, startTime = "2027-01-04T00:00:00Z"}
    assert.are.same({".interval: a window must be at least 15 minutes long, got 5 minute(s)",
      ".maxConcurrency: a TumblingWindowTrigger needs maxConcurrency (1-50)"}, messages(problems))
  end)
end)
