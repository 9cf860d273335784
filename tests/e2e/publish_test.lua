-- `lufa publish`: the sample factory becomes ADF's ARM template (shape, parameters, dependency order, no
-- secret in it), deploys to the Data Factory stand-in and reads back as the same factory, `--dry-run`
-- shows a changed pipeline without changing anything, and what only lufa runs is refused with file and
-- JSON path.
local json = require "lufa.json"
local aad = require "lufa.aad"
local http = require "lufa.http"
local emulators = require "tests.support.emulators"

local SAMPLE = "examples/adf-retraining"
local shell_quote = emulators.shell_quote

local emu, work, arm_env

local function decode(path) return assert(json.decode_file(path)) end
local function canonical(v) return json.encode(v, {sort_keys = true}) end

-- The sample's own files by kind: name → decoded resource.
local function sample_resources()
  local out = {}
  for _, kind in ipairs{"linkedService", "pipeline", "trigger"} do
    out[kind] = {}
    local p = io.popen("ls " .. shell_quote(SAMPLE .. "/" .. kind))
    for file in p:lines() do
      local r = decode(SAMPLE .. "/" .. kind .. "/" .. file)
      out[kind][r.name] = r
    end
    p:close()
  end
  return out
end

-- Every secret value the sample's linked services hold, as written in their files.
local function sample_secrets()
  local out = {}
  for name, r in pairs(sample_resources().linkedService) do
    for k, v in pairs(r.properties.typeProperties) do
      local lower = k:lower()
      if lower == "apikey" or lower == "serviceprincipalkey" or lower == "connectionstring" then
        out[name .. "." .. k] = v
      end
    end
  end
  return out
end

local function copy_sample()
  local dir = emulators.tempdir() .. "/factory"
  assert(os.execute("cp -r " .. shell_quote(SAMPLE) .. " " .. shell_quote(dir)))
  return dir
end

local function publish(args)
  return emu:lufa(args, arm_env)
end

local function deploy_args(factory_dir, factory_name, extra)
  local a = {"publish", factory_dir, "--subscription", emu.env.LUFA_EMU_ADF_SUBSCRIPTION_ID, "--resource-group",
    emu.env.LUFA_EMU_ADF_RESOURCE_GROUP, "--factory", factory_name, "--arm-url", emu.env.LUFA_EMU_ADF_ARM_URL}
  for _, x in ipairs(extra or {}) do a[#a + 1] = x end
  return a
end

-- GET a resource of a factory in the stand-in.
local function arm_get(factory_name, segment, name)
  local cred = aad.client_secret{tenant = emu.env.LUFA_EMU_TENANT_ID, client_id = emu.env.LUFA_EMU_CLIENT_ID,
    client_secret = emu.env.LUFA_EMU_CLIENT_SECRET, authority = emu.env.LUFA_EMU_AAD_AUTHORITY}
  local url = string.format("%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataFactory/factories/%s%s?api-version=2018-06-01",
    emu.env.LUFA_EMU_ADF_ARM_URL, emu.env.LUFA_EMU_ADF_SUBSCRIPTION_ID, emu.env.LUFA_EMU_ADF_RESOURCE_GROUP,
    factory_name, segment and ("/" .. segment .. "/" .. name) or "")
  local res = assert(http.request{url = url, headers = {Authorization = assert(cred:authorization("https://management.azure.com/"))}})
  return res.status, res.body ~= "" and json.decode(res.body) or nil
end

local function assert_no_secret(text, where)
  for name, value in pairs(sample_secrets()) do
    for _, form in ipairs{value, json.encode(value):sub(2, -2)} do
      local at = text:find(form, 1, true)
      assert.is_nil(at, string.format("%s holds the secret %s at byte %s", where, name, tostring(at)))
    end
  end
end

describe("lufa publish", function()
  setup(function()
    emu = emulators.start()
    work = emulators.tempdir()
    arm_env = {AZURE_TENANT_ID = emu.env.LUFA_EMU_TENANT_ID, AZURE_CLIENT_ID = emu.env.LUFA_EMU_CLIENT_ID,
      AZURE_CLIENT_SECRET = emu.env.LUFA_EMU_CLIENT_SECRET, AZURE_AUTHORITY_HOST = emu.env.LUFA_EMU_AAD_AUTHORITY,
      LUFA_CA_FILE = emu.env.LUFA_EMU_CA_FILE}
  end)
  teardown(function()
    if emu then emu:stop() end
    if work then os.execute("rm -rf " .. shell_quote(work)) end
  end)

  describe("--out", function()
    local out, template, params, r

    setup(function()
      out = work .. "/arm"
      r = publish{"publish", SAMPLE, "--out", out}
      template = decode(out .. "/ARMTemplateForFactory.json")
      params = decode(out .. "/ARMTemplateParametersForFactory.json")
    end)

    it("writes ADF's template shape", function()
      assert.are.equal(0, r.status, r.output)
      assert.are.equal("http://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json#", template["$schema"])
      assert.are.equal("1.0.0.0", template.contentVersion)
      assert.are.same({type = "string", metadata = "Data Factory name", defaultValue = "adf-retraining"},
        template.parameters.factoryName)
      assert.are.equal("[concat('Microsoft.DataFactory/factories/', parameters('factoryName'))]", template.variables.factoryId)
      local names = {}
      for _, res in ipairs(template.resources) do
        assert.are.equal("2018-06-01", res.apiVersion)
        local kind, name = res.type:match("^Microsoft%.DataFactory/factories/(%a+)$"), res.name:match("^%[concat%(parameters%('factoryName'%), '/(.+)'%)%]$")
        assert.is_truthy(kind, res.type)
        assert.is_truthy(name, res.name)
        names[#names + 1] = kind .. "/" .. name
      end
      assert.are.same({"linkedServices/StorageLinkedService", "linkedServices/trainingEndpoint",
        "linkedServices/updatableScoringEndpoint2", "pipelines/LookupPipelineDemo", "triggers/NightlyRetrain"}, names)
    end)

    it("lists dependencies: the pipeline on its linked services, the trigger on its pipeline", function()
      local function deps(i)
        local d = {}
        for _, x in ipairs(template.resources[i].dependsOn) do d[#d + 1] = x end
        table.sort(d)
        return d
      end
      for i = 1, 3 do assert.are.same({}, deps(i)) end
      assert.are.same({"[concat(variables('factoryId'), '/linkedServices/StorageLinkedService')]",
        "[concat(variables('factoryId'), '/linkedServices/trainingEndpoint')]",
        "[concat(variables('factoryId'), '/linkedServices/updatableScoringEndpoint2')]"}, deps(4))
      assert.are.same({"[concat(variables('factoryId'), '/pipelines/LookupPipelineDemo')]"}, deps(5))
    end)

    it("parameterises secrets as secureString and endpoints as string, as ADF does", function()
      local p = template.parameters
      for _, name in ipairs{"StorageLinkedService_connectionString", "trainingEndpoint_apiKey",
        "updatableScoringEndpoint2_apiKey", "updatableScoringEndpoint2_servicePrincipalKey"} do
        assert.are.equal("secureString", p[name] and p[name].type, name)
        assert.is_nil(p[name].defaultValue, name)
        assert.are.same({value = ""}, params.parameters[name], name)
      end
      local ep = "trainingEndpoint_properties_typeProperties_mlEndpoint"
      assert.are.equal("string", p[ep].type)
      assert.are.equal(sample_resources().linkedService.trainingEndpoint.properties.typeProperties.mlEndpoint,
        p[ep].defaultValue)
      assert.are.equal(p[ep].defaultValue, params.parameters[ep].value)
      assert.are.equal("adf-retraining", params.parameters.factoryName.value)
      local tp = template.resources[2].properties.typeProperties
      assert.are.equal("[parameters('trainingEndpoint_apiKey')]", tp.apiKey)
      assert.are.equal("[parameters('" .. ep .. "')]", tp.mlEndpoint)
    end)

    it("writes no secret of the factory, nor of a factory holding SecureString objects", function()
      assert_no_secret(emulators.read_file(out .. "/ARMTemplateForFactory.json"), "the template")
      assert_no_secret(emulators.read_file(out .. "/ARMTemplateParametersForFactory.json"), "the parameters file")
      assert_no_secret(r.output, "the output")
      local dir = copy_sample()
      local file = dir .. "/linkedService/trainingEndpoint.json"
      local ls = decode(file)
      ls.properties.typeProperties.apiKey = {type = "SecureString", value = ls.properties.typeProperties.apiKey}
      emulators.write_file(file, json.encode(ls))
      local r2 = publish{"publish", dir, "--out", work .. "/arm2"}
      assert.are.equal(0, r2.status, r2.output)
      local text = emulators.read_file(work .. "/arm2/ARMTemplateForFactory.json")
      assert_no_secret(text, "the template of the SecureString factory")
      local t2 = json.decode(text)
      assert.are.same({type = "SecureString", value = "[parameters('trainingEndpoint_apiKey')]"},
        t2.resources[2].properties.typeProperties.apiKey)
    end)

    it("escapes strings that ARM would read as expressions", function()
      local dir = copy_sample()
      local file = dir .. "/pipeline/LookupPipelineDemo.json"
      local p = decode(file)
      p.properties.activities[2].typeProperties.trainedModelName = "[trained model]"
      emulators.write_file(file, json.encode(p))
      local r2 = publish{"publish", dir, "--out", work .. "/arm3"}
      assert.are.equal(0, r2.status, r2.output)
      local t = decode(work .. "/arm3/ARMTemplateForFactory.json")
      assert.are.equal("[[trained model]", t.resources[4].properties.activities[2].typeProperties.trainedModelName)
    end)
  end)

  describe("refuses what would not work in ADF", function()
    it("lists lufa-only activities, lufa extensions, overrides and activity folders with file and JSON path", function()
      local dir = copy_sample()
      local pfile = dir .. "/pipeline/LookupPipelineDemo.json"
      local p = decode(pfile)
      p.properties.activities[#p.properties.activities + 1] = json.object{name = "loop", type = "ForEach",
        typeProperties = {items = {value = "@createArray(1)", type = "Expression"},
          activities = {{name = "score", type = "LuaScore"}}}}
      emulators.write_file(pfile, json.encode(p))
      local lfile = dir .. "/linkedService/trainingEndpoint.json"
      local ls = decode(lfile)
      ls.properties.typeProperties.authorityHost = "https://127.0.0.1:1"
      ls.properties.typeProperties.requestTimeout = 30
      emulators.write_file(lfile, json.encode(ls))
      local tfile = dir .. "/trigger/OnUpload.json"
      emulators.write_file(tfile, json.encode{name = "OnUpload", properties = {type = "BlobEventsTrigger",
        pipelines = {{pipelineReference = {referenceName = "LookupPipelineDemo", type = "PipelineReference"}}},
        typeProperties = {blobPathBeginsWith = "/input/blobs/", events = {"Microsoft.Storage.BlobCreated"},
          scope = "/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/z",
          linkedServiceName = {referenceName = "StorageLinkedService", type = "LinkedServiceReference"}}}})
      local acts = work .. "/acts"
      os.execute("mkdir -p " .. shell_quote(acts))
      emulators.write_file(acts .. "/LuaScore.lua", "return { run = function() return {} end }\n")
      local out = work .. "/refused"
      local r = publish{"publish", dir, "--out", out, "--override", SAMPLE .. "/local.json", "--activities", acts}
      assert.are.equal(2, r.status, r.output)
      local e = r.stderr
      assert.matches("cannot be published to Azure Data Factory as it is %(6 problem%(s%)%)", e)
      assert.is_truthy(e:find(pfile .. ": $.properties.activities[2].typeProperties.activities[0].type: error: " ..
        "activity 'score' has type 'LuaScore', which only lufa runs (a Lua activity module)", 1, true), e)
      assert.is_truthy(e:find(lfile .. ": $.properties.typeProperties.authorityHost: error:", 1, true), e)
      assert.is_truthy(e:find(lfile .. ": $.properties.typeProperties.requestTimeout: error:", 1, true), e)
      assert.is_truthy(e:find(tfile .. ": $.properties.typeProperties.linkedServiceName: error:", 1, true), e)
      assert.is_truthy(e:find(SAMPLE .. "/local.json: $: error: override files are local", 1, true), e)
      assert.is_truthy(e:find(acts .. ": $: error: a folder of Lua activity modules cannot be published", 1, true), e)
      assert.is_falsy(io.open(out .. "/ARMTemplateForFactory.json"), "nothing is written when something is refused")
    end)

    it("refuses a secret outside linked services", function()
      local dir = copy_sample()
      local pfile = dir .. "/pipeline/Hook.json"
      emulators.write_file(pfile, json.encode{name = "Hook", properties = {activities = {{name = "call",
        type = "WebActivity", typeProperties = {url = "https://example.invalid/", method = "POST", body = "{}",
          headers = {["x-key"] = {type = "SecureString", value = "hook-secret-value"}}}}}}})
      local r = publish{"publish", dir, "--out", work .. "/arm4"}
      assert.are.equal(2, r.status, r.output)
      assert.is_truthy(r.stderr:find(pfile .. ": $.properties.activities[0].typeProperties.headers.x-key: error: " ..
        "pipeline 'Hook' holds a SecureString", 1, true), r.stderr)
      assert.is_nil(r.output:find("hook-secret-value", 1, true))
    end)
  end)

  describe("deploying to the Data Factory stand-in", function()
    local FACTORY = "adf-retraining-e2e"

    it("deploys the sample, which reads back as the same factory", function()
      local missing = publish(deploy_args(SAMPLE, FACTORY))
      assert.are.equal(2, missing.status, missing.output)
      assert.matches("does not exist .*give %-%-location", missing.stderr)
      local r = publish(deploy_args(SAMPLE, FACTORY, {"--location", "westeurope"}))
      assert.are.equal(0, r.status, r.output)
      assert.is_truthy(r.stdout:find("deployed 5 resource(s) to factory " .. FACTORY, 1, true), r.stdout)
      assert_no_secret(r.output, "the deployment's output")
      local status, f = arm_get(FACTORY)
      assert.are.equal(200, status)
      assert.are.equal("westeurope", f.location)
      for kind, byname in pairs(sample_resources()) do
        local segment = ({linkedService = "linkedServices", pipeline = "pipelines", trigger = "triggers"})[kind]
        for name, resource in pairs(byname) do
          local st, got = arm_get(FACTORY, segment, name)
          assert.are.equal(200, st, segment .. "/" .. name)
          assert.are.equal(name, got.name)
          assert.are.equal(canonical(resource.properties), canonical(got.properties), segment .. "/" .. name)
        end
      end
    end)

    it("--dry-run shows a changed pipeline and changes nothing; the deployment then stops and restarts the trigger", function()
      local dir = copy_sample()
      local file = dir .. "/pipeline/LookupPipelineDemo.json"
      local p = decode(file)
      p.properties.activities[2].typeProperties.trainedModelName = "Retrained model v2"
      emulators.write_file(file, json.encode(p))
      emu:clear_requests()
      local r = publish(deploy_args(dir, FACTORY, {"--dry-run"}))
      assert.are.equal(0, r.status, r.output)
      assert.is_truthy(r.stdout:find("~ pipeline LookupPipelineDemo (1 change(s))\n    " ..
        "$.properties.activities[1].typeProperties.trainedModelName: \"ADFV2Sample Model [trained model]\" -> " ..
        "\"Retrained model v2\"", 1, true), r.stdout)
      assert.is_truthy(r.stdout:find("= linkedService trainingEndpoint (unchanged)", 1, true), r.stdout)
      assert.is_truthy(r.stdout:find("= trigger NightlyRetrain (unchanged)", 1, true), r.stdout)
      assert.matches("1 of 5 resource%(s%) would change", r.stdout)
      for _, q in ipairs(emu:requests{service = "adf"}) do
        assert.are.equal("GET", q.method, "a dry run only reads: " .. q.method .. " " .. q.path)
      end
      local _, before = arm_get(FACTORY, "pipelines", "LookupPipelineDemo")
      assert.are.equal("ADFV2Sample Model [trained model]", before.properties.activities[2].typeProperties.trainedModelName)

      emu:clear_requests()
      local d = publish(deploy_args(dir, FACTORY))
      assert.are.equal(0, d.status, d.output)
      assert.matches("updated pipelines LookupPipelineDemo", d.stdout)
      local _, after = arm_get(FACTORY, "pipelines", "LookupPipelineDemo")
      assert.are.equal("Retrained model v2", after.properties.activities[2].typeProperties.trainedModelName)
      local _, trigger = arm_get(FACTORY, "triggers", "NightlyRetrain")
      assert.are.equal("Started", trigger.properties.runtimeState)
      -- the order ADF's CI/CD guidance asks for: stop, PUT linked services → pipelines → triggers, start
      local seen = {}
      for _, q in ipairs(emu:requests{service = "adf"}) do
        if q.method ~= "GET" then
          local path = q.path:gsub("%?.*$", "")
          local what = path:match("/factories/[^/]+/(.*)$") or "factory"
          seen[#seen + 1] = q.method .. " " .. what
        end
      end
      assert.are.same({"PUT factory", "POST triggers/NightlyRetrain/stop", "PUT linkedServices/StorageLinkedService",
        "PUT linkedServices/trainingEndpoint", "PUT linkedServices/updatableScoringEndpoint2",
        "PUT pipelines/LookupPipelineDemo", "PUT triggers/NightlyRetrain", "POST triggers/NightlyRetrain/start"}, seen)
    end)

    it("deploys a pipeline after the pipeline it runs, with secure values from --parameters", function()
      local dir = copy_sample()
      local file = dir .. "/pipeline/LookupPipelineDemo.json"
      local p = decode(file)
      p.properties.activities[3] = json.object{name = "more", type = "ExecutePipeline",
        dependsOn = {{activity = "amlUpdateResource", dependencyConditions = {"Succeeded"}}},
        typeProperties = {pipeline = {referenceName = "Afterwards", type = "PipelineReference"}}}
      emulators.write_file(file, json.encode(p))
      emulators.write_file(dir .. "/pipeline/Afterwards.json", json.encode{name = "Afterwards",
        properties = {activities = {{name = "w", type = "Wait", typeProperties = {waitTimeInSeconds = 1}}}}})
      local params = work .. "/params.json"
      emulators.write_file(params, json.encode{parameters = {trainingEndpoint_apiKey = {value = "key-from-the-file"}}})
      local r = publish(deploy_args(dir, FACTORY, {"--parameters", params}))
      assert.are.equal(0, r.status, r.output)
      local order = {}
      for line in r.stdout:gmatch("[^\n]+") do
        local name = line:match("^%a+ pipelines (%S+)$")
        if name then order[#order + 1] = name end
      end
      assert.are.same({"Afterwards", "LookupPipelineDemo"}, order, "a pipeline goes after the pipeline it runs")
      assert.is_nil(r.output:find("key-from-the-file", 1, true))
      local _, ls = arm_get(FACTORY, "linkedServices", "trainingEndpoint")
      assert.are.equal("key-from-the-file", ls.properties.typeProperties.apiKey)
    end)

    it("publishes and deploys the factory's global parameters as ADF does", function()
      local dir = copy_sample()
      os.execute("mkdir -p " .. shell_quote(dir .. "/factory"))
      local gp = {modelName = {type = "String", value = "bikes"}, epochs = {type = "Int", value = 3},
        rate = {type = "Float", value = 0.5}}
      emulators.write_file(dir .. "/factory/adf-retraining.json", json.encode{name = "adf-retraining",
        location = "westeurope", properties = {globalParameters = gp}})
      local r = publish{"publish", dir, "--out", work .. "/arm-gp"}
      assert.are.equal(0, r.status, r.output)
      local t = decode(work .. "/arm-gp/ARMTemplateForFactory.json")
      local f = t.resources[1]
      assert.are.equal("Microsoft.DataFactory/factories", f.type)
      assert.are.equal("[parameters('factoryName')]", f.name)
      assert.are.equal("[parameters('dataFactory_location')]", f.location)
      assert.are.same({type = "String", value = "[parameters('dataFactory_properties_globalParameters_modelName_value')]"},
        f.properties.globalParameters.modelName)
      assert.are.same({type = "Float", value = 0.5}, f.properties.globalParameters.rate)
      assert.are.same({type = "int", defaultValue = 3}, t.parameters.dataFactory_properties_globalParameters_epochs_value)
      assert.are.same({type = "string", defaultValue = "westeurope"}, t.parameters.dataFactory_location)

      local d = publish(deploy_args(dir, FACTORY))
      assert.are.equal(0, d.status, d.output)
      local _, factory = arm_get(FACTORY)
      assert.are.equal(canonical(gp), canonical(factory.properties.globalParameters))

      gp.modelName.value = "scooters"
      emulators.write_file(dir .. "/factory/adf-retraining.json", json.encode{name = "adf-retraining",
        location = "westeurope", properties = {globalParameters = gp}})
      local dry = publish(deploy_args(dir, FACTORY, {"--dry-run"}))
      assert.are.equal(0, dry.status, dry.output)
      assert.is_truthy(dry.stdout:find("~ factory " .. FACTORY .. " (1 change(s))\n    " ..
        "$.properties.globalParameters.modelName.value: \"bikes\" -> \"scooters\"", 1, true), dry.stdout)
    end)

    it("stops at what ARM refuses, naming the resource and ARM's error, and restarts the stopped trigger", function()
      emu:faults{rules = {{route = "adf.pipelines.put", sequence = {{type = "status", status = 400}}}}}
      local r = publish(deploy_args(SAMPLE, FACTORY))
      emu:faults()
      assert.are.equal(2, r.status, r.output)
      assert.is_truthy(r.stderr:find("deployment stopped at pipeline 'LookupPipelineDemo' (" .. SAMPLE ..
        "/pipeline/LookupPipelineDemo.json): PUT ", 1, true), r.stderr)
      assert.matches("HTTP 400 BadRequest: Injected fault", r.stderr)
      local _, trigger = arm_get(FACTORY, "triggers", "NightlyRetrain")
      assert.are.equal("Started", trigger.properties.runtimeState, "the trigger stopped for the deployment runs again")
    end)
  end)
end)
