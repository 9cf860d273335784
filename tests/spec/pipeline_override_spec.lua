-- Override files: activities merged by name, ${ENV} substitution, and what an unset variable reports.
local pipeline = require "lufa.pipeline"
local json = require "lufa.json"
local load = require "lufa.pipeline.load"

local function factory()
  return assert(pipeline.from_table{
    pipelines = {
      { name = "p", properties = { activities = json.array{
        { name = "First", type = "Wait", typeProperties = { waitTimeInSeconds = 1 } },
        { name = "Second", type = "Wait", typeProperties = { waitTimeInSeconds = 2 },
          dependsOn = json.array{ { activity = "First", dependencyConditions = json.array{ "Succeeded" } } } },
      } } },
    },
  })
end

describe("override files", function()
  it("merge an activity by its name (any case) and keep the others", function()
    local f = factory()
    pipeline.apply_override(f, { pipelines = { p = { properties = { activities = json.array{
      { name = "second", typeProperties = { waitTimeInSeconds = 0 } } } } } } })
    local acts = f:find("pipeline", "p").resource.properties.activities
    assert.equal(2, #acts)
    assert.equal("First", acts[1].name)
    assert.equal(1, acts[1].typeProperties.waitTimeInSeconds)
    assert.equal("Second", acts[2].name)
    assert.equal(0, acts[2].typeProperties.waitTimeInSeconds)
    assert.equal("First", acts[2].dependsOn[1].activity)  -- untouched members stay
    assert.same({}, f.load_problems)
  end)

  it("append an activity whose name is new", function()
    local f = factory()
    pipeline.apply_override(f, { pipelines = { p = { properties = { activities = json.array{
      { name = "Third", type = "Wait", typeProperties = { waitTimeInSeconds = 0 } } } } } } })
    assert.equal(3, #f:find("pipeline", "p").resource.properties.activities)
  end)

  it("substitute ${NAME} from the environment and keep $${ literal", function()
    local problems = {}
    local env = { HOST = "127.0.0.1:1234" }
    local v = load.substitute({ url = "http://${HOST}/x", lit = "$${HOST}", list = json.array{ "${HOST}" } },
      "o.json", "$", problems, function(k) return env[k] end)
    assert.equal("http://127.0.0.1:1234/x", v.url)
    assert.equal("${HOST}", v.lit)
    assert.equal("127.0.0.1:1234", v.list[1])
    assert.same({}, problems)
  end)

  it("report an unset variable with the file and the JSON path", function()
    local problems = {}
    load.substitute({ a = { b = "x${LUFA_SURELY_UNSET_VARIABLE}" } }, "o.json", "$", problems, function() return nil end)
    assert.equal(1, #problems)
    assert.equal("o.json", problems[1].file)
    assert.equal("$.a.b", problems[1].path)
    assert.matches("LUFA_SURELY_UNSET_VARIABLE is not set", problems[1].message)
  end)
end)
