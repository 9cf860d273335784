-- Loading and validation: every problem the issue lists, with its message, file and JSON
-- path, all reported at once; leniency; the ADF article's sample factory.
local json = require "lufa.json"
local secret = require "lufa.secret"
local pipeline = require "lufa.pipeline"
local activities = require "lufa.activities"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local S = dofile(here .. "pipeline_support.lua")
local act = S.act
local fixtures = here .. "../fixtures/pipelines/"

local function problems_of(acts, props, extra)
  local t = {pipelines = {{name = "P", properties = (function()
    local p = {activities = acts}
    for k, v in pairs(props or {}) do p[k] = v end
    return p
  end)()}}}
  for k, v in pairs(extra or {}) do t[k] = v end
  local f = assert(pipeline.from_table(t, {activities = S.registry()}))
  return pipeline.validate(f), f
end

local function expect(problems, text, path)
  local p = S.find_problem(problems, text)
  assert(p, "no problem mentioning: " .. text .. "\n" .. pipeline.format_problems(problems))
  assert.are.equal("error", p.severity)
  if path then assert.are.equal(path, p.path) end
  return p
end

describe("validation", function()
  it("reports an unknown activity type with file and JSON path", function()
    local problems = problems_of{act("A", "Ok"), act("B", "NoSuchType")}
    local p = expect(problems, "unknown activity type 'NoSuchType'", "$.properties.activities[1].type")
    assert.are.equal("<table>", p.file)
  end)

  it("reports dependsOn naming a missing activity, or one in another scope", function()
    local problems = problems_of{
      act("A", "Ok", {{"Nope", "Succeeded"}}),
      act("Loop", "ForEach", nil, {items = {1}, activities = {act("Inner", "Ok", {{"A", "Succeeded"}})}}),
    }
    expect(problems, "dependsOn names a missing activity 'Nope'", "$.properties.activities[0].dependsOn[0].activity")
    expect(problems, "dependsOn names activity 'A', which is in another scope",
      "$.properties.activities[1].typeProperties.activities[0].dependsOn[0].activity")
  end)

  it("reports activity('x') naming a missing activity", function()
    local problems = problems_of{act("A", "Ok", nil, {value = "@activity('Ghost').output"})}
    expect(problems, "activity('Ghost') refers to a missing activity")
  end)

  it("reports references to missing linked services, datasets and pipelines", function()
    local problems = problems_of({
      act("A", "Ok", nil, {ds = {referenceName = "NoDataset", type = "DatasetReference"}},
        {linkedServiceName = {referenceName = "NoService", type = "LinkedServiceReference"}}),
      act("B", "ExecutePipeline", nil, {pipeline = {referenceName = "NoPipeline", type = "PipelineReference"}}),
    })
    expect(problems, "reference to a missing linked service 'NoService'",
      "$.properties.activities[0].linkedServiceName.referenceName")
    expect(problems, "reference to a missing dataset 'NoDataset'",
      "$.properties.activities[0].typeProperties.ds.referenceName")
    expect(problems, "reference to a missing pipeline 'NoPipeline'",
      "$.properties.activities[1].typeProperties.pipeline.referenceName")
  end)

  it("reports a dataset whose linked service is missing", function()
    local problems = problems_of({act("A", "Ok")}, nil, {datasets = {
      {name = "D", properties = {type = "DelimitedText", linkedServiceName = {referenceName = "Gone",
        type = "LinkedServiceReference"}}}}})
    expect(problems, "reference to a missing linked service 'Gone'", "$.properties.linkedServiceName.referenceName")
  end)

  it("reports duplicate names, and names that differ only by letter case", function()
    local problems = problems_of{act("A", "Ok"), act("A", "Ok"), act("Step", "Ok"), act("STEP", "Ok")}
    expect(problems, "duplicate activity name 'A' (also at $.properties.activities[0])",
      "$.properties.activities[1].name")
    expect(problems, "activity names 'STEP' and 'Step' (at $.properties.activities[2]) differ only by letter case",
      "$.properties.activities[3].name")
  end)

  it("reports duplicate pipelines across files", function()
    local f, problems = pipeline.from_table({pipelines = {
      {name = "Same", properties = {activities = {}}}, {name = "SAME", properties = {activities = {}}}}})
    assert.is_nil(f)
    assert.truthy(S.find_problem(problems, "duplicate pipeline name 'SAME'"))
  end)

  it("reports dependency cycles", function()
    local problems = problems_of{
      act("A", "Ok", {{"C", "Succeeded"}}), act("B", "Ok", {{"A", "Succeeded"}}), act("C", "Ok", {{"B", "Succeeded"}}),
      act("Self", "Ok", {{"Self", "Succeeded"}}),
    }
    expect(problems, "dependency cycle: A -> C -> B -> A")
    expect(problems, "activity 'Self' depends on itself")
  end)

  it("reports bad policy values", function()
    local problems = problems_of{
      act("A", "Ok", nil, nil, {policy = {timeout = "12 hours"}}),
      act("B", "Ok", nil, nil, {policy = {timeout = "0.25:00:00"}}),
      act("C", "Ok", nil, nil, {policy = {retry = -1}}),
      act("D", "Ok", nil, nil, {policy = {retryIntervalInSeconds = "soon"}}),
      act("E", "Ok", nil, nil, {policy = {secureOutput = "maybe"}}),
    }
    expect(problems, "bad timeout: expected d.hh:mm:ss (for example 0.12:00:00), got '12 hours'",
      "$.properties.activities[0].policy.timeout")
    expect(problems, "hours must be 0-23", "$.properties.activities[1].policy.timeout")
    expect(problems, "bad retry: expected a whole number of retries (0 or more), got -1",
      "$.properties.activities[2].policy.retry")
    expect(problems, "bad retryIntervalInSeconds", "$.properties.activities[3].policy.retryIntervalInSeconds")
    expect(problems, "bad secureOutput: expected true or false", "$.properties.activities[4].policy.secureOutput")
  end)

  it("reports bad parameter and variable types and defaults", function()
    local problems = problems_of({act("A", "Ok")}, {
      parameters = {p1 = {type = "Integer32"}, p2 = {type = "Int", defaultValue = "ten"}, P2 = {type = "String"}},
      variables = {v1 = {type = "Object"}, v2 = {type = "Array", defaultValue = "x"}},
    })
    expect(problems, "bad parameter type 'Integer32' for 'p1': expected one of String, Int, Float, Bool, Array, Object, SecureString",
      "$.properties.parameters.p1.type")
    expect(problems, "default value of parameter 'p2' must be an integer (type Int)")
    expect(problems, "duplicate parameter name")
    expect(problems, "bad variable type 'Object' for 'v1'")
    expect(problems, "default value of variable 'v2' must be an array (type Array)")
  end)

  it("reports expression syntax errors with their column", function()
    local problems = problems_of{act("A", "Ok", nil, {value = "@concat('a', "})}
    local p = S.find_problem(problems, "concat")
    assert(p, pipeline.format_problems(problems))
    assert.are.equal("$.properties.activities[0].typeProperties.value", p.path)
    assert.are.equal("number", type(p.column))
    assert.truthy(pipeline.format_problems(problems):find("(column " .. p.column .. ")", 1, true))
  end)

  it("reports undeclared variables and a SetVariable that reads its own variable", function()
    local problems = problems_of({
      act("A", "SetVariable", nil, {variableName = "v", value = "@concat(variables('v'), 'x')"}),
      act("B", "Ok", nil, {value = "@variables('ghost')"}),
    }, {variables = {v = {type = "String"}}})
    expect(problems, "variables('ghost') names a variable the pipeline does not declare")
    expect(problems, "SetVariable value may not reference the variable being set ('v')")
  end)

  it("reports missing required properties of built-in types", function()
    local problems = problems_of{act("W", "Wait"), act("F", "Fail"), act("L", "ForEach", nil, {items = {}})}
    expect(problems, "Wait requires \"waitTimeInSeconds\"")
    expect(problems, "Fail requires \"message\"")
    expect(problems, "ForEach requires \"activities\"")
  end)

  it("reports every problem at once", function()
    local problems = problems_of{
      act("A", "Nope1"), act("B", "Nope2", {{"Missing", "Succeeded"}}, nil, {policy = {timeout = "x"}}),
      act("C", "Ok", {{"C", "Sometimes"}}),
    }
    local errors = S.messages(problems)
    assert.are.equal(6, #errors, pipeline.format_problems(problems))
  end)

  it("refuses to run an invalid pipeline, naming its problems", function()
    local f = assert(pipeline.from_table({pipelines = {{name = "P", properties = {activities = {act("A", "Nope")}}}}}))
    local rec, err = f:run("P")
    assert.is_nil(rec)
    assert.are.equal("invalid", err.code)
    assert.truthy(err.message:find("unknown activity type 'Nope'", 1, true))
  end)
end)

describe("leniency", function()
  it("reads property names in any case, string booleans and numbers, enums in any case", function()
    local f = assert(pipeline.from_table({pipelines = {{Name = "P", Properties = {Activities = {
      {NAME = "A", Type = "Ok", TypeProperties = {value = 1}},
      {name = "B", type = "Ok", DependsOn = {{Activity = "a", DependencyConditions = {"succeeded"}}},
        Policy = {Retry = "2", SecureOutput = "TRUE", Timeout = "00:10:00"}},
      {name = "W", type = "wait", typeProperties = {WaitTimeInSeconds = "0"}},
      {name = "L", type = "ForEach", typeProperties = {isSequential = "true", items = {1, 2},
        Activities = {{name = "I", type = "Ok"}}}},
    }}}}}, {activities = S.registry()}))
    local problems = pipeline.validate(f)
    assert.are.same({}, S.messages(problems), pipeline.format_problems(problems))
    local rec, st = S.run(f)
    assert.are.equal("Succeeded", rec.status)
    assert.are.same({A = "Succeeded", B = "Succeeded", W = "Succeeded", L = "Succeeded", I = "Succeeded"}, st)
  end)
end)

describe("loading", function()
  it("loads the ADF article's sample factory and warns about the name's letter case", function()
    local f = assert(pipeline.load_factory(fixtures .. "aml_sample"))
    assert.are.same({"LookupPipelineDemo"}, f:pipelines())
    local reg = S.registry()
    f.registry = reg
    f.plans = {}
    reg:register("AzureMLBatchExecution", {run = function() return {} end})
    reg:register("AzureMLUpdateResource", {run = function(ctx) return {ls = ctx:linked_service().name} end})
    local problems = pipeline.validate(f)
    assert.are.same({}, S.messages(problems), pipeline.format_problems(problems))
    local warnings = S.messages(problems, "warning")
    assert.are.equal(1, #warnings)
    assert.truthy(warnings[1]:find("dependsOn names 'amlbeGetilearner' but the activity is called 'amlBEGetilearner'", 1, true))
    local p = S.find_problem(problems, "amlbeGetilearner")
    assert.truthy(p.file:find("pipeline/LookupPipelineDemo.json", 1, true))
    assert.are.equal("$.properties.activities[1].dependsOn[0].activity", p.path)
    local rec, st, recs = S.run(f, "LookupPipelineDemo")
    assert.are.equal("Succeeded", rec.status)
    assert.are.same({amlBEGetilearner = "Succeeded", amlUpdateResource = "Succeeded"}, st)
    assert.are.equal("updatableScoringEndpoint2", recs.amlUpdateResource.output.ls)
  end)

  it("without AzureML modules, reports those types as unknown in the sample", function()
    if activities.get("AzureMLBatchExecution") then return end -- the real module has landed
    local f = assert(pipeline.load_factory(fixtures .. "aml_sample"))
    local problems = pipeline.validate(f)
    local p = S.find_problem(problems, "unknown activity type 'AzureMLBatchExecution'")
    assert.truthy(p)
    assert.are.equal("$.properties.activities[0].type", p.path)
  end)

  it("turns SecureString values into secrets at load time", function()
    local f = assert(pipeline.load_factory(fixtures .. "aml_sample"))
    local ls = f:find("linkedService", "trainingendpoint")
    local key = ls.resource.properties.typeProperties.apiKey
    assert.is_true(secret.is(key))
    assert.are.equal("training-key-value", secret.expose(key))
    assert.is_nil(json.encode(ls.resource):find("training-key-value", 1, true))
  end)

  it("applies an override file without editing the factory", function()
    local path = os.tmpname()
    local fh = assert(io.open(path, "w"))
    fh:write([[{"linkedServices": {"TRAININGENDPOINT": {"properties": {"typeProperties": {
      "mlEndpoint": "http://127.0.0.1:1/jobs", "apiKey": {"type": "SecureString", "value": "local-key"}}}}}}]])
    fh:close()
    local f = assert(pipeline.load_factory(fixtures .. "aml_sample", {override = path}))
    os.remove(path)
    local tp = f:find("linkedService", "trainingEndpoint").resource.properties.typeProperties
    assert.are.equal("http://127.0.0.1:1/jobs", tp.mlEndpoint)
    assert.are.equal("local-key", secret.expose(tp.apiKey))
  end)

  it("reports an override naming a missing resource", function()
    local f, problems = pipeline.load_factory(fixtures .. "aml_sample",
      {override = {linkedServices = {nowhere = {properties = {}}}}})
    assert.is_nil(f)
    assert.truthy(S.find_problem(problems, "override names linkedService 'nowhere', which the factory does not have"))
  end)

  it("reports a JSON syntax error with file, line and column", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir .. "/pipeline")
    local fh = assert(io.open(dir .. "/pipeline/broken.json", "w"))
    fh:write('{\n  "name": "broken",\n  "properties": {\n    "activities": [ }\n}\n')
    fh:close()
    local f, problems = pipeline.load_factory(dir)
    os.execute("rm -rf " .. dir)
    assert.is_nil(f)
    assert.are.equal(1, #problems)
    assert.truthy(problems[1].file:find("broken.json", 1, true))
    assert.are.equal(4, problems[1].line)
  end)

  it("reports a folder that is not a factory", function()
    local f, problems = pipeline.load_factory(fixtures .. "aml_sample/linkedService")
    assert.is_nil(f)
    assert.truthy(S.find_problem(problems, "no pipeline/, linkedService/, dataset/ or trigger/ folder"))
  end)
end)
