-- The scheduler's records in the run store, on the memory store and the SQLite store alike: a fire time
-- claimed once, trigger runs by status and time, runtime states, blobs seen; then what only a file gives:
-- two processes' stores claiming the same fire time, and prune keeping each trigger's latest fire time.
local runs = require "lufa.runs"
local util = require "tests.support.util"

local dir
setup(function() dir = util.tempdir() end)
teardown(function() os.execute("rm -rf " .. util.shell_quote(dir)) end)

local n = 0
local function fresh_path()
  n = n + 1
  return string.format("%s/store%d/runs.db", dir, n)
end

local T0 = runs.parse_time("2027-01-04T08:00:00Z")

local function record(t, status)
  return {triggerRunId = runs.guid(), triggerName = "Nightly", triggerType = "ScheduleTrigger",
    scheduledTime = runs.iso8601(t), status = status or "InProgress", triggeredPipelines = {}}
end

for _, kind in ipairs{"memory", "sqlite"} do
  describe("the " .. kind .. " store's trigger records", function()
    local store
    before_each(function() store = assert(runs.open(kind == "memory" and ":memory:" or fresh_path())) end)
    after_each(function() store:close() end)

    it("claim a fire time once per scope and trigger (names in any case)", function()
      assert.is_true(store:claim_fire("f", "Nightly", T0, record(T0)))
      assert.is_false(store:claim_fire("f", "NIGHTLY", T0, record(T0)))
      assert.is_true(store:claim_fire("f", "Nightly", T0 + 60, record(T0 + 60)))
      assert.is_true(store:claim_fire("other", "Nightly", T0, record(T0)))
      assert.are.equal(2, #store:trigger_runs("f", "nightly"))
      assert.are.equal(T0 + 60, store:last_fire("f", "Nightly"))
      assert.is_nil(store:last_fire("f", "Never"))
    end)

    it("update trigger runs and select them by status, time and order", function()
      local a, b, c = record(T0), record(T0 + 60), record(T0 + 120)
      for _, r in ipairs{a, b, c} do assert.is_true(store:claim_fire("f", "Nightly", runs.parse_time(r.scheduledTime), r)) end
      a.status = "Succeeded"
      a.triggeredPipelines = {P = "run-1"}
      store:put_trigger_run("f", a)
      b.status = "Failed"
      store:put_trigger_run("f", b)
      store:flush()
      local ok = store:trigger_runs("f", "Nightly", {status = "Succeeded"})
      assert.are.equal(1, #ok)
      assert.are.equal("run-1", ok[1].triggeredPipelines.P)
      assert.are.equal(2, #store:trigger_runs("f", "Nightly", {status = {"Failed", "InProgress"}}))
      local since = store:trigger_runs("f", "Nightly", {since = T0 + 60})
      assert.are.same({b.triggerRunId, c.triggerRunId}, {since[1].triggerRunId, since[2].triggerRunId})
      local newest = store:trigger_runs("f", "Nightly", {newest_first = true, limit = 1})
      assert.are.same({c.triggerRunId}, {newest[1].triggerRunId})
      assert.are.equal(1, #newest)
    end)

    it("keep a runtime state and a checked time, each set on its own", function()
      assert.are.same({}, store:trigger_state("f", "Nightly"))
      store:set_trigger_state("f", "Nightly", {runtime_state = "Stopped"})
      store:set_trigger_state("f", "nightly", {checked = T0})
      assert.are.same({runtime_state = "Stopped", checked = T0}, store:trigger_state("f", "Nightly"))
      store:set_trigger_state("f", "Nightly", {runtime_state = "Started"})
      assert.are.same({runtime_state = "Started", checked = T0}, store:trigger_state("f", "Nightly"))
      store:set_trigger_state("f", "Weekly", {checked = T0})
      assert.are.same({nightly = "Started"}, store:runtime_states("f"))
      store:set_trigger_state("g", "Nightly", {checked = T0})
      local scopes = store:trigger_scopes("Nightly")
      table.sort(scopes)
      assert.are.same({"f", "g"}, scopes)
    end)

    it("remember the blobs a trigger has seen, by etag", function()
      store:see_blob("f", "NewData", "in/a.csv", "0x1")
      store:see_blob("f", "NewData", "in/b.csv", "0x2")
      store:see_blob("f", "NewData", "in/a.csv", "0x3")
      assert.are.same({["in/a.csv"] = "0x3", ["in/b.csv"] = "0x2"}, store:blobs_seen("f", "NewData"))
      assert.are.same({}, store:blobs_seen("f", "Other"))
    end)
  end)
end

describe("the SQLite store shared by two processes' handles", function()
  it("gives a fire time to exactly one of them", function()
    local path = fresh_path()
    local a, b = assert(runs.open(path)), assert(runs.open(path))
    assert.is_true(a:claim_fire("f", "Nightly", T0, record(T0)))
    a:flush()
    assert.is_false(b:claim_fire("f", "Nightly", T0, record(T0)))
    assert.is_true(b:claim_fire("f", "Nightly", T0 + 60, record(T0 + 60)))
    b:flush()
    assert.is_false(a:claim_fire("f", "Nightly", T0 + 60, record(T0 + 60)))
    a:close()
    b:close()
  end)

  it("prunes old trigger runs but keeps each trigger's latest and those still in progress", function()
    local store = assert(runs.open(fresh_path()))
    for i = 0, 4 do
      local r = record(T0 + i * 3600, i == 1 and "InProgress" or "Succeeded")
      store:claim_fire("f", "Hourly", T0 + i * 3600, r)
    end
    store:claim_fire("f", "Daily", T0, record(T0, "Succeeded"))
    store:prune(T0 + 10 * 86400)
    local left = {}
    for _, r in ipairs(store:trigger_runs("f", "Hourly")) do left[#left + 1] = r.scheduledTime end
    assert.are.same({runs.iso8601(T0 + 3600), runs.iso8601(T0 + 4 * 3600)}, left)
    assert.are.equal(1, #store:trigger_runs("f", "Daily"))
    assert.are.equal(T0 + 4 * 3600, store:last_fire("f", "Hourly"))
    store:close()
  end)
end)
