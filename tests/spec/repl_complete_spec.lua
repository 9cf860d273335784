-- lufa.repl.complete: what Tab offers for the word before the cursor.
local complete = require("lufa.repl.complete").complete

local function candidates(text, env)
  local n, list = complete(text, env)
  return list, n
end

local function has(list, want)
  for _, v in ipairs(list) do if v == want then return true end end
  return false
end

describe("completion", function()
  it("completes globals and keywords", function()
    local list, n = candidates("x = pri")
    assert.equal(3, n)
    assert.same({ "print" }, list)
    local env = { funky = 1, fun = 2 }
    assert.same({ "fun", "function", "funky" }, (candidates("fun", env)))
    assert.same({ "while" }, (candidates("wh", {})))
  end)

  it("completes module fields after a dot", function()
    local list, n = candidates("string.fo")
    assert.same({ "format" }, list)
    assert.equal(2, n)
    assert.is_true(has((candidates("math.")), "huge"))
  end)

  it("completes fields of a value at hand, through __index tables but without calling code", function()
    local called = false
    local env = {
      res = { headers = {}, status = 200, body = "" },
      obj = setmetatable({ own = 1 }, { __index = { inherited = 2 } }),
      trap = setmetatable({}, { __index = function() called = true end }),
      factory = { pipelines = { retrain = {}, score = {} } },
    }
    assert.same({ "headers" }, (candidates("res.he", env)))
    assert.same({ "inherited", "own" }, (candidates("obj.", env)))
    assert.same({}, (candidates("trap.x", env)))
    assert.is_false(called)
    assert.same({ "retrain" }, (candidates("factory.pipelines.re", env)))
    assert.same({}, (candidates("missing.x", env)))
  end)

  it("completes methods after a colon: functions of the value and its metatable", function()
    local Class = { __index = { run = function() end, rename = function() end, rate = 3 } }
    local env = { obj = setmetatable({}, Class), s = "text" }
    assert.same({ "rename", "run" }, (candidates("obj:r", env)))
    assert.same({ "upper" }, (candidates("s:upp", env)))
    local task = require("lufa").spawn(function() end)
    env.t = task
    assert.same({ "wait" }, (candidates("t:wa", env)))
    task:wait()
  end)

  it("completes lufa's submodules as fields and module names inside require", function()
    local env = { lufa = require "lufa" }
    assert.is_true(has((candidates("lufa.", env)), "spawn"))
    assert.same({ "http" }, (candidates("lufa.htt", env)))
    assert.same({ "blob" }, (candidates("lufa.bl", env)))
    assert.is_true(has((candidates("lufa.blob.", env)), "client"))
    local list, n = candidates('local b = require "lufa.bl')
    assert.same({ "lufa.blob" }, list)
    assert.equal(#"lufa.bl", n)
    assert.is_true(has((candidates("require('lufa.blob.")), "lufa.blob.transfer"))
    assert.is_true(has((candidates('require "lufa.js')), "lufa.json"))  -- a C module (preloaded)
  end)

  it("completes a factory's pipeline names inside factory:run(\"…", function()
    local pipeline = require "lufa.pipeline"
    local factory = assert(pipeline.load_factory("examples/adf-retraining"))
    local env = { f = factory }
    local list, n = candidates('f:run("Look', env)
    assert.same({ "LookupPipelineDemo" }, list)
    assert.equal(4, n)
    assert.same({ "LookupPipelineDemo" }, (candidates("f:start('", env)))
    assert.same({}, (candidates('f:run("Nothing', env)))
    assert.is_true(has((candidates("f:", env)), "run"))
  end)

  it("completes a factory's activity names in activity_runs and rerun filters", function()
    local pipeline = require "lufa.pipeline"
    local factory = assert(pipeline.from_table{ name = "p", activities = {
      { name = "loop", type = "ForEach", typeProperties = { items = { value = "@createArray(1)", type = "Expression" },
        activities = { { name = "inner_wait", type = "Wait", typeProperties = { waitTimeInSeconds = 0 } } } } },
      { name = "last_wait", type = "Wait", typeProperties = { waitTimeInSeconds = 0 } },
    } })
    local env = { f = factory }
    assert.same({ "inner_wait" }, (candidates('f:activity_runs(id, {activityName = "inn', env)))
    assert.same({ "inner_wait", "last_wait", "loop" }, (candidates("f:rerun(id, {from = '", env)))
    assert.same({}, (candidates('f:activity_runs(id, {other = "inn', env)))
  end)

  it("offers nothing inside numbers or after a word character it cannot follow", function()
    assert.same({}, (candidates("x = 3.")))
    assert.same({}, (candidates("")))
  end)
end)
