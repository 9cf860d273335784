-- A BlobEventsTrigger against the Blob Storage emulator: blobs already there are not events; a new blob
-- under blobPathBeginsWith ending with blobPathEndsWith fires once with @triggerBody().fileName and
-- folderPath; other paths, empty blobs (ignoreEmptyBlobs) and unchanged blobs do not; an overwritten one
-- fires again; after a restart, what was seen stays seen and what arrived meanwhile fires.
local json = require "lufa.json"
local blob = require "lufa.blob"
local pipeline = require "lufa.pipeline"
local runs = require "lufa.runs"
local scheduler = require "lufa.schedule.scheduler"
local util = require "tests.support.util"
local S = require "tests.spec.blob_support"

describe("a BlobEventsTrigger", function()
  local state, env, work, box, root, store_path

  setup(function()
    work = S.tmpdir()
    state, env = S.start_emulators(false)
    local client = assert(blob.client(env.LUFA_EMU_STORAGE_CONNECTION_STRING))
    box = client:container("incoming")
    assert(box:create())
    local account = env.LUFA_EMU_STORAGE_CONNECTION_STRING:match("AccountName=([^;]+)")
    root = work .. "/factory"
    for _, d in ipairs{"pipeline", "trigger", "linkedService"} do assert(require("lufa.fs").mkdir(root .. "/" .. d, "700", true)) end
    util.write_file(root .. "/linkedService/Storage.json", json.encode{name = "Storage", properties = {
      type = "AzureBlobStorage", typeProperties = {connectionString = {type = "SecureString",
        value = env.LUFA_EMU_STORAGE_CONNECTION_STRING}}}})
    util.write_file(root .. "/pipeline/Ingest.json", json.encode{name = "Ingest", properties = {
      parameters = {file = {type = "String"}, folder = {type = "String"}},
      activities = {{name = "w", type = "Wait", typeProperties = {waitTimeInSeconds = 0}}}}})
    util.write_file(root .. "/trigger/NewData.json", json.encode{name = "NewData", properties = {
      type = "BlobEventsTrigger", runtimeState = "Started",
      typeProperties = {blobPathBeginsWith = "/incoming/blobs/data/", blobPathEndsWith = ".csv", ignoreEmptyBlobs = true,
        events = {"Microsoft.Storage.BlobCreated"},
        scope = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/" .. account},
      pipelines = {{pipelineReference = {referenceName = "Ingest", type = "PipelineReference"},
        parameters = {file = "@triggerBody().fileName", folder = "@triggerBody().folderPath"}}}}})
    store_path = work .. "/runs.db"
  end)

  teardown(function()
    S.stop_emulators(state)
    S.remove_tree(work)
  end)

  local function start(lines)
    local store = assert(runs.open(store_path))
    local f = assert(pipeline.load_factory(root, {store = store}))
    local sched, problems = scheduler.new{factory = f, store = store, poll = 0.1,
      log = function(line) lines[#lines + 1] = line end}
    assert.are.same({}, problems)
    sched:start()
    return sched, store, f
  end

  local function stop(sched, store)
    sched:drain(5, "test over")
    sched:wait()
    store:close()
  end

  local function fires(store, f)
    local out = {}
    for _, tr in ipairs(store:trigger_runs(f.origin.factory, "NewData")) do
      local rec = store:get_pipeline_run(tr.triggeredPipelines.Ingest)
      out[#out + 1] = rec and (rec.parameters.folder .. " " .. rec.parameters.file .. " " .. rec.status) or "?"
    end
    return out
  end

  local function wait_fires(store, f, n)
    util.wait_until(function()
      local list = fires(store, f)
      if #list < n then return false end
      for _, x in ipairs(list) do if not x:match(" Succeeded$") then return false end end
      return true
    end, 20)
    return fires(store, f)
  end

  it("fires once per new or changed matching blob, never for what was there first", function()
    assert(box:blob("data/old.csv"):put("a,b\n1,2\n"))
    local lines = {}
    local sched, store, f = start(lines)
    util.wait_until(function() return table.concat(lines, "\n"):find("watching incoming/data/") end, 20)
    assert.matches("1 blob%(s%) there now are not events", table.concat(lines, "\n"))

    assert(box:blob("data/a.csv"):put("x\n1\n"))
    assert(box:blob("data/notes.txt"):put("not csv"))
    assert(box:blob("data/empty.csv"):put(""))
    assert(box:blob("other/b.csv"):put("x\n2\n"))
    assert.are.same({"incoming/data a.csv Succeeded"}, wait_fires(store, f, 1))

    assert(box:blob("data/a.csv"):put("x\n1\n3\n"))   -- overwritten: a new ETag
    assert.are.same({"incoming/data a.csv Succeeded", "incoming/data a.csv Succeeded"}, wait_fires(store, f, 2))
    stop(sched, store)

    assert(box:blob("data/late/c.csv"):put("x\n4\n"))   -- arrives while lufa is not running
    lines = {}
    sched, store, f = start(lines)
    local list = wait_fires(store, f, 3)
    assert.are.same({"incoming/data a.csv Succeeded", "incoming/data a.csv Succeeded",
      "incoming/data/late c.csv Succeeded"}, list)
    require("lufa").sleep(0.5)   -- five more listings change nothing
    assert.are.equal(3, #fires(store, f))
    stop(sched, store)
  end)
end)
