-- Built-in control-flow activities, parameters, variables, the return value, secrets and
-- the activity registry (overriding a built-in, user folders).
local lufa = require "lufa"
local json = require "lufa.json"
local secret = require "lufa.secret"
local pipeline = require "lufa.pipeline"
local activities = require "lufa.activities"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local S = dofile(here .. "pipeline_support.lua")
local act = S.act

describe("control-flow activities", function()
  it("Wait waits waitTimeInSeconds", function()
    local reg, log = S.registry()
    local f = S.factory({act("W", "Wait", nil, {waitTimeInSeconds = 0.03}), act("After", "Ok", {{"W", "Succeeded"}})},
      nil, reg)
    local t0 = lufa.now()
    local rec = S.run(f)
    assert.are.equal("Succeeded", rec.status)
    assert.is_true(log[1].time - t0 >= 0.03)
  end)

  it("SetVariable and AppendVariable update typed variables", function()
    local f = S.factory({
      act("Set", "SetVariable", nil, {variableName = "name", value = "@concat('model-', string(pipeline().parameters.n))"}),
      act("Add1", "AppendVariable", {{"Set", "Succeeded"}}, {variableName = "log", value = "@variables('name')"}),
      act("Add2", "AppendVariable", {{"Add1", "Succeeded"}}, {variableName = "log", value = "second"}),
      act("Show", "Ok", {{"Add2", "Succeeded"}}, {value = "@variables('log')"}),
    }, {parameters = {n = {type = "Int", defaultValue = 4}},
        variables = {name = {type = "String"}, log = {type = "Array", defaultValue = {}}}})
    local rec, _, recs = S.run(f)
    assert.are.equal("Succeeded", rec.status)
    assert.are.same({"model-4", "second"}, recs.Show.output.value)
    assert.are.same({name = "name", value = "model-4"}, recs.Set.output)
  end)

  it("SetVariable fails on a value of the wrong type", function()
    local f = S.factory({act("Set", "SetVariable", nil, {variableName = "list", value = "text"})},
      {variables = {list = {type = "Array"}}})
    local rec, st, recs = S.run(f)
    assert.are.equal("Failed", rec.status)
    assert.are.equal("Failed", st.Set)
    assert.are.equal("The variable 'list' of type 'Array' cannot be updated with a value of type 'String'",
      recs.Set.error.message)
  end)

  it("IfCondition runs the branch the expression selects", function()
    for _, flag in ipairs{true, false} do
      local f = S.factory({act("If", "IfCondition", nil, {
        expression = {value = "@equals(pipeline().parameters.flag, true)", type = "Expression"},
        ifTrueActivities = {act("Yes", "Ok")}, ifFalseActivities = {act("No", "Ok")}})},
        {parameters = {flag = {type = "Bool"}}})
      local rec, st = S.run(f, "P", {parameters = {flag = tostring(flag)}})
      assert.are.equal("Succeeded", rec.status)
      assert.are.equal(flag and "Succeeded" or nil, st.Yes)
      assert.are.equal((not flag) and "Succeeded" or nil, st.No)
    end
  end)

  it("IfCondition fails when its branch fails (leaf rule inside the branch)", function()
    local f = S.factory{act("If", "IfCondition", nil, {expression = "@equals(1, 1)",
      ifTrueActivities = {act("Bad", "Boom"), act("Catch", "Ok", {{"Bad", "Failed"}})}}),
      act("Bad2Host", "IfCondition", nil, {expression = "@equals(1, 1)", ifTrueActivities = {act("Bad2", "Boom")}})}
    local rec, st, recs = S.run(f)
    assert.are.equal("Succeeded", st.If, "a handled failure inside the branch")
    assert.are.equal("Failed", st.Bad2Host)
    assert.truthy(recs.Bad2Host.error.message:find("inner activity 'Bad2': it broke", 1, true))
    assert.are.equal("Failed", rec.status)
  end)

  it("IfCondition rejects a non-boolean expression", function()
    local rec, _, recs = S.run(S.factory{act("If", "IfCondition", nil, {expression = "@concat('tr', 'ue')",
      ifTrueActivities = {act("Yes", "Ok")}})})
    assert.are.equal("Failed", rec.status)
    assert.truthy(recs.If.error.message:find("must evaluate to a boolean", 1, true))
  end)

  it("Switch picks the matching case or the default", function()
    for _, case in ipairs{{"train", "T"}, {"score", "Sc"}, {"Train", "D"}} do
      local f = S.factory({act("Sw", "Switch", nil, {on = "@pipeline().parameters.mode",
        cases = {{value = "train", activities = {act("T", "Ok")}}, {value = "score", activities = {act("Sc", "Ok")}}},
        defaultActivities = {act("D", "Ok")}})}, {parameters = {mode = {type = "String"}}})
      local _, st = S.run(f, "P", {parameters = {mode = case[1]}})
      assert.are.equal("Succeeded", st[case[2]], case[1])
      local ran = 0
      for _, n in ipairs{"T", "Sc", "D"} do if st[n] then ran = ran + 1 end end
      assert.are.equal(1, ran)
    end
  end)

  it("ForEach gives each iteration its item and keeps going after a failure", function()
    local f = S.factory({act("Loop", "ForEach", nil, {items = "@pipeline().parameters.models", isSequential = true,
      activities = {
        act("Check", "IfCondition", nil, {expression = "@equals(item(), 'bad')",
          ifTrueActivities = {act("Fails", "Boom")}}),
        act("Collect", "AppendVariable", {{"Check", "Succeeded"}}, {variableName = "seen", value = "@item()"}),
      }})}, {parameters = {models = {type = "Array"}}, variables = {seen = {type = "Array"}}})
    local handle = assert(f:start("P", {parameters = {models = '["a", "bad", "c"]'}}))
    local rec = handle:wait()
    assert.are.equal("Failed", rec.status)
    assert.are.same({"a", "c"}, handle.run:get_variable("seen"))
    assert.are.equal(3, #f:activity_runs(rec.runId, {activityName = "Check"}))
    local loop = f:activity_runs(rec.runId, {activityName = "Loop"})[1]
    assert.truthy(loop.error.message:find("1 of 3 iterations failed", 1, true))
  end)

  it("ForEach fails when items is not an array", function()
    local rec, _, recs = S.run(S.factory{act("Loop", "ForEach", nil, {items = "@concat('a')",
      activities = {act("I", "Ok")}})})
    assert.are.equal("Failed", rec.status)
    assert.truthy(recs.Loop.error.message:find("must evaluate to an array", 1, true))
  end)

  it("Until loops until its expression is true", function()
    local f = S.factory({act("Loop", "Until", nil, {expression = "@equals(length(variables('ticks')), 3)",
      timeout = "0.00:01:00", activities = {act("Tick", "AppendVariable", nil, {variableName = "ticks", value = 1})}})},
      {variables = {ticks = {type = "Array"}}})
    local rec, _, recs = S.run(f)
    assert.are.equal("Succeeded", rec.status)
    assert.are.equal(3, recs.Loop.output.iterations)
  end)

  it("Until fails when its timeout passes, cancelling the running iteration", function()
    local reg, log = S.registry()
    -- the iteration outlasts the timeout by far, so the timeout always finds it running
    local f = S.factory({act("Loop", "Until", nil, {expression = "@equals(1, 2)", timeout = "00:00:00.05",
      activities = {act("Slow", "Ok", nil, {sleep = 30})}})}, nil, reg)
    local rec, _, recs = S.run(f)
    assert.are.equal("Failed", rec.status)
    assert.are.equal("UntilTimedOut", recs.Loop.error.errorCode)
    local last = f:activity_runs(rec.runId, {activityName = "Slow"})
    assert.are.equal(1, #last)
    assert.are.equal("Cancelled", last[1].status)
    assert.truthy(#log > 0)
  end)

  it("Filter keeps the items whose condition holds", function()
    local f = S.factory{act("Keep", "Filter", nil, {items = {1, 5, 2, 8}, condition = "@greater(item(), 2)"}),
      act("Show", "Ok", {{"Keep", "Succeeded"}}, {value = "@activity('Keep').output.value"})}
    local rec, _, recs = S.run(f)
    assert.are.equal("Succeeded", rec.status)
    assert.are.same({5, 8}, recs.Keep.output.Value)
    assert.are.equal(4, recs.Keep.output.ItemsCount)
    assert.are.same({5, 8}, recs.Show.output.value)
  end)

  it("Fail fails with the given message and error code", function()
    local f = S.factory({act("Stop", "Fail", nil, {message = "@concat('bad model ', pipeline().parameters.m)",
      errorCode = "E42"})}, {parameters = {m = {type = "String", defaultValue = "x"}}})
    local rec, _, recs = S.run(f)
    assert.are.equal("Failed", rec.status)
    assert.are.same({errorCode = "E42", message = "bad model x", failureType = "UserError", target = "Stop"},
      recs.Stop.error)
    assert.are.equal("Operation on target Stop failed: bad model x", rec.message)
  end)

  it("ExecutePipeline runs a child, waits, and reads its return value", function()
    local child = {name = "Child", properties = {parameters = {x = {type = "Int"}}, activities = {
      act("Ret", "SetVariable", nil, {variableName = "pipelineReturnValue", setSystemVariable = true, value = {
        {key = "doubled", value = {type = "Expression", content = "@mul(pipeline().parameters.x, 2)"}},
        {key = "caller", value = {type = "Expression", content = "@pipeline()?.TriggeredByPipelineName"}},
        {key = "fixed", value = {type = "Int", content = 7}},
      }}),
    }}}
    local f = S.factory({
      act("Call", "ExecutePipeline", nil, {pipeline = {referenceName = "child", type = "PipelineReference"},
        parameters = {x = 21}, waitOnCompletion = true}),
      act("Use", "Ok", {{"Call", "Succeeded"}}, {value = "@activity('Call').output.pipelineReturnValue.doubled"}),
    }, nil, nil, {pipelines = {child}})
    local rec, _, recs = S.run(f)
    assert.are.equal("Succeeded", rec.status)
    assert.are.equal(42, recs.Use.output.value)
    assert.are.equal("P", recs.Call.output.pipelineReturnValue.caller)
    assert.are.equal(7, recs.Call.output.pipelineReturnValue.fixed)
    local child_rec = f.runs:get_pipeline_run(recs.Call.output.pipelineRunId)
    assert.are.equal("Child", child_rec.pipelineName)
    assert.are.equal(rec.runId, child_rec.invokedBy.pipelineRunId)
  end)

  it("ExecutePipeline fails when a waited-for child fails", function()
    local child = {name = "Child", properties = {activities = {act("X", "Boom")}}}
    local rec, _, recs = S.run(S.factory({act("Call", "ExecutePipeline", nil,
      {pipeline = {referenceName = "Child", type = "PipelineReference"}, waitOnCompletion = "true"})},
      nil, nil, {pipelines = {child}}))
    assert.are.equal("Failed", rec.status)
    assert.truthy(recs.Call.error.message:find("ended Failed", 1, true))
  end)
end)

describe("parameters", function()
  it("converts supplied strings to declared types and uses defaults", function()
    local f = S.factory({act("A", "Ok", nil, {value = "@createArray(pipeline().parameters.i, pipeline().parameters.f, " ..
      "pipeline().parameters.b, pipeline().parameters.o, pipeline().parameters.s)"})},
      {parameters = {i = {type = "Int"}, f = {type = "Float"}, b = {type = "Bool"}, o = {type = "Object"},
        s = {type = "String", defaultValue = "dflt"}}})
    local rec, _, recs = S.run(f, "P", {parameters = {i = "3", f = "2.5", b = "false", o = '{"k": 1}'}})
    assert.are.equal("Succeeded", rec.status)
    assert.are.same({3, 2.5, false, {k = 1}, "dflt"}, recs.A.output.value)
    assert.are.equal(math.type(recs.A.output.value[1]), "integer")
  end)

  it("refuses missing, unknown and ill-typed parameters", function()
    local f = S.factory({act("A", "Ok")}, {parameters = {n = {type = "Int"}}})
    local rec, err = f:run("P")
    assert.is_nil(rec)
    assert.are.equal("pipeline 'P' needs a value for parameter 'n' (type Int)", err.message)
    rec, err = f:run("P", {parameters = {n = "ten"}})
    assert.is_nil(rec)
    assert.are.equal("parameter 'n' of pipeline 'P' must be an integer (type Int)", err.message)
    rec, err = f:run("P", {parameters = {n = 1, extra = 2}})
    assert.is_nil(rec)
    assert.are.equal("pipeline 'P' has no parameter 'extra'", err.message)
  end)

  it("keeps SecureString values out of records and events", function()
    local reg = S.registry()
    local seen
    reg:register("UsesKey", {run = function(ctx)
      seen = ctx:parameter("key")
      ctx:log("info", "using %s", ctx:parameter("key"))
      return {echo = ctx:property("value")}
    end})
    local f = S.factory({act("A", "UsesKey", nil, {value = "@pipeline().parameters.key"})},
      {parameters = {key = {type = "SecureString"}}}, reg)
    local events = {}
    local rec, _, recs = S.run(f, "P", {parameters = {key = "hunter2-secret"},
      on_event = function(e) events[#events + 1] = json.encode(e) end})
    assert.are.equal("Succeeded", rec.status)
    assert.is_true(secret.is(seen))
    assert.are.equal("hunter2-secret", secret.expose(seen))
    local everything = json.encode(rec) .. json.encode(recs.A) .. table.concat(events)
    assert.is_nil(everything:find("hunter2", 1, true))
    assert.truthy(everything:find("using <redacted>", 1, true))
  end)
end)

describe("the activity registry", function()
  it("lets a user replace a built-in type in a few lines", function()
    local waited = {}
    activities.register("Wait", {
      run = function(ctx)
        waited[#waited + 1] = ctx:property("waitTimeInSeconds")
        return {skipped = true}
      end,
    })
    local ok, err = pcall(function()
      local f = assert(pipeline.from_table{name = "P", properties = {activities = {
        {name = "W", type = "Wait", typeProperties = {waitTimeInSeconds = 3600}}}}})
      local rec = assert(f:run("P"))
      assert.are.equal("Succeeded", rec.status)
    end)
    activities.unregister("Wait")
    assert(ok, err)
    assert.are.same({3600}, waited)
    assert.are.equal(activities.builtin("Wait"), (activities.get("Wait")))
  end)

  it("loads types from a user folder given to the factory", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    local fh = assert(io.open(dir .. "/Greet.lua", "w"))
    fh:write("return { run = function(ctx) return { text = 'hello ' .. ctx:property('who') } end }\n")
    fh:close()
    local f = assert(pipeline.from_table({name = "P", properties = {activities = {
      {name = "G", type = "Greet", typeProperties = {who = "@pipeline().Pipeline"}}}}}, {activity_folders = {dir}}))
    local rec, _, recs = S.run(f)
    os.execute("rm -rf " .. dir)
    assert.are.equal("Succeeded", rec.status)
    assert.are.equal("hello P", recs.G.output.text)
  end)

  it("rejects a module without run()", function()
    assert.has_error(function() activities.register("Broken", {}) end,
      "activity type 'Broken': module must be a table with a run(ctx, activity) function")
  end)
end)

describe("the worked examples in docs/extending.md", function()
  -- The examples are taken from the document itself, so the document stays true.
  local function example(marker)
    local fh = assert(io.open(here .. "../../docs/extending.md"))
    local doc = fh:read("a")
    fh:close()
    local start = assert(doc:find(marker, 1, true), "example not found: " .. marker)
    local code_end = assert(doc:find("\n```", start, true))
    return doc:sub(start, code_end)
  end

  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
  end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  local function write(name, text)
    local fh = assert(io.open(dir .. "/" .. name, "w"))
    fh:write(text)
    fh:close()
  end

  it("the promote-if-better wrapper promotes only a better model", function()
    write("AzureMLUpdateResource.lua", example("-- my/activities/AzureMLUpdateResource.lua"))
    local calls = 0
    local saved = package.loaded["lufa.activities.AzureMLUpdateResource"]
    package.loaded["lufa.activities.AzureMLUpdateResource"] = {run = function(ctx)
      calls = calls + 1
      return {updated = ctx:property("trainedModelName")}
    end}
    local ok, err = pcall(function()
      for _, case in ipairs{{0.91, 0.85, true, true}, {0.80, 0.85, false, true}, {0.80, 0.85, true, "false"}} do
        local f = assert(pipeline.from_table({name = "P", properties = {
          parameters = {currentAuc = {type = "Float"}},
          activities = {
            {name = "Train", type = "Ok", typeProperties = {value = {auc = case[1]}}},
            {name = "Update", type = "AzureMLUpdateResource",
              dependsOn = {{activity = "train", dependencyConditions = {"Succeeded"}}},
              typeProperties = {trainedModelName = "m", promoteIf = {
                candidate = "@activity('Train').output.value.auc", current = "@pipeline().parameters.currentAuc",
                higherIsBetter = case[4]}}},
          }}}, {activities = S.registry(), activity_folders = {dir}}))
        local before = calls
        local rec, _, recs = S.run(f, "P", {parameters = {currentAuc = case[2]}})
        assert.are.equal("Succeeded", rec.status, rec.message)
        assert.are.equal(case[3], recs.Update.output.promoted)
        assert.are.equal(case[3] and 1 or 0, calls - before)
      end
    end)
    package.loaded["lufa.activities.AzureMLUpdateResource"] = saved
    assert(ok, err)
  end)

  it("the WriteFile type writes its file and validates its properties", function()
    write("WriteFile.lua", example("-- my/activities/WriteFile.lua"))
    local target = dir .. "/out.json"
    local f = assert(pipeline.from_table({name = "P", properties = {activities = {
      {name = "W", type = "WriteFile", typeProperties = {path = target, content = {a = "@pipeline().Pipeline"}}},
      {name = "Bad", type = "WriteFile", typeProperties = {path = ""}},
    }}}, {activity_folders = {dir}}))
    local problems = pipeline.validate(f)
    assert.truthy(S.find_problem(problems, "path must not be empty"))
    assert.truthy(S.find_problem(problems, "WriteFile requires \"content\""))
    f = assert(pipeline.from_table({name = "P", properties = {activities = {
      {name = "W", type = "WriteFile", typeProperties = {path = target, content = {a = "@pipeline().Pipeline"}}},
    }}}, {activity_folders = {dir}}))
    local rec, _, recs = S.run(f)
    assert.are.equal("Succeeded", rec.status, rec.message)
    local fh = assert(io.open(target))
    local written = json.decode(fh:read("a"))
    fh:close()
    assert.are.same({a = "P"}, written)
    assert.are.equal(target, recs.W.output.path)
  end)
end)

describe("linked services and datasets", function()
  it("resolves parameterised linked services with secrets, and datasets with their parameters", function()
    local reg = S.registry()
    local got = {}
    reg:register("Inspect", {run = function(ctx)
      local ls = ctx:linked_service()
      local ds = ctx:dataset(ctx.activity.typeProperties.dataset)
      got.endpoint = ls.properties.endpoint
      got.key = ls.properties.key
      got.folder = ds.properties.folder
      return {}
    end})
    local f = S.factory({act("I", "Inspect", nil,
      {dataset = {referenceName = "Files", type = "DatasetReference", parameters = {day = "@pipeline().parameters.day"}}},
      {linkedServiceName = {referenceName = "Svc", type = "LinkedServiceReference", parameters = {region = "north"}}})},
      {parameters = {day = {type = "String", defaultValue = "monday"}}}, reg, {
        linkedServices = {{name = "Svc", properties = {type = "Custom",
          parameters = {region = {type = "String", defaultValue = "south"}},
          typeProperties = {endpoint = "https://@{linkedService().region}.example.invalid/",
            key = {type = "SecureString", value = "ls-key-123"}}}}},
        datasets = {{name = "Files", properties = {type = "Json",
          linkedServiceName = {referenceName = "Svc", type = "LinkedServiceReference"},
          parameters = {day = {type = "String"}},
          typeProperties = {folder = "@concat('in/', dataset().day)"}}}},
      })
    local rec, _, recs = S.run(f)
    assert.are.equal("Succeeded", rec.status, rec.message)
    assert.are.equal("https://north.example.invalid/", got.endpoint)
    assert.is_true(secret.is(got.key))
    assert.are.equal("ls-key-123", secret.expose(got.key))
    assert.are.equal("in/monday", got.folder)
    assert.are.equal("Svc", recs.I.linkedServiceName)
  end)

  it("warns about a pipeline that executes itself", function()
    local f = assert(pipeline.from_table{name = "Loop", properties = {activities = {
      act("Again", "ExecutePipeline", nil, {pipeline = {referenceName = "loop", type = "PipelineReference"}})}}})
    local p = S.find_problem(pipeline.validate(f), "pipeline 'loop' executes itself")
    assert.truthy(p)
    assert.are.equal("warning", p.severity)
  end)
end)
