-- lufa.publish in process: dependency order and dependsOn across all four kinds (Key Vault linked
-- services, datasets, pipelines running pipelines, triggers), parameters and Key Vault references, nested
-- refusals, the template-expression evaluation a deployment does, and the diff.
local json = require "lufa.json"
local secret = require "lufa.secret"
local pipeline = require "lufa.pipeline"
local template = require "lufa.publish.template"
local check = require "lufa.publish.check"
local deploy = require "lufa.publish.deploy"
local diff = require "lufa.publish.diff"

local function ref(kind, name) return {referenceName = name, type = kind .. "Reference"} end

-- Resources listed so that every kind names something defined after it.
local function factory_table()
  return {
    name = "lake",
    linkedServices = {
      {name = "Blob", properties = {type = "AzureBlobStorage", typeProperties = {
        serviceEndpoint = "https://lake.blob.core.windows.net/",
        sasUri = {type = "AzureKeyVaultSecret", store = ref("LinkedService", "Vault"), secretName = "blob-sas"}}}},
      {name = "Vault", properties = {type = "AzureKeyVault", typeProperties = {baseUrl = "https://vault.vault.azure.net/"}}},
      {name = "Fn", properties = {type = "AzureFunction", typeProperties = {functionAppUrl = "https://fn.azurewebsites.net",
        functionKey = {type = "SecureString", value = "fn-secret-key"}}}},
    },
    datasets = {
      {name = "Raw", properties = {type = "Binary", linkedServiceName = ref("LinkedService", "Blob"),
        typeProperties = {location = {type = "AzureBlobStorageLocation", container = "raw"}}}},
    },
    pipelines = {
      {name = "Outer", properties = {activities = {
        {name = "run", type = "ExecutePipeline", typeProperties = {pipeline = ref("Pipeline", "Inner"), waitOnCompletion = true}},
      }}},
      {name = "Inner", properties = {activities = {
        {name = "meta", type = "GetMetadata", typeProperties = {dataset = ref("Dataset", "Raw"), fieldList = {"childItems"}}},
        {name = "call", type = "AzureFunctionActivity", linkedServiceName = ref("LinkedService", "Fn"),
          typeProperties = {functionName = "f", method = "GET"}},
      }}},
    },
    triggers = {
      {name = "Daily", properties = {type = "ScheduleTrigger", runtimeState = "Started",
        pipelines = {{pipelineReference = ref("Pipeline", "Outer"), parameters = {}}},
        typeProperties = {recurrence = {frequency = "Day", interval = 1, startTime = "2026-01-01T00:00:00Z"}}}},
    },
  }
end

local function load(t)
  local factory, problems = pipeline.from_table(t or factory_table())
  assert(factory, problems and pipeline.format_problems(problems))
  return factory
end

local function by_name(built)
  local out, order = {}, {}
  for i, res in ipairs(built.template.resources) do
    local name = res.name:match("/(.+)'%)%]$")
    out[name] = res
    order[#order + 1] = name
    res.index = i
  end
  return out, order
end

local function sorted(list)
  local c = {}
  for i, x in ipairs(list) do c[i] = x end
  table.sort(c)
  return c
end

describe("lufa.publish.template", function()
  it("orders every kind after what it references and lists the references in dependsOn", function()
    local built = template.build(load())
    assert.are.same({}, built.problems)
    local res, order = by_name(built)
    assert.are.same({"Vault", "Blob", "Fn", "Raw", "Inner", "Outer", "Daily"}, order)
    local dep = function(seg, n) return "[concat(variables('factoryId'), '/" .. seg .. "/" .. n .. "')]" end
    assert.are.same({dep("linkedServices", "Vault")}, sorted(res.Blob.dependsOn))
    assert.are.same({dep("linkedServices", "Blob")}, sorted(res.Raw.dependsOn))
    assert.are.same(sorted{dep("datasets", "Raw"), dep("linkedServices", "Fn")}, sorted(res.Inner.dependsOn))
    assert.are.same({dep("pipelines", "Inner")}, sorted(res.Outer.dependsOn))
    assert.are.same({dep("pipelines", "Outer")}, sorted(res.Daily.dependsOn))
    assert.are.equal("Microsoft.DataFactory/factories/datasets", res.Raw.type)
  end)

  it("keeps Key Vault references, makes SecureStrings secure parameters and endpoints string ones", function()
    local built = template.build(load())
    local res = by_name(built)
    local p = built.template.parameters
    assert.are.equal("AzureKeyVaultSecret", res.Blob.properties.typeProperties.sasUri.type)
    assert.is_nil(p.Blob_sasUri)
    assert.are.same({type = "string", defaultValue = "https://lake.blob.core.windows.net/"},
      p.Blob_properties_typeProperties_serviceEndpoint)
    assert.are.equal("secureString", p.Fn_functionKey.type)
    assert.are.same({type = "SecureString", value = "[parameters('Fn_functionKey')]"}, res.Fn.properties.typeProperties.functionKey)
    local text = json.encode(built.template)
    assert.is_nil(text:find("fn-secret-key", 1, true))
    -- the factory's value is kept for a deployment, as a secret
    local fk
    for _, x in ipairs(built.parameters) do if x.name == "Fn_functionKey" then fk = x end end
    assert.is_true(secret.is(fk.value))
    assert.are.equal("fn-secret-key", secret.expose(fk.value))
  end)

  it("the factoryName parameter defaults to the given name", function()
    local built = template.build(load(), {name = "prod-factory"})
    assert.are.equal("prod-factory", built.template.parameters.factoryName.defaultValue)
  end)
end)

describe("lufa.publish.check", function()
  it("finds lufa-only types at any depth, with their JSON paths", function()
    local t = factory_table()
    t.pipelines[1].properties.activities[2] = {name = "branch", type = "Switch", typeProperties = {
      on = {value = "@string(1)", type = "Expression"},
      cases = {{value = "1", activities = {{name = "deep", type = "RunLua"}}}},
      defaultActivities = {{name = "fine", type = "Wait", typeProperties = {waitTimeInSeconds = 1}}}}}
    local factory = load(t)
    factory:register("RunLua", {run = function() return {} end})
    local problems = check.refusals(factory)
    assert.are.equal(1, #problems)
    assert.are.equal("$.properties.activities[1].typeProperties.cases[0].activities[0].type", problems[1].path)
    assert.matches("activity 'deep' has type 'RunLua', which only lufa runs %(a Lua activity module%)", problems[1].message)
  end)

  it("refuses an ADF type replaced by a Lua module, and accepts the sample's types", function()
    local factory = load()
    assert.are.same({}, check.refusals(factory))
    factory:register("GetMetadata", {run = function() return {} end})
    local problems = check.refusals(factory)
    assert.are.equal(1, #problems)
    assert.matches("type 'GetMetadata' is replaced by a Lua activity module", problems[1].message)
  end)
end)

describe("lufa.publish.deploy.evaluate", function()
  local params = {factoryName = "f1", p = "value", s = secret("hidden")}

  it("evaluates the expressions the template holds and unescapes '[['", function()
    local out = deploy.evaluate(json.object{a = "[parameters('p')]", b = "[[literal]", c = {"[parameters('s')]", "plain"},
      d = "[concat(parameters('factoryName'), '/Name')]"}, params)
    assert.are.equal("value", out.a)
    assert.are.equal("[literal]", out.b)
    assert.is_true(secret.is(out.c[1]))
    assert.are.equal("plain", out.c[2])
    assert.are.equal("f1/Name", out.d)
  end)

  it("refuses an unknown parameter and an expression it does not write", function()
    assert.has_error(function() deploy.evaluate({x = "[parameters('nope')]"}, params) end,
      "the template uses parameter 'nope', which has no value")
    assert.has_error(function() deploy.evaluate({x = "[resourceGroup().location]"}, params) end,
      "unsupported template expression [resourceGroup().location]")
  end)
end)

describe("lufa.publish.diff", function()
  local remote = json.decode[[{"activities": [{"name": "a", "type": "Wait", "typeProperties": {"waitTimeInSeconds": 1}}],
    "typeProperties": {"apiKey": {"type": "SecureString", "value": "**********"}}}]]

  it("lists the changed paths and masks secrets on both sides", function()
    local desired = json.decode[[{"activities": [{"name": "a", "type": "Wait", "typeProperties": {"waitTimeInSeconds": 5}}],
      "typeProperties": {"apiKey": {"type": "SecureString", "value": "x"}}, "description": "new"}]]
    desired.typeProperties.apiKey.value = secret("real-key")
    local changes = diff.properties(remote, desired, {"typeProperties.apiKey"})
    assert.are.equal(2, #changes)
    assert.are.equal("$.properties.activities[0].typeProperties.waitTimeInSeconds", changes[1].path)
    assert.are.equal(1, changes[1].old)
    assert.are.equal(5, changes[1].new)
    assert.are.equal("$.properties.description", changes[2].path)
    local text = diff.format("pipeline", "P", changes)
    assert.is_truthy(text:find("~ pipeline P (2 change(s))", 1, true))
    assert.is_truthy(text:find("$.properties.description: (absent) -> \"new\"", 1, true), text)
    assert.is_nil(text:find("real-key", 1, true))
  end)

  it("says new and unchanged", function()
    assert.is_nil(diff.properties(nil, remote, {}))
    assert.are.equal("+ pipeline P (new)\n", diff.format("pipeline", "P", nil))
    assert.are.same({}, diff.properties(remote, json.decode(json.encode(remote)), {"typeProperties.apiKey"}))
    assert.are.equal("= pipeline P (unchanged)\n", diff.format("pipeline", "P", {}))
  end)
end)

describe("lufa.publish.check.registry", function()
  it("lets ADF types lufa does not run validate, and still refuses a folder's module for one", function()
    local t = factory_table()
    t.pipelines[2].properties.activities[3] = {name = "copy", type = "Copy", typeProperties = {
      source = {type = "BinarySource"}, sink = {type = "BinarySink"}},
      inputs = {ref("Dataset", "Raw")}, outputs = {ref("Dataset", "Raw")}}
    local plain = load(t)
    local unknown = false
    for _, p in ipairs(plain:validate()) do
      if p.severity == "error" and p.message:find("unknown activity type 'Copy'", 1, true) then unknown = true end
    end
    assert.is_true(unknown, "lufa alone does not know Copy")
    local factory = assert(pipeline.from_table(t, {activities = check.registry()}))
    for _, p in ipairs(factory:validate()) do assert.are_not.equal("error", p.severity, p.message) end
    assert.are.same({}, check.refusals(factory))

    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local f = assert(io.open(dir .. "/Copy.lua", "w"))
    f:write("return { run = function() return {} end }\n")
    f:close()
    local replaced = assert(pipeline.from_table(t, {activities = check.registry{dir}}))
    local problems = check.refusals(replaced)
    os.execute("rm -rf " .. dir)
    assert.are.equal(1, #problems)
    assert.matches("activity 'copy': type 'Copy' is replaced by a Lua activity module", problems[1].message)
  end)
end)
