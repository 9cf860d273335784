-- ADF run semantics: dependency conditions, Skipped propagation, the leaf rule and the
-- documented error-handling patterns, parallelism, policies and cancellation.
local lufa = require "lufa"
local json = require "lufa.json"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local S = dofile(here .. "pipeline_support.lua")
local act = S.act

describe("dependency conditions", function()
  -- Predecessor X ends with each status; Y depends on X with each condition set.
  local function predecessor(status)
    if status == "Succeeded" then return {act("X", "Ok")} end
    if status == "Failed" then return {act("X", "Boom")} end
    -- Skipped: X needs W to succeed, and W fails.
    return {act("W", "Boom"), act("X", "Ok", {{"W", "Succeeded"}})}
  end
  local cases = {
    {"Succeeded", {"Succeeded"}, "ran"}, {"Failed", {"Succeeded"}, "skipped"},
    {"Skipped", {"Succeeded"}, "skipped"},
    {"Succeeded", {"Failed"}, "skipped"}, {"Failed", {"Failed"}, "ran"}, {"Skipped", {"Failed"}, "skipped"},
    {"Succeeded", {"Skipped"}, "skipped"}, {"Failed", {"Skipped"}, "skipped"}, {"Skipped", {"Skipped"}, "ran"},
    {"Succeeded", {"Completed"}, "ran"}, {"Failed", {"Completed"}, "ran"}, {"Skipped", {"Completed"}, "skipped"},
    {"Succeeded", {"Failed", "Skipped"}, "skipped"}, {"Failed", {"Failed", "Skipped"}, "ran"},
    {"Skipped", {"Failed", "Skipped"}, "ran"},
    {"Succeeded", {"Succeeded", "Failed"}, "ran"}, {"Failed", {"Succeeded", "Failed"}, "ran"},
    {"Skipped", {"Succeeded", "Skipped"}, "ran"},
  }
  for _, c in ipairs(cases) do
    local pred, conds, expected = c[1], c[2], c[3]
    it(string.format("X %s, condition [%s] -> Y %s", pred, table.concat(conds, ", "), expected), function()
      local acts = predecessor(pred)
      acts[#acts + 1] = act("Y", "Ok", {{"X", table.unpack(conds)}})
      local _, st = S.run(S.factory(acts))
      assert.are.equal(pred, st.X)
      assert.are.equal(expected == "ran" and "Succeeded" or "Skipped", st.Y)
    end)
  end

  it("ANDs several dependencies and ORs conditions within one", function()
    local f = S.factory{
      act("A", "Ok"), act("B", "Boom"),
      act("BothSucceeded", "Ok", {{"A", "Succeeded"}, {"B", "Succeeded"}}),
      act("AOkBFailed", "Ok", {{"A", "Succeeded"}, {"B", "Failed"}}),
      act("AnyOfB", "Ok", {{"A", "Succeeded"}, {"B", "Succeeded", "Failed"}}),
    }
    local _, st = S.run(f)
    assert.are.equal("Skipped", st.BothSucceeded)
    assert.are.equal("Succeeded", st.AOkBFailed)
    assert.are.equal("Succeeded", st.AnyOfB)
  end)

  it("propagates Skipped down a chain until an Upon Skip edge", function()
    local f = S.factory{
      act("A", "Boom"), act("B", "Ok", {{"A", "Succeeded"}}), act("C", "Ok", {{"B", "Succeeded"}}),
      act("D", "Ok", {{"C", "Completed"}}), act("E", "Ok", {{"C", "Skipped"}}),
    }
    local _, st, recs = S.run(f)
    assert.are.same({A = "Failed", B = "Skipped", C = "Skipped", D = "Skipped", E = "Succeeded"}, st)
    assert.are.equal("dependency conditions not met", recs.B.reason)
  end)
end)

describe("pipeline status (leaf rule) and ADF's error-handling patterns", function()
  local function pattern(upstream_fails, build)
    local a = act("A", upstream_fails and "Boom" or "Ok")
    local acts = build(a)
    return S.run(S.factory(acts))
  end

  it("try-catch: a failure handled by an Upon Failure leaf succeeds", function()
    local build = function(a) return {a, act("H", "Ok", {{"A", "Failed"}})} end
    local rec, st = pattern(true, build)
    assert.are.equal("Succeeded", st.H)
    assert.are.equal("Succeeded", rec.status)
    rec, st = pattern(false, build)
    assert.are.equal("Skipped", st.H)
    assert.are.equal("Succeeded", rec.status)
  end)

  it("do-if-else: the pipeline fails when upstream fails, though the else branch ran", function()
    local build = function(a)
      return {a, act("S", "Ok", {{"A", "Succeeded"}}), act("F", "Ok", {{"A", "Failed"}})}
    end
    local rec, st = pattern(true, build)
    assert.are.same({A = "Failed", S = "Skipped", F = "Succeeded"}, st)
    assert.are.equal("Failed", rec.status)
    assert.are.equal("Operation on target A failed: it broke", rec.message)
    rec = pattern(false, build)
    assert.are.equal("Succeeded", rec.status)
  end)

  it("do-if-skip-else: a dummy on the success branch's skip makes the pipeline succeed", function()
    local build = function(a)
      return {a, act("S", "Ok", {{"A", "Succeeded"}}), act("F", "Ok", {{"A", "Failed"}}),
        act("D", "Ok", {{"S", "Skipped"}})}
    end
    local rec, st = pattern(true, build)
    assert.are.same({A = "Failed", S = "Skipped", F = "Succeeded", D = "Succeeded"}, st)
    assert.are.equal("Succeeded", rec.status)
    rec, st = pattern(false, build)
    assert.are.same({A = "Succeeded", S = "Succeeded", F = "Skipped", D = "Skipped"}, st)
    assert.are.equal("Succeeded", rec.status)
  end)

  it("generic error handling: one handler on [Failed, Skipped] of the last step", function()
    for _, failing in ipairs{"A1", "A2", "A3", "none"} do
      local function t(n) return failing == n and "Boom" or "Ok" end
      local f = S.factory{
        act("A1", t("A1")), act("A2", t("A2"), {{"A1", "Succeeded"}}), act("A3", t("A3"), {{"A2", "Succeeded"}}),
        act("H", "Ok", {{"A3", "Failed", "Skipped"}}),
      }
      local rec, st = S.run(f)
      assert.are.equal("Succeeded", rec.status, failing)
      assert.are.equal(failing == "none" and "Skipped" or "Succeeded", st.H, failing)
    end
  end)

  it("a failing handler fails the pipeline", function()
    local rec = S.run(S.factory{act("A", "Boom"), act("H", "Boom", {{"A", "Failed"}}, {message = "handler broke"})})
    assert.are.equal("Failed", rec.status)
    assert.are.equal("Operation on target H failed: handler broke", rec.message)
  end)

  it("Upon Completion to a successful logger masks the failure", function()
    local rec = S.run(S.factory{act("A", "Boom"), act("Log", "Ok", {{"A", "Completed"}})})
    assert.are.equal("Succeeded", rec.status)
  end)

  it("an independent failing branch fails the pipeline but does not stop the other", function()
    local rec, st = S.run(S.factory{act("A", "Boom"), act("B", "Ok", nil, {sleep = 0.02}),
      act("C", "Ok", {{"B", "Succeeded"}})})
    assert.are.equal("Failed", rec.status)
    assert.are.equal("Succeeded", st.C)
  end)

  it("inactive activities count as their onInactiveMarkAs status", function()
    local f = S.factory{
      act("A", "Boom", nil, nil, {state = "Inactive", onInactiveMarkAs = "Succeeded"}),
      act("B", "Ok", {{"A", "Succeeded"}}),
      act("C", "Ok", nil, nil, {state = "Inactive", onInactiveMarkAs = "Failed"}),
      act("D", "Ok", {{"C", "Failed"}}),
    }
    local rec, st = S.run(f)
    assert.are.same({A = "Inactive", B = "Succeeded", C = "Inactive", D = "Succeeded"}, st)
    assert.are.equal("Succeeded", rec.status)
  end)
end)

describe("parallelism", function()
  it("runs independent activities at the same time and dependent ones after", function()
    local reg, log = S.registry()
    local f = S.factory({act("A", "Ok", nil, {sleep = 0.05}), act("B", "Ok", nil, {sleep = 0.05}),
      act("C", "Ok", {{"A", "Succeeded"}}, {sleep = 0.01})}, nil, reg)
    S.run(f)
    local t = {}
    for _, e in ipairs(log) do t[e.name .. "." .. e.event] = e.time end
    assert.is_true(t["B.start"] < t["A.end"] and t["A.start"] < t["B.end"], "A and B overlap")
    assert.is_true(t["C.start"] >= t["A.end"], "C starts after A ends")
  end)

  it("ForEach never runs more than batchCount iterations at once, and does use them", function()
    for _, case in ipairs{{3, false, 3}, {5, false, 5}, {4, true, 1}} do
      local reg = S.registry()
      local items = {}
      for i = 1, 12 do items[i] = i end
      local tp = {items = json.array(items), batchCount = case[1], isSequential = case[2],
        activities = {act("Inner", "Probe", nil, {sleep = 0.01, item = "@item()"})}}
      local f = S.factory({act("Loop", "ForEach", nil, tp)}, nil, reg)
      local rec, _, recs = S.run(f)
      assert.are.equal("Succeeded", rec.status)
      assert.are.equal(case[3], S.counters().peak)
      assert.are.equal(12, #f:activity_runs(rec.runId, {activityName = "Inner"}))
      assert.are.equal("Succeeded", recs.Loop.status)
    end
  end)
end)

describe("policies", function()
  it("a timeout cancels the attempt, fails it, and runs its cleanup", function()
    local reg, log = S.registry()
    local f = S.factory({act("Slow", "Ok", nil, {sleep = 5}, {policy = {timeout = "0.00:00:00.030"}}),
      act("After", "Ok", {{"Slow", "Failed"}})}, nil, reg)
    local rec, st, recs = S.run(f)
    assert.are.equal("Failed", st.Slow)
    assert.are.equal("ActivityTimedOut", recs.Slow.error.errorCode)
    assert.are.equal("Succeeded", st.After)
    assert.are.equal("Succeeded", rec.status)
    local events = {}
    for _, e in ipairs(log) do if e.name == "Slow" then events[#events + 1] = e.event end end
    assert.are.same({"start", "cleanup"}, events)
  end)

  it("retries a failing activity, waiting retryIntervalInSeconds, each attempt recorded", function()
    local reg, log = S.registry()
    local f = S.factory({act("F", "Flaky", nil, {failures = 2}, {policy = {retry = 2, retryIntervalInSeconds = 0.02}})},
      nil, reg)
    local rec = S.run(f)
    assert.are.equal("Succeeded", rec.status)
    local attempts = f:activity_runs(rec.runId, {activityName = "F"})
    assert.are.equal(3, #attempts)
    assert.are.same({"Failed", "Failed", "Succeeded"}, {attempts[1].status, attempts[2].status, attempts[3].status})
    assert.are.equal(json.null, attempts[1].retryAttempt)
    assert.are.equal(2, attempts[3].retryAttempt)
    assert.are_not.equal(attempts[1].activityRunId, attempts[2].activityRunId)
    assert.is_true(log[2].time - log[1].time >= 0.02, "waited the retry interval")
  end)

  it("gives up after policy.retry attempts (strings accepted as numbers)", function()
    local f = S.factory{act("F", "Flaky", nil, {failures = 5}, {policy = {retry = "1", retryIntervalInSeconds = "0.01"}})}
    local rec, st = S.run(f)
    assert.are.equal("Failed", rec.status)
    assert.are.equal("Failed", st.F)
    assert.are.equal(2, #f:activity_runs(rec.runId, {activityName = "F"}))
  end)

  it("secureInput and secureOutput keep values out of records but not out of expressions", function()
    local f = S.factory{
      act("Hidden", "Ok", nil, {value = "classified"}, {policy = {secureInput = "true", secureOutput = true}}),
      act("Reader", "Ok", {{"Hidden", "Succeeded"}}, {value = "@activity('Hidden').output.value"}),
    }
    local rec, _, recs = S.run(f)
    assert.are.equal("Succeeded", rec.status)
    assert.is_nil(json.encode(recs.Hidden):find("classified", 1, true))
    assert.are.equal("classified", recs.Reader.output.value)
    assert.are.equal("classified", recs.Reader.input.value)
  end)
end)

describe("cancellation", function()
  it("cancels running activities, runs their cleanups, starts nothing new, records it", function()
    local reg, log = S.registry()
    local f = S.factory({act("Long", "Ok", nil, {sleep = 5}), act("Next", "Ok", {{"Long", "Completed"}}),
      act("Quick", "Ok")}, nil, reg)
    local events = {}
    local handle = assert(f:start("P", {on_event = function(e)
      if e.type == "activity" then events[#events + 1] = e.activityName .. ":" .. e.status end
    end}))
    lufa.spawn(function() lufa.sleep(0.03); handle:cancel() end)
    local rec = handle:wait()
    assert.are.equal("Cancelled", rec.status)
    local st = {}
    for _, r in ipairs(f:activity_runs(rec.runId)) do st[r.activityName] = r.status end
    assert.are.same({Long = "Cancelled", Next = "Skipped", Quick = "Succeeded"}, st)
    local cleaned = false
    for _, e in ipairs(log) do if e.name == "Long" and e.event == "cleanup" then cleaned = true end end
    assert.is_true(cleaned)
    assert.truthy(table.concat(events, " "):find("Long:Cancelled", 1, true))
  end)

  it("reaches activities inside containers", function()
    local reg, log = S.registry()
    local tp = {items = {1, 2, 3}, activities = {act("Inner", "Ok", nil, {sleep = 5})}}
    local f = S.factory({act("Loop", "ForEach", nil, tp)}, nil, reg)
    local handle = assert(f:start("P"))
    lufa.spawn(function() lufa.sleep(0.02); handle:cancel("user") end)
    local rec = handle:wait()
    assert.are.equal("Cancelled", rec.status)
    local inner = f:activity_runs(rec.runId, {activityName = "Inner"})
    assert.are.equal(3, #inner)
    for _, r in ipairs(inner) do assert.are.equal("Cancelled", r.status) end
    local cleanups = 0
    for _, e in ipairs(log) do if e.event == "cleanup" then cleanups = cleanups + 1 end end
    assert.are.equal(3, cleanups)
  end)
end)

describe("run records", function()
  it("have ADF's monitoring shape", function()
    local f = S.factory({act("A", "Ok", nil, {value = 7}), act("B", "Boom", {{"A", "Succeeded"}})},
      {parameters = {n = {type = "Int", defaultValue = 3}}})
    local rec, _, recs = S.run(f, "P", {parameters = {n = "5"}})
    local guid = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
    assert.truthy(rec.runId:match(guid))
    assert.are.equal(rec.runId, rec.runGroupId)
    assert.are.equal("P", rec.pipelineName)
    assert.are.equal("5", rec.parameters.n)
    assert.are.equal("Manual", rec.invokedBy.invokedByType)
    assert.truthy(rec.runStart:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%d%dZ$"))
    assert.are.equal("number", type(rec.durationInMs))
    assert.are.equal("Failed", rec.status)
    local a = recs.A
    assert.truthy(a.activityRunId:match(guid))
    assert.are.equal(rec.runId, a.pipelineRunId)
    assert.are.equal("Ok", a.activityType)
    assert.are.equal(7, a.output.value)
    assert.are.equal(7, a.input.value)
    assert.are.same({errorCode = "", message = "", failureType = "", target = "A"}, a.error)
    assert.are.same({errorCode = "Boom42", message = "it broke", failureType = "UserError", target = "B"},
      recs.B.error)
    assert.are.equal(rec, f.runs:get_pipeline_run(rec.runId))
    -- Every record is plain JSON.
    assert.truthy(json.encode(rec))
    assert.truthy(json.encode(a))
  end)

  it("emits events for every state change", function()
    local events = {}
    local f = S.factory{act("A", "Ok"), act("B", "Ok", {{"A", "Failed"}})}
    S.run(f, "P", {on_event = function(e)
      events[#events + 1] = e.type .. ":" .. (e.activityName or "-") .. ":" .. e.status
    end})
    assert.are.same({"pipeline:-:InProgress", "activity:A:InProgress", "activity:A:Succeeded",
      "activity:B:Skipped", "pipeline:-:Succeeded"}, events)
  end)
end)
