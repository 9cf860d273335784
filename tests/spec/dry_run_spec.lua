-- `lufa run --dry-run`: the sample factory's plan with parameters, linked services (credentials
-- redacted), activities in execution order and the calls each would make; nothing is called (the
-- endpoints are unreachable addresses) and nothing is recorded.
local json = require "lufa.json"
local util = require "tests.support.util"

local lufa_bin = util.lufa_binary()
local dir

local function sh(...)
  local args = {}
  for i, a in ipairs{...} do args[i] = util.shell_quote(a) end
  local p = io.popen(util.shell_quote(lufa_bin) .. " " .. table.concat(args, " ") .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("a")
  p:close()
  return tonumber(out:match("exit=(%d+)%s*$")), (out:gsub("exit=%d+%s*$", ""))
end

setup(function()
  dir = util.tempdir()
  assert(require("lufa.fs").mkdir(dir .. "/f/pipeline", "700", true))
  assert(require("lufa.fs").mkdir(dir .. "/f/linkedService", "700", true))
  util.write_file(dir .. "/f/linkedService/Api.json", json.encode{name = "Api", properties = {type = "AzureML",
    typeProperties = {mlEndpoint = "http://127.0.0.1:9/workspaces/w/services/s/jobs", apiKey = "plain-key-1234",
      updateResourceEndpoint = "http://127.0.0.1:9/update"}}})
  util.write_file(dir .. "/f/pipeline/P.json", json.encode{name = "P", properties = {
    parameters = {epochs = {type = "Int", defaultValue = 5}, region = {type = "String"},
      token = {type = "SecureString", defaultValue = "tok-secret-5678"}},
    activities = {
      {name = "notify", type = "WebActivity", typeProperties = {method = "POST",
        url = "@concat('http://127.0.0.1:9/', pipeline().parameters.region, '/start')",
        body = {epochs = "@pipeline().parameters.epochs"}}},
      {name = "pause", type = "Wait", typeProperties = {waitTimeInSeconds = 1}},
      {name = "later", type = "Wait", typeProperties = {waitTimeInSeconds = 1},
        dependsOn = {{activity = "notify", dependencyConditions = {"Succeeded"}},
          {activity = "pause", dependencyConditions = {"Completed"}}}},
    }}})
end)
teardown(function() os.execute("rm -rf " .. util.shell_quote(dir)) end)

describe("lufa run --dry-run", function()
  it("shows parameters, linked services, steps and calls, resolving what it can", function()
    local store = dir .. "/runs.db"
    local code, out = sh("run", dir .. "/f", "P", "--dry-run", "--param", "region=eu", "--store", store)
    assert.are.equal(0, code, out)
    assert.matches("dry run of pipeline P: nothing is called and nothing is recorded", out, 1, true)
    assert.matches("epochs (Int) = 5  [default]", out, 1, true)
    assert.matches("region (String) = eu  [given]", out, 1, true)
    assert.matches("token (SecureString) = <redacted>  [default]", out, 1, true)
    assert.matches("1. notify (WebActivity)\n       POST http://127.0.0.1:9/eu/start   body {\"epochs\":5}", out, 1, true)
    assert.matches("1. pause (Wait)\n       waits; no remote call", out, 1, true)
    assert.matches("2. later (Wait) after notify Succeeded, pause Completed", out, 1, true)
    assert.is_nil(out:find("tok-secret-5678", 1, true))
    assert.is_nil(require("lufa.fs").stat(store), "a dry run opened the store")
  end)

  it("redacts a linked service's credentials even when written as plain strings", function()
    util.write_file(dir .. "/f/pipeline/T.json", json.encode{name = "T", properties = {activities = {
      {name = "train", type = "AzureMLBatchExecution", linkedServiceName = {referenceName = "Api",
        type = "LinkedServiceReference"}, typeProperties = {}}}}})
    local code, out = sh("run", dir .. "/f", "T", "--dry-run")
    assert.are.equal(0, code, out)
    assert.matches("Api (AzureML): {\"apiKey\":\"<redacted>\"", out, 1, true)
    assert.is_nil(out:find("plain-key-1234", 1, true))
    assert.matches("POST http://127.0.0.1:9/workspaces/w/services/s/jobs   submit a batch job", out, 1, true)
    assert.matches("GET  http://127.0.0.1:9/workspaces/w/services/s/jobs/{jobId}   poll", out, 1, true)
  end)

  it("refuses an unknown pipeline or parameter", function()
    local code, out = sh("run", dir .. "/f", "Nope", "--dry-run")
    assert.are.equal(2, code)
    assert.matches("the factory has no pipeline 'Nope'", out, 1, true)
    code, out = sh("run", dir .. "/f", "P", "--dry-run", "--param", "epoch=3")
    assert.are.equal(2, code)
    assert.matches("pipeline 'P' has no parameter 'epoch'", out, 1, true)
  end)
end)
