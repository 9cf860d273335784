-- Every options table of the public API refuses a key it does not know, names it and, when it is one slip
-- away, the key meant; the error points at the caller's line. The CLI does the same for commands.
local util = require "tests.support.util"

local HERE = "strict_options_spec%.lua:%d+: "

-- Calls fn (which makes the call on its own line of this file) and checks the error.
local function refuses(fn, what, wrong, meant)
  local ok, err = pcall(fn)
  assert.is_false(ok, "accepted '" .. wrong .. "'")
  err = tostring(err)
  local want = what:gsub("%p", "%%%0") .. ": unknown option '" .. wrong .. "' %(did you mean '" .. meant .. "'%?%)"
  assert.matches("^[^\n]-" .. HERE .. want, err)
end

local function fake_ws()
  return require("lufa.azureml.v2").workspace { subscription_id = "s", resource_group = "g", workspace = "w",
    credential = { authorization = function() return "Bearer x" end } }
end

describe("strict options", function()
  it("lufa.http", function()
    local http = require "lufa.http"
    refuses(function() http.request { url = "http://127.0.0.1:1/", timout = 1 } end, "lufa.http.request", "timout", "timeout")
  end)

  it("lufa.blob: client, put, get, list, sas", function()
    local blob = require "lufa.blob"
    refuses(function() blob.client { connection_string = "UseDevelopmentStorage=true", concurency = 2 } end,
      "blob.client", "concurency", "concurrency")
    local c = assert(blob.client("UseDevelopmentStorage=true"))
    local b = c:container("box"):blob("x")
    refuses(function() b:put("data", { overwrte = false }) end, "blob:put", "overwrte", "overwrite")
    refuses(function() b:get { progres = true } end, "blob:get", "progres", "progress")
    refuses(function() c:container("box"):list { prefx = "a/" } end, "container:list", "prefx", "prefix")
    refuses(function() b:sas { permisions = "r", expiry = 60 } end, "blob:sas", "permisions", "permissions")
    refuses(function() c:container("box"):create { exists_ok = true } end, "container:create", "exists_ok", "exist_ok")
  end)

  it("lufa.aad", function()
    local aad = require "lufa.aad"
    refuses(function() aad.client_secret { tenant = "t.onmicrosoft.com", client_id = "c", client_secret = "s", timout = 3 } end,
      "aad.client_secret", "timout", "timeout")
    refuses(function() aad.managed_identity { client_ide = "x" } end, "aad.managed_identity", "client_ide", "client_id")
  end)

  it("lufa.keyvault", function()
    local keyvault = require "lufa.keyvault"
    refuses(function() keyvault.client { vault = "https://v.vault.azure.net", credential = {}, timeot = 3 } end,
      "keyvault.client", "timeot", "timeout")
  end)

  it("lufa.pipeline: loading and run options", function()
    local pipeline = require "lufa.pipeline"
    refuses(function() pipeline.load_factory("examples/factory", { overide = "x.json" }) end,
      "pipeline.load_factory", "overide", "override")
    local factory = assert(pipeline.from_table({ name = "p", activities = {} }, { name = "f" }))
    refuses(function() factory:start("p", { paramaters = {} }) end, "factory:start", "paramaters", "parameters")
    refuses(function() factory:run("p", { on_evnt = print }) end, "factory:run", "on_evnt", "on_event")
    refuses(function() factory:rerun("id", { from_failur = true }) end, "factory:rerun", "from_failur", "from_failure")
    refuses(function() pipeline.from_table({ name = "p", activities = {} }, { nmae = "f" }) end,
      "pipeline.from_table", "nmae", "name")
  end)

  it("lufa.azureml classic", function()
    local azureml = require "lufa.azureml"
    refuses(function() azureml.batch { endpoint = "https://x/jobs", api_key = "k", poll_intervl = 1 } end,
      "azureml.batch", "poll_intervl", "poll_interval")
    refuses(function() azureml.scoring { endpoint = "https://x/execute", api_key = "k", timout = 1 } end,
      "azureml.scoring", "timout", "timeout")
    refuses(function() azureml.update_arm { endpoint = "https://x", authorization = "a", nmae = "m" } end,
      "azureml.update_arm", "nmae", "name")
    local bes = azureml.batch { endpoint = "https://ml.example/workspaces/w/services/s/jobs", api_key = "k" }
    refuses(function() bes:wait("job", { timeot = 1 }) end, "batch:wait", "timeot", "timeout")
  end)

  it("lufa.azureml.v2: workspace, jobs, models, batch, online, rollout", function()
    local v2 = require "lufa.azureml.v2"
    refuses(function() v2.workspace { subscription_id = "s", resource_group = "g", workspace = "w", credential = {},
      poll_interal = 1 } end, "lufa.azureml.v2.workspace", "poll_interal", "poll_interval")
    local ws = fake_ws()
    refuses(function() v2.jobs.command { command = "python train.py", compute_idd = "c" } end,
      "jobs.command", "compute_idd", "compute_id")
    refuses(function() v2.jobs.wait(ws, "job", { on_stauts = print }) end, "jobs.wait", "on_stauts", "on_status")
    refuses(function() v2.jobs.run(ws, "job", {}, { resme = true }) end, "jobs.run", "resme", "resume")
    refuses(function() v2.models.register(ws, "m", { model_uri = "azureml://x", versoin = "2" }) end,
      "models.register", "versoin", "version")
    refuses(function() v2.batch.invoke(ws, "ep", { input = {} }) end, "batch.invoke", "input", "inputs")
    refuses(function() v2.online.score(ws, "ep", {}, { deploymnt = "green" }) end, "online.score", "deploymnt", "deployment")
    refuses(function() v2.rollout.run(ws, { endpoint = "ep", deployment = "green", step = { 10 } }) end,
      "rollout.run", "step", "steps")
  end)

  it("lufa.retrain", function()
    local retrain = require "lufa.retrain"
    refuses(function() retrain.deploy { ml = {}, storage = {}, name = "m", pth = "c/m.ilearner" } end,
      "retrain.deploy", "pth", "path")
  end)

  it("lufa.schedule", function()
    local schedule = require "lufa.schedule"
    refuses(function() schedule.cron("0 * * * *", print, { zon = "UTC" }) end, "schedule.cron", "zon", "zone")
    refuses(function() schedule.every(60, print, { overlp = "skip" }) end, "schedule.every", "overlp", "overlap")
  end)

  it("lufa.runs and its SQLite store", function()
    local runs = require "lufa.runs"
    refuses(function() runs.open(":memory:", { readnly = true }) end, "runs.open", "readnly", "readonly")
    refuses(function() require("lufa.runs.sqlite").open("/nonexistent/x.db", { busy_timout = 1 }) end,
      "runs.open", "busy_timout", "busy_timeout")
  end)

  it("lufa.fs and lufa.process", function()
    local path = os.tmpname()
    refuses(function() require("lufa.fs").write_file(path, "x", { atomc = false }) end, "fs.write_file", "atomc", "atomic")
    os.remove(path)
    refuses(function() require("lufa.process").spawn({ "/bin/true" }, { stdot = "null" }) end,
      "process.spawn", "stdot", "stdout")
  end)

  it("lufa.sqlite", function()
    local sqlite = require "lufa.sqlite"
    refuses(function() sqlite.open(":memory:", { readnoly = true }) end, "sqlite.open", "readnoly", "readonly")
    local db = assert(sqlite.open(":memory:", { busy_timeout = 10, wal = false }))
    db:close()
  end)

  it("lufa.serve", function()
    local serve = require "lufa.serve"
    refuses(function() serve.start { store = {}, prot = 0 } end, "serve.start", "prot", "port")
  end)

  it("lufa.log", function()
    local log = require "lufa.log"
    refuses(function() log.configure { levl = "info" } end, "lufa.log.configure", "levl", "level")
  end)
end)

describe("the command line", function()
  local function sh(args)
    local p = io.popen(util.shell_quote(util.lufa_binary()) .. " " .. args .. " 2>&1; echo \"exit=$?\"")
    local out = p:read("a")
    p:close()
    return tonumber(out:match("exit=(%d+)%s*$")), out
  end

  it("names the command a misspelt one meant", function()
    local code, out = sh("rnu examples/factory p")
    assert.are.equal(2, code)
    assert.matches("unknown command 'rnu' %(did you mean 'run'%?%)", out)
    code, out = sh("help valdiate")
    assert.are.equal(2, code, out)
    assert.matches("unknown command 'valdiate' %(did you mean 'validate'%?%)", out)
    code, out = sh("runs lsit")
    assert.are.equal(2, code, out)
    assert.matches("unknown runs command 'lsit' %(did you mean 'list'%?%)", out)
    code, out = sh("trigger strat t")
    assert.are.equal(2, code, out)
    assert.matches("unknown trigger command 'strat' %(did you mean 'start'%?%)", out)
  end)

  it("names the flag a misspelt one meant", function()
    local code, out = sh("run examples/factory p --quite")
    assert.are.equal(2, code, out)
    assert.matches("unknown option '%-%-quite' %(did you mean '%-%-quiet'%?%)", out)
  end)

  it("still runs a script whose name is no command", function()
    local code, out = sh("no-such-script-here")
    assert.are.equal(1, code, out)
    assert.matches("cannot open no%-such%-script%-here", out)
  end)
end)
