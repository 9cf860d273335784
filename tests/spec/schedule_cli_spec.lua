-- `lufa schedule` and `lufa trigger` from the command line: --next in UTC and local time across a DST
-- change (text and JSON), trigger stop/start kept in the store, --once running what fell due, validate
-- naming a broken trigger's JSON path while `lufa run` of a pipeline goes on, and misuse.
local json = require "lufa.json"
local runs = require "lufa.runs"
local util = require "tests.support.util"

local q = util.shell_quote
local lufa_bin = util.lufa_binary()
local dir, factory, store

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("a")
  p:close()
  return tonumber(out:match("exit=(%d+)%s*$")), (out:gsub("exit=%d+%s*$", ""))
end

local function lufa(...)
  local args = {}
  for i, a in ipairs{...} do args[i] = q(a) end
  return sh(q(lufa_bin) .. " " .. table.concat(args, " ") .. " --store " .. q(store))
end

local function trigger(name, props)
  util.write_file(factory .. "/trigger/" .. name .. ".json", json.encode{name = name, properties = props})
end

setup(function()
  dir = util.tempdir()
  factory = dir .. "/factory"
  store = dir .. "/runs.db"
  assert(require("lufa.fs").mkdir(factory .. "/pipeline", "700", true))
  assert(require("lufa.fs").mkdir(factory .. "/trigger", "700", true))
  util.write_file(factory .. "/pipeline/Retrain.json", json.encode{name = "Retrain", properties = {
    activities = {{name = "w", type = "Wait", typeProperties = {waitTimeInSeconds = 0}}}}})
  trigger("Nightly", {type = "ScheduleTrigger", runtimeState = "Started",
    typeProperties = {recurrence = {frequency = "Day", interval = 1, startTime = "2027-01-01T02:30:00",
      timeZone = "Pacific Standard Time", schedule = {hours = {2}, minutes = {30}}}},
    pipelines = {{pipelineReference = {referenceName = "Retrain", type = "PipelineReference"}}}})
end)
teardown(function() os.execute("rm -rf " .. q(dir)) end)

describe("lufa schedule --next", function()
  it("shows fire times in UTC and in the trigger's zone across the spring-forward change", function()
    local code, out = lufa("schedule", factory, "--next", "3", "--from", "2027-03-13T00:00:00Z")
    assert.are.equal(0, code, out)
    assert.are.equal(table.concat({
      "Nightly (ScheduleTrigger, Pacific Standard Time)",
      "  2027-03-13 10:30:00Z   2027-03-13 02:30:00 PST (-08:00)",
      "  2027-03-14 10:30:00Z   2027-03-14 03:30:00 PDT (-07:00)",
      "  2027-03-15 09:30:00Z   2027-03-15 02:30:00 PDT (-07:00)",
    }, "\n"), (out:gsub("%s+$", "")))
  end)

  it("gives the same as JSON", function()
    local code, out = lufa("schedule", factory, "--next", "2", "--from", "2027-11-06T00:00:00Z", "--json")
    assert.are.equal(0, code, out)
    local doc = assert(json.decode(out))
    assert.are.equal("Nightly", doc[1].name)
    assert.are.equal("Pacific Standard Time", doc[1].timeZone)
    assert.are.same({"2027-11-06T09:30:00Z", "2027-11-07T10:30:00Z"}, {doc[1].times[1].utc, doc[1].times[2].utc})
    assert.are.equal("2027-11-07 02:30:00 PST (-08:00)", doc[1].times[2]["local"])
  end)

  it("refuses a count that is not a positive whole number", function()
    local code, out = lufa("schedule", factory, "--next", "zero")
    assert.are.equal(2, code)
    assert.matches("%-%-next expects a positive whole number", out)
  end)
end)

describe("lufa trigger stop|start", function()
  it("keeps the runtime state in the store; --next marks a stopped trigger", function()
    local code, out = lufa("trigger", "stop", "Nightly", factory)
    assert.are.equal(0, code, out)
    assert.matches("trigger Nightly stopped", out)
    code, out = lufa("schedule", factory, "--next", "1", "--from", "2027-03-13T00:00:00Z")
    assert.matches("%[stopped%]", out)
    -- the store knows the trigger now: the factory may be left out
    code, out = lufa("trigger", "start", "Nightly")
    assert.are.equal(0, code, out)
    code, out = lufa("schedule", factory, "--next", "1", "--from", "2027-03-13T00:00:00Z")
    assert.is_nil(out:find("[stopped]", 1, true))
  end)

  it("names what is wrong with a trigger it cannot find", function()
    local code, out = lufa("trigger", "stop", "Nope", factory)
    assert.are.equal(2, code)
    assert.matches("has no trigger 'Nope'", out)
    code, out = lufa("trigger", "pause", "Nightly")
    assert.are.equal(2, code)
    assert.matches("usage: lufa trigger start|stop NAME", out)
  end)
end)

describe("lufa schedule --once", function()
  it("first records its check, then runs what fell due since, and exits", function()
    local f2 = dir .. "/once"
    assert(require("lufa.fs").mkdir(f2 .. "/trigger", "700", true))
    assert(require("lufa.fs").mkdir(f2 .. "/pipeline", "700", true))
    util.write_file(f2 .. "/pipeline/Retrain.json", util.read_file(factory .. "/pipeline/Retrain.json"))
    local function often(start)
      util.write_file(f2 .. "/trigger/Often.json", json.encode{name = "Often", properties = {
        type = "ScheduleTrigger", runtimeState = "Started",
        typeProperties = {recurrence = {frequency = "Minute", interval = 1, startTime = os.date("!%Y-%m-%dT%H:%M:%SZ", start)}},
        pipelines = {{pipelineReference = {referenceName = "Retrain", type = "PipelineReference"}}}}})
    end
    often(math.floor(runs.wall_time()) + 3600)
    local code, out = lufa("schedule", f2, "--once")
    assert.are.equal(0, code, out)
    assert.matches("first check", out)
    -- the first fire time comes just after the check that was recorded, however long that took
    local s0 = assert(runs.open(store))
    local checked = s0:trigger_state(f2, "Often").checked   -- the scope is the factory's absolute path
    s0:close()
    assert.is_number(checked)
    local start = math.floor(checked) + 1
    often(start)
    require("lufa").sleep(math.max(0, start + 0.3 - runs.wall_time()))
    code, out = lufa("schedule", f2, "--once")
    assert.are.equal(0, code, out)
    assert.matches("started run", out)
    local s = assert(runs.open(store))
    local list = s:pipeline_runs({trigger = "Often"})
    s:close()
    assert.are.equal(1, #list)
    assert.are.equal("Succeeded", list[1].status)
  end)
end)

describe("lufa validate and lufa run with a broken trigger", function()
  it("validate names the JSON path; run of a pipeline is not stopped by it", function()
    trigger("Broken", {type = "ScheduleTrigger", runtimeState = "Started",
      typeProperties = {recurrence = {frequency = "Fortnightly", interval = 1, startTime = "2027-01-01T00:00:00Z"}},
      pipelines = {{pipelineReference = {referenceName = "Retrain", type = "PipelineReference"}}}})
    local code, out = lufa("validate", factory)
    assert.are_not.equal(0, code)
    assert.matches("Broken%.json: %$%.properties%.typeProperties%.recurrence%.frequency: error:", out)
    code, out = lufa("run", factory, "Retrain", "--quiet")
    assert.are.equal(0, code, out)
    assert.matches("Broken%.json: %$%.properties%.typeProperties%.recurrence%.frequency: warning:", out)
    os.remove(factory .. "/trigger/Broken.json")
  end)
end)
