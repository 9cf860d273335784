-- Rerunning a recorded run: ADF's rerun (same run group, same parameters), from the failed activity
-- (what succeeded keeps its output and is not executed) and from a named activity.
local json = require "lufa.json"
local E = require "lufa.error"
local activities = require "lufa.activities"
local pipeline = require "lufa.pipeline"
local runs = require "lufa.runs"
local util = require "tests.support.util"

local dir
setup(function() dir = util.tempdir() end)
teardown(function() os.execute("rm -rf " .. util.shell_quote(dir)) end)

-- Activity types that count their executions; "Fragile" fails while `broken[name]` is set.
local executed, broken = {}, {}
local function registry()
  local reg = activities.new(activities.root)
  reg:register("Count", {run = function(ctx)
    executed[ctx.name] = (executed[ctx.name] or 0) + 1
    return {n = executed[ctx.name], seen = ctx:property("seen")}
  end})
  reg:register("Fragile", {run = function(ctx)
    executed[ctx.name] = (executed[ctx.name] or 0) + 1
    if broken[ctx.name] then
      error(E.new{kind = "test", code = "broken", errorCode = "Broken1", message = ctx.name .. " is broken"}, 0)
    end
    return {fixed = true, seen = ctx:property("seen")}
  end})
  return reg
end

local function act(name, type_name, deps, props)
  local a = {name = name, type = type_name, typeProperties = json.object(props or {})}
  if deps then
    a.dependsOn = {}
    for _, d in ipairs(deps) do
      a.dependsOn[#a.dependsOn + 1] = {activity = d[1], dependencyConditions = {d[2] or "Succeeded"}}
    end
  end
  return a
end

local n = 0
local function factory(acts, props)
  n = n + 1
  local p = {activities = acts}
  for k, v in pairs(props or {}) do p[k] = v end
  local store = assert(runs.open(string.format("%s/rerun%d.db", dir, n)))
  local f = assert(pipeline.from_table({pipelines = {{name = "P", properties = p}}},
    {activities = registry(), store = store}))
  return f, store
end

local function statuses(f, run_id)
  local out, records = {}, {}
  for _, r in ipairs(f:activity_runs(run_id)) do
    out[r.activityName] = r.status
    records[r.activityName] = r
  end
  return out, records
end

before_each(function()
  executed, broken = {}, {}
end)

describe("rerun from the failure", function()
  it("keeps the outputs of what succeeded and runs the failed activity and what follows it", function()
    local f, store = factory{
      act("A", "Count"),
      act("B", "Fragile", {{"A"}}, {seen = "@activity('A').output.n"}),
      act("C", "Count", {{"B"}}),
    }
    broken.B = true
    local first = assert(f:run("P"))
    assert.are.equal("Failed", first.status)
    local st = statuses(f, first.runId)
    assert.are.same({A = "Succeeded", B = "Failed", C = "Skipped"}, st)

    broken.B = nil
    local handle = assert(f:rerun(first.runId, {from_failure = true}))
    local second = handle:wait()
    assert.are.equal("Succeeded", second.status)
    assert.are_not.equal(first.runId, second.runId)
    assert.are.equal(first.runGroupId, second.runGroupId)
    assert.are.same({A = 1, B = 2, C = 1}, executed)  -- A was not executed again
    local st2, recs = statuses(f, second.runId)
    assert.are.same({A = "Succeeded", B = "Succeeded", C = "Succeeded"}, st2)
    assert.are.equal(first.runId, recs.A.reusedFrom.pipelineRunId)
    assert.are.equal(1, recs.A.output.n)
    assert.are.equal(1, recs.B.output.seen)  -- B saw A's recorded output
    assert.is_false(store:get_pipeline_run(first.runId).isLatest)
    assert.is_true(store:get_pipeline_run(second.runId).isLatest)
  end)

  it("runs again an error handler's path when the activity it handled runs again", function()
    local f = factory{
      act("A", "Fragile"),
      act("OnFail", "Count", {{"A", "Failed"}}),
      act("Next", "Count", {{"A", "Succeeded"}}),
    }
    broken.A = true
    local first = assert(f:run("P"))
    assert.are.same({A = "Failed", OnFail = "Succeeded", Next = "Skipped"}, statuses(f, first.runId))
    broken.A = nil
    local second = assert(f:rerun(first.runId, {from_failure = true})):wait()
    -- OnFail succeeded before, but depends on A, which ran again and succeeded: now it is Skipped
    assert.are.same({A = "Succeeded", OnFail = "Skipped", Next = "Succeeded"}, statuses(f, second.runId))
    assert.are.equal("Succeeded", second.status)
  end)

  it("sets the variables again, so later activities see them", function()
    local f = factory({
      act("Set", "SetVariable", nil, {variableName = "v", value = "@concat('x', 'y')"}),
      act("Use", "Fragile", {{"Set"}}, {seen = "@variables('v')"}),
    }, {variables = {v = {type = "String"}}})
    broken.Use = true
    local first = assert(f:run("P"))
    broken.Use = nil
    local second = assert(f:rerun(first.runId, {from_failure = true})):wait()
    assert.are.equal("Succeeded", second.status)
    local _, recs = statuses(f, second.runId)
    assert.are.equal("xy", recs.Use.output.seen)
  end)
end)

describe("rerun from a named activity", function()
  it("reuses what does not depend on it", function()
    local f = factory{
      act("A", "Count"),
      act("B", "Count", {{"A"}}),
      act("C", "Count", {{"B"}}),
      act("D", "Count"),
    }
    local first = assert(f:run("P"))
    assert.are.equal("Succeeded", first.status)
    local second = assert(f:rerun(first.runId, {from = "b"})):wait()
    assert.are.equal("Succeeded", second.status)
    assert.are.same({A = 1, B = 2, C = 2, D = 1}, executed)
  end)

  it("names the activities there are when the one asked for is not there", function()
    local f = factory{act("A", "Count"), act("B", "Count")}
    local first = assert(f:run("P"))
    local h, err = f:rerun(first.runId, {from = "Nope"})
    assert.is_nil(h)
    assert.matches("no top%-level activity 'Nope'; it has: A, B", tostring(err))
  end)
end)

describe("a plain rerun", function()
  it("runs everything again with the same parameters", function()
    local f = factory({act("A", "Count", nil, {seen = "@pipeline().parameters.p"})},
      {parameters = {p = {type = "String"}}})
    local first = assert(f:run("P", {parameters = {p = "hello"}}))
    local second = assert(f:rerun(first.runId)):wait()
    assert.are.equal(2, executed.A)
    local _, recs = statuses(f, second.runId)
    assert.are.equal("hello", recs.A.output.seen)
  end)

  it("asks again for secret parameters, which the store does not keep", function()
    local f, store = factory({act("A", "Count")}, {parameters = {key = {type = "SecureString"}}})
    local first = assert(f:run("P", {parameters = {key = "s3cr3t-value-123"}}))
    local _, info = store:get_pipeline_run(first.runId)
    assert.is_nil(json.encode(info.origin):find("s3cr3t", 1, true))
    local h, err = f:rerun(first.runId)
    assert.is_nil(h)
    assert.matches("give them again %(%-%-param key=", tostring(err))
    local second = assert(f:rerun(first.runId, {parameters = {key = "s3cr3t-value-123"}})):wait()
    assert.are.equal("Succeeded", second.status)
  end)

  it("refuses a run that is still executing", function()
    local f = factory{act("W", "Wait", nil, {waitTimeInSeconds = 5})}
    local h = assert(f:start("P"))
    local r, err = f:rerun(h.runId)
    assert.is_nil(r)
    assert.matches("still InProgress", tostring(err))
    h:cancel("test over")
    h:wait()
  end)
end)

describe("records of ForEach iterations", function()
  it("carry the iteration they ran in, and a failed ForEach runs again as a whole", function()
    local f = factory{
      act("Loop", "ForEach", nil, {items = "@createArray(1, 2, 3)", isSequential = true,
        activities = {act("Inner", "Fragile", nil, {seen = "@item()"})}}),
    }
    broken.Inner = true
    local first = assert(f:run("P"))
    assert.are.equal("Failed", first.status)
    local iterations = {}
    for _, r in ipairs(f:activity_runs(first.runId, {activityName = "Inner"})) do
      iterations[#iterations + 1] = r.iteration
    end
    assert.are.same({"1", "2", "3"}, iterations)
    broken.Inner = nil
    local second = assert(f:rerun(first.runId, {from_failure = true})):wait()
    assert.are.equal("Succeeded", second.status)
    assert.are.equal(3, #f:activity_runs(second.runId, {activityName = "Inner"}))
    assert.are.equal(6, executed.Inner)
  end)
end)
