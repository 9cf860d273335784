-- Validation that catches at load what would otherwise fail at run time: undeclared parameters and
-- variables and misspelt activities in expressions (also inside @{…}), blob paths Azure refuses,
-- AzureMLBatchExecution without outputs, trigger recurrences out of range, required linked-service
-- fields; problems sorted by file and position, each once, with "did you mean" for names one edit away.
local json = require "lufa.json"
local pipeline = require "lufa.pipeline"
local suggest = require "lufa.suggest"
local util = require "tests.support.util"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local S = dofile(here .. "pipeline_support.lua")
local act = S.act

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

local function count(problems, text)
  local n = 0
  for _, p in ipairs(problems) do if p.message:find(text, 1, true) then n = n + 1 end end
  return n
end

describe("validation of what fails at run time", function()
  it("reports pipeline().parameters.X the pipeline does not declare, with column and a suggestion", function()
    local problems = problems_of({
      act("A", "Ok", nil, {value = "@pipeline().parameters.inputPth"}),
      act("B", "Ok", nil, {value = "file @{pipeline().parameters['ghost']} and @{pipeline().parameters.ghost}"}),
      act("C", "Ok", nil, {value = "@pipeline().parameters.inputPath"}),
      act("D", "Ok", nil, {value = "@pipeline().parameters.INPUTPATH"}),
    }, {parameters = {inputPath = {type = "String"}}})
    local p = expect(problems, "pipeline().parameters.inputPth names a parameter the pipeline does not declare " ..
      "(did you mean 'inputPath'?)", "$.properties.activities[0].typeProperties.value")
    assert.are.equal(24, p.column)
    expect(problems, "pipeline().parameters.ghost names a parameter", "$.properties.activities[1].typeProperties.value")
    -- Once per string even when used twice; declared names in any case are fine.
    assert.are.equal(1, count(problems, "parameters.ghost"))
    assert.are.equal(2, #S.messages(problems), pipeline.format_problems(problems))
  end)

  it("reports variables('x') and activity('x') inside string interpolation, with suggestions", function()
    local problems = problems_of({
      act("LookupRows", "Ok"),
      act("B", "Ok", {{"LookupRows", "Succeeded"}}, {value = "n=@{variables('countr')}, rows=@{activity('LookupRow').output}"}),
      act("C", "Ok", {{"LokupRows", "Succeeded"}}),
    }, {variables = {counter = {type = "String"}}})
    expect(problems, "variables('countr') names a variable the pipeline does not declare (did you mean 'counter'?)")
    expect(problems, "activity('LookupRow') refers to a missing activity (did you mean 'LookupRows'?)")
    expect(problems, "dependsOn names a missing activity 'LokupRows' (did you mean 'LookupRows'?)")
  end)

  it("suggests only names one edit away", function()
    assert.are.equal("counter", suggest.closest("countr", {"counter", "count"}))
    assert.are.equal("abcd", suggest.closest("abdc", {"abcd"}))  -- a swap of neighbours
    assert.are.equal("Input", suggest.closest("input2", {"Input", "Output"}))
    assert.is_nil(suggest.closest("xyz", {"abc"}))
    assert.is_nil(suggest.closest("same", {"same"}))
    assert.are.equal("", suggest.hint("far", {"away"}))
  end)

  it("reports blob paths Azure Storage refuses and AzureMLBatchExecution without outputs", function()
    local bes = {name = "Train", type = "AzureMLBatchExecution",
      linkedServiceName = {referenceName = "ml", type = "LinkedServiceReference"},
      typeProperties = {webServiceInputs = {
        input1 = {LinkedServiceName = {referenceName = "st", type = "LinkedServiceReference"},
          FilePath = "Upper_Case/in/data.csv"},
        input2 = {LinkedServiceName = {referenceName = "st", type = "LinkedServiceReference"},
          FilePath = "ok-container/in/data.csv"},
      }}}
    local problems = problems_of({bes}, nil, {linkedServices = {
      {name = "ml", properties = {type = "AzureML", typeProperties = {mlEndpoint = "https://ml.test/jobs", apiKey = "k"}}},
      {name = "st", properties = {type = "AzureStorage", typeProperties = {connectionString = "UseDevelopmentStorage=true"}}},
    }})
    expect(problems, "'Upper_Case' is not a valid container name", "$.properties.activities[0].typeProperties.webServiceInputs.input1.FilePath")
    expect(problems, "AzureMLBatchExecution needs \"webServiceOutputs\"", "$.properties.activities[0].typeProperties")
    assert.are.equal(2, #S.messages(problems), pipeline.format_problems(problems))
  end)

  it("reports blob datasets whose container Azure Storage refuses", function()
    local ls = {referenceName = "st", type = "LinkedServiceReference"}
    local problems = problems_of({act("A", "Ok")}, nil, {
      linkedServices = {{name = "st", properties = {type = "AzureStorage", typeProperties = {connectionString = "UseDevelopmentStorage=true"}}}},
      datasets = {
        {name = "new", properties = {type = "DelimitedText", linkedServiceName = ls, typeProperties = {
          location = {type = "AzureBlobStorageLocation", container = "My--Data", folderPath = "in", fileName = "a.csv"}}}},
        {name = "old", properties = {type = "AzureBlob", linkedServiceName = ls, typeProperties = {folderPath = "ab/in"}}},
        {name = "fine", properties = {type = "AzureBlob", linkedServiceName = ls, typeProperties = {folderPath = "@dataset().f"}}},
        {name = "ok", properties = {type = "DelimitedText", linkedServiceName = ls, typeProperties = {
          location = {type = "AzureBlobStorageLocation", container = "azuremltesting", folderPath = "in"}}}},
      }})
    expect(problems, "'My--Data' is not a valid container name", "$.properties.typeProperties.location.container")
    expect(problems, "'ab' is not a valid container name", "$.properties.typeProperties.folderPath")
    assert.are.equal(2, #S.messages(problems), pipeline.format_problems(problems))
  end)

  it("reports trigger recurrences out of range (errors for validate, warnings before a run)", function()
    local trigger = function(name, tp, kind)
      return {name = name, properties = {type = kind or "ScheduleTrigger", typeProperties = tp,
        pipelines = {{pipelineReference = {referenceName = "P", type = "PipelineReference"}}}}}
    end
    local problems = problems_of({act("A", "Ok")}, nil, {triggers = {
      trigger("good", {recurrence = {frequency = "Week", interval = 1, startTime = "2024-01-01T00:00:00Z",
        schedule = {hours = {0, 23}, minutes = {0, 30}, weekDays = {"Monday"}}}}),
      trigger("bad", {recurrence = {frequency = "Second", interval = 0, startTime = "2024-01-01T00:00:00Z",
        endTime = "2023-01-01T00:00:00Z", schedule = {hours = {24}, minutes = {60}, weekDays = {"Funday"},
          monthDays = {0}}}}),
      trigger("window", {frequency = "Day", interval = 1, maxConcurrency = 51}, "TumblingWindowTrigger"),
      trigger("empty", nil),
    }})
    -- The rules are lufa.schedule's (the fire-time engine's own checks), with file and JSON path.
    expect(problems, "unknown frequency 'Second' (expected one of Minute, Hour, Day, Week, Month)",
      "$.properties.typeProperties.recurrence.frequency")
    expect(problems, "interval must be a positive integer", "$.properties.typeProperties.recurrence.interval")
    expect(problems, "endTime 2023-01-01T00:00:00Z is not after startTime")
    expect(problems, "hours must be whole numbers from 0 to 23, got 24", "$.properties.typeProperties.recurrence.schedule.hours[0]")
    expect(problems, "minutes must be whole numbers from 0 to 59, got 60")
    expect(problems, "unknown weekday 'Funday'")
    expect(problems, "monthDays must be 1 to 31, or -31 to -1")
    expect(problems, "frequency must be Minute, Hour or Month", "$.properties.typeProperties.frequency")
    expect(problems, "a TumblingWindowTrigger needs startTime")
    expect(problems, "maxConcurrency must be an integer from 1 to 50, got 51")
    expect(problems, "a ScheduleTrigger needs a recurrence object", "$.properties.typeProperties")
    assert.are.equal(11, #S.messages(problems), pipeline.format_problems(problems))  -- none about 'good'
    for _, p in ipairs(problems) do assert.is_true(p.trigger, p.message) end
  end)

  it("reports required linked-service fields that are missing", function()
    local problems = problems_of({act("A", "Ok")}, nil, {linkedServices = {
      {name = "ml", properties = {type = "AzureML", typeProperties = {mlEndpoint = "https://ml.test/jobs"}}},
      {name = "st", properties = {type = "AzureStorage", typeProperties = {}}},
    }})
    expect(problems, "AzureML requires \"apiKey\"")
    expect(problems, "a storage linked service needs \"connectionString\" or \"sasUri\"")
  end)

  it("reports an AzureML requestTimeout that is not a number of seconds", function()
    local function timeout_problems(value)
      return problems_of({act("A", "Ok")}, nil, {linkedServices = {{name = "ml", properties = {type = "AzureML",
        typeProperties = {mlEndpoint = "https://ml.test/jobs", apiKey = "k", requestTimeout = value}}}}})
    end
    expect(timeout_problems("30"), 'AzureML requestTimeout must be a number of seconds above 0 and at most 3600 ' ..
      '(got "30")', "$.properties.typeProperties.requestTimeout")
    expect(timeout_problems(0), "(got 0)")
    expect(timeout_problems(7200), "(got 7200)")
    assert.are.equal(0, count(timeout_problems(2.5), "requestTimeout"))
  end)

  it("names the pipelines that exist when asked for one that does not", function()
    local f = assert(pipeline.from_table({pipelines = {
      {name = "Train", properties = {activities = {act("A", "Ok")}}},
      {name = "Score", properties = {activities = {act("A", "Ok")}}},
    }}, {activities = S.registry()}))
    local handle, err = f:start("Trian")
    assert.is_nil(handle)
    assert.are.equal("not_found", err.code)
    assert.are.equal("the factory has no pipeline 'Trian' (did you mean 'Train'?); its pipelines are: Train, Score",
      err.message)
  end)

  it("lufa validate: one clear message per mistake, sorted by file and position, each once", function()
    local dir = util.tempdir()
    os.execute("mkdir -p " .. dir .. "/pipeline " .. dir .. "/trigger " .. dir .. "/linkedService")
    util.write_file(dir .. "/pipeline/a.json", json.encode{name = "A", properties = {
      parameters = {path = {type = "String"}},
      variables = {n = {type = "String"}},
      activities = {
        {name = "First", type = "Wait", typeProperties = {waitTimeInSeconds = "@length(pipeline().parameters.pth)"}},
        {name = "Second", type = "SetVariable", typeProperties = {variableName = "n",
          value = "@{activity('Frist').output} @{variables('m')}"}},
      }}})
    util.write_file(dir .. "/pipeline/b.json", '{"name": "B", "properties": {"activities": [ }')
    util.write_file(dir .. "/trigger/t.json", json.encode{name = "T", properties = {type = "ScheduleTrigger",
      typeProperties = {recurrence = {frequency = "Day", interval = -1, startTime = "2024-01-01T00:00:00Z"}},
      pipelines = {{pipelineReference = {referenceName = "A", type = "PipelineReference"}}}}})
    util.write_file(dir .. "/linkedService/kv.json", json.encode{name = "kv", properties = {type = "AzureKeyVault",
      typeProperties = {}}})
    local out = io.popen(string.format("'%s' validate '%s' 2>&1; echo rc=$?", util.lufa_binary(), dir)):read("a")
    os.execute("rm -rf '" .. dir .. "'")
    assert.is_truthy(out:find("rc=2", 1, true), out)
    local lines = {}
    for line in out:gmatch("[^\n]+") do
      if line:find(": error: ", 1, true) then lines[#lines + 1] = line:gsub("^.*/([^/]+/[^/]+%.json)", "%1") end
    end
    assert.are.same({
      "linkedService/kv.json: $.properties.typeProperties: error: AzureKeyVault requires \"baseUrl\" (https://<vault>.vault.azure.net)",
      "pipeline/a.json: $.properties.activities[0].typeProperties.waitTimeInSeconds (column 31): error: pipeline().parameters.pth names a parameter the pipeline does not declare (did you mean 'path'?)",
      "pipeline/a.json: $.properties.activities[1].typeProperties.value (column 12): error: activity('Frist') refers to a missing activity (did you mean 'First'?)",
      "pipeline/a.json: $.properties.activities[1].typeProperties.value (column 41): error: variables('m') names a variable the pipeline does not declare (did you mean 'n'?)",
      "pipeline/b.json: $ (line 1, column 46): error: expected a value, found '}'",
      "trigger/t.json: $.properties.typeProperties.recurrence.interval: error: interval must be a positive integer (how many days between runs), got -1",
    }, lines)
  end)
end)
