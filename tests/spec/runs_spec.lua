-- The run store interface, on the memory store, the SQLite store and the PostgreSQL store alike (a server
-- started for this file); then what only a file gives: schema versions, owners that died, a secret-free
-- file, several processes at once; and what a store shared by hosts gives: leases across hosts, one
-- resume of a run a dead host left, a password that appears nowhere.
local lufa = require "lufa"
local json = require "lufa.json"
local secret = require "lufa.secret"
local runs = require "lufa.runs"
local util = require "tests.support.util"
local pg = require "tests.support.postgres"

local dir, server
setup(function()
  dir = util.tempdir()
  server = pg.start()
end)
teardown(function()
  server:stop()
  os.execute("rm -rf " .. util.shell_quote(dir))
end)

local n = 0
local function fresh_path()
  n = n + 1
  return string.format("%s/store%d/runs.db", dir, n)
end

local function pipeline_record(id, fields)
  local r = {runId = id, runGroupId = id, pipelineName = "P", status = "InProgress",
    runStart = runs.iso8601(), invokedBy = {name = "Manual", invokedByType = "Manual"}, parameters = {}}
  for k, v in pairs(fields or {}) do r[k] = v end
  return r
end

local function activity_record(run_id, name, status)
  return {activityRunId = runs.guid(), pipelineRunId = run_id, activityName = name, status = status or "InProgress",
    output = json.object{}}
end

local function where(kind)
  if kind == "memory" then return ":memory:" end
  if kind == "postgresql" then return (server:database()) end
  return fresh_path()
end

for _, kind in ipairs{"memory", "sqlite", "postgresql"} do
  describe("the " .. kind .. " store", function()
    local store
    before_each(function()
      store = assert(runs.open(where(kind)))
    end)
    after_each(function() store:close() end)

    it("pages runs newest first by keyset: every run once, filters, a bad cursor refused", function()
      local t0 = runs.parse_time("2027-01-04T08:00:00Z")
      for i = 1, 23 do
        store:put_pipeline_run(pipeline_record(string.format("00000000-0000-0000-0000-%012d", i), {
          pipelineName = i % 3 == 0 and "Three" or "Other", runStart = runs.iso8601(t0 + i // 2)}))
      end
      store:flush()
      local function walk(filter)
        local seen, cursor = {}, nil
        repeat
          local list, nxt = store:pipeline_runs_page(filter, {limit = 5, cursor = cursor})
          assert.is_table(list, nxt)
          for _, r in ipairs(list) do seen[#seen + 1] = r.runId end
          cursor = nxt
        until not cursor
        return seen
      end
      local want = {}
      for i, r in ipairs(store:pipeline_runs(nil, {newest_first = true})) do want[i] = r.runId end
      assert.are.same(want, walk())
      local three = {}
      for i, r in ipairs(store:pipeline_runs({pipelineName = "Three"}, {newest_first = true})) do three[i] = r.runId end
      assert.are.equal(7, #three)
      assert.are.same(three, walk({pipelineName = "three"}))
      local list, err = store:pipeline_runs_page(nil, {cursor = "x"})
      assert.is_nil(list)
      assert.matches("not a page cursor", err)
    end)

    it("lists every trigger it knows, with its state and last fire time", function()
      local t = runs.parse_time("2027-01-04T08:00:00Z")
      store:claim_fire("f", "Nightly", t, {triggerRunId = runs.guid(), triggerName = "Nightly",
        triggerType = "ScheduleTrigger", scheduledTime = runs.iso8601(t), status = "Succeeded"})
      store:set_trigger_state("f", "Nightly", {runtime_state = "Stopped"})
      store:set_trigger_state("g", "Weekly", {checked = t})
      store:flush()
      local list = store:triggers()
      table.sort(list, function(a, b) return a.scope < b.scope end)
      assert.are.equal(2, #list)
      assert.are.same({"f", "Stopped", t}, {list[1].scope, list[1].runtime_state, list[1].last_fire})
      assert.are.equal("nightly", list[1].name:lower())
      assert.are.same({"g", t}, {list[2].scope, list[2].checked})
    end)

    it("keeps pipeline runs and their activity runs, updated in place", function()
      local r = pipeline_record(runs.guid())
      store:put_pipeline_run(r, {origin = {factory = "/f", parameters = {a = "1"}}})
      local a = activity_record(r.runId, "A")
      store:put_activity_run(a)
      a.status = "Succeeded"
      a.output = {value = 42}
      store:put_activity_run(a)
      store:put_activity_run(activity_record(r.runId, "B"))
      r.status = "Succeeded"
      store:put_pipeline_run(r)
      local got, info = store:get_pipeline_run(r.runId)
      assert.are.equal("Succeeded", got.status)
      assert.are.equal("/f", info.origin.factory)  -- the origin of the first write stays
      local acts = store:activity_runs(r.runId)
      assert.are.equal(2, #acts)
      assert.are.equal("A", acts[1].activityName)
      assert.are.equal(42, acts[1].output.value)
      assert.are.equal(1, #store:activity_runs(r.runId, {activityName = "b"}))
      assert.is_nil(store:get_pipeline_run(runs.guid()))
    end)

    it("lists runs newest first, filtered by pipeline, status and time, with a limit", function()
      local base = runs.wall_time() - 1000
      for i = 1, 6 do
        store:put_pipeline_run(pipeline_record(string.format("00000000-0000-4000-8000-%012d", i), {
          pipelineName = i % 2 == 0 and "Even" or "Odd", status = i <= 3 and "Failed" or "Succeeded",
          runStart = runs.iso8601(base + i * 10)}))
      end
      local all = store:pipeline_runs(nil, {newest_first = true})
      assert.are.equal(6, #all)
      assert.matches("6$", all[1].runId)
      assert.matches("1$", all[6].runId)
      assert.are.equal(3, #store:pipeline_runs({pipelineName = "even"}))
      assert.are.equal(2, #store:pipeline_runs({pipelineName = "Odd", status = "failed"}))
      local recent = store:pipeline_runs(nil, {since = base + 45, newest_first = true})
      assert.are.equal(2, #recent)
      local two = store:pipeline_runs(nil, {limit = 2, newest_first = true})
      assert.are.equal(2, #two)
      assert.matches("5$", two[2].runId)
    end)

    it("finds a run by a unique prefix of its id", function()
      store:put_pipeline_run(pipeline_record("abcd1111-0000-4000-8000-000000000000"))
      store:put_pipeline_run(pipeline_record("abcd2222-0000-4000-8000-000000000000"))
      assert.are.equal("abcd1111-0000-4000-8000-000000000000", store:find_run("abcd1"))
      local id, err = store:find_run("abcd")
      assert.is_nil(id)
      assert.matches("ambiguous", err)
      id, err = store:find_run("ffff")
      assert.is_nil(id)
      assert.matches("no run 'ffff'", err)
    end)

    it("journals remote work per run and key", function()
      local r = pipeline_record(runs.guid())
      store:put_pipeline_run(r)
      store:journal_put(r.runId, "Train/bes.job", {jobId = "job-1"})
      store:journal_put(r.runId, "Update/arm.update", {phase = "sent"})
      assert.are.equal("job-1", store:journal_get(r.runId, "Train/bes.job").jobId)
      store:journal_put(r.runId, "Train/bes.job", nil)
      assert.is_nil(store:journal_get(r.runId, "Train/bes.job"))
      local j = store:journal(r.runId)
      assert.are.equal("sent", j["Update/arm.update"].phase)
    end)

    it("prunes ended runs older than the limit and keeps the rest", function()
      local old = pipeline_record(runs.guid(), {status = "Succeeded", runStart = runs.iso8601(runs.wall_time() - 100 * 86400)})
      local running = pipeline_record(runs.guid(), {runStart = runs.iso8601(runs.wall_time() - 100 * 86400)})
      local new = pipeline_record(runs.guid(), {status = "Failed"})
      for _, r in ipairs{old, running, new} do store:put_pipeline_run(r) end
      store:put_activity_run(activity_record(old.runId, "A", "Succeeded"))
      assert.are.equal(1, store:prune(runs.wall_time() - 90 * 86400))
      assert.is_nil(store:get_pipeline_run(old.runId))
      assert.are.equal(0, #store:activity_runs(old.runId))
      assert.is_table(store:get_pipeline_run(running.runId))
      assert.is_table(store:get_pipeline_run(new.runId))
      assert.are.equal("ok", store:check())
    end)
  end)
end

describe("the SQLite store", function()
  it("is created with its folder, private to its owner", function()
    local path = fresh_path()
    local store = assert(runs.open(path))
    store:close()
    local p = io.popen("stat -c %a " .. util.shell_quote(path) .. " " .. util.shell_quote(path:match("^(.*)/")))
    local modes = p:read("a")
    p:close()
    assert.are.equal("600\n700\n", modes)
  end)

  it("keeps what was written when the process is killed before it could close the store", function()
    local path = fresh_path()
    local r = util.shell_quote(util.lufa_binary()) .. " -e " .. util.shell_quote(string.format([[
      local runs = require "lufa.runs"
      local store = assert(runs.open(%q))
      store:put_pipeline_run({runId = "11111111-0000-4000-8000-000000000000", pipelineName = "P",
        status = "InProgress", runStart = runs.iso8601()})
      require("lufa").sleep(0.05)  -- the loop turned: the write is committed
      os.execute("kill -9 " .. io.open("/proc/self/stat"):read("n"))]], path))
    os.execute(r .. " >/dev/null 2>&1")
    local store = assert(runs.open(path))
    local got = store:get_pipeline_run("11111111-0000-4000-8000-000000000000")
    assert.is_table(got)
    -- its owner never claimed it here, and the process is gone: a reap leaves unowned runs to their lease
    assert.are.equal("ok", store:check())
    store:close()
  end)

  it("marks Interrupted a run whose owning process died, and its activity that was executing", function()
    local path = fresh_path()
    local id = runs.guid()
    -- a child process starts the run, owns it, and is killed
    os.execute(util.shell_quote(util.lufa_binary()) .. " -e " .. util.shell_quote(string.format([[
      local runs = require "lufa.runs"
      local store = assert(runs.open(%q))
      store:put_pipeline_run({runId = %q, pipelineName = "P", status = "InProgress", runStart = runs.iso8601()})
      store:put_activity_run({activityRunId = "a1", pipelineRunId = %q, activityName = "A", status = "Succeeded"})
      store:put_activity_run({activityRunId = "a2", pipelineRunId = %q, activityName = "B", status = "InProgress"})
      store:own(%q)
      require("lufa").sleep(0.05)
      os.execute("kill -9 " .. io.open("/proc/self/stat"):read("n"))]], path, id, id, id, id)) .. " >/dev/null 2>&1")
    local store = assert(runs.open(path))
    assert.are.equal("InProgress", store:get_pipeline_run(id).status)
    local reaped = store:reap()
    assert.are.equal(1, #reaped)
    local rec, info = store:get_pipeline_run(id)
    assert.are.equal("Interrupted", rec.status)
    assert.truthy(rec.message:find("lufa resume " .. id, 1, true), rec.message)
    assert.is_number(info.owner.pid)
    local acts = store:activity_runs(id)
    assert.are.equal("Succeeded", acts[1].status)
    assert.are.equal("Interrupted", acts[2].status)
    assert.are.equal(0, #store:reap())  -- once
    store:close()
  end)

  it("does not reap a run this process owns, nor one whose owner lives", function()
    local store = assert(runs.open(fresh_path()))
    local id = runs.guid()
    store:put_pipeline_run(pipeline_record(id))
    store:own(id)
    assert.are.equal(0, #store:reap())
    store:disown(id)
    store:close()
  end)

  it("delivers a cancel request from another process to the run's owner", function()
    local path = fresh_path()
    local store = assert(runs.open(path))
    local id = runs.guid()
    store:put_pipeline_run(pipeline_record(id))
    local reason
    store:own(id, function(r) reason = r end)
    store:flush()
    os.execute(util.shell_quote(util.lufa_binary()) .. " -e " .. util.shell_quote(string.format([[
      local store = assert(require("lufa.runs").open(%q))
      assert(store:request_cancel(%q, "from elsewhere"))
      store:close()]], path, id)))
    util.wait_until(function() return reason ~= nil end, 10)
    assert.are.equal("from elsewhere", reason)
    store:disown(id)
    store:close()
  end)

  it("refuses a store written by a newer lufa and leaves it untouched", function()
    local path = fresh_path()
    local store = assert(runs.open(path))
    store:close()
    local sqlite = require "lufa.sqlite"
    local db = assert(sqlite.open(path))
    db:user_version(99)
    db:close()
    local before = util.read_file(path)
    local s, err = runs.open(path)
    assert.is_nil(s)
    assert.are.equal("newer_schema", err.code)
    assert.matches("schema version 99", tostring(err))
    assert.matches(path, tostring(err), 1, true)
    assert.are.equal(before, util.read_file(path))
  end)

  it("says which file is not a run store", function()
    local path = dir .. "/not-a-db"
    util.write_file(path, string.rep("this is no database\n", 100))
    local s, err = runs.open(path)
    assert.is_nil(s)
    assert.matches("not%-a%-db", tostring(err))
  end)

  it("never writes a secret: markers instead, and credential-shaped text scrubbed", function()
    local path = fresh_path()
    local store = assert(runs.open(path))
    local id = runs.guid()
    local key = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs="
    local r = pipeline_record(id, {parameters = {apiKey = tostring(secret(key))},
      message = "the service said: https://a.blob.core.windows.net/c/m.ilearner?sv=2020&sig=" .. "Zm9vYmFyc2lnbmF0dXJl" .. "&se=x"})
    store:put_pipeline_run(r)
    store:put_activity_run({activityRunId = "x", pipelineRunId = id, activityName = "A", status = "Succeeded",
      output = {token = secret(key)}})
    store:journal_put(id, "A/job", {note = secret(key)})
    store:close()
    local bytes = (util.read_file(path) or "") .. (util.read_file(path .. "-wal") or "")
    assert.is_nil(bytes:find(key, 1, true))
    if pcall(require, "lufa.redact") then
      assert.is_nil(bytes:find("Zm9vYmFyc2lnbmF0dXJl", 1, true))
    end
  end)

  it("lets four processes write to one store at once without losing a record", function()
    local path = fresh_path()
    assert(runs.open(path)):close()
    local script = [[
      local runs = require "lufa.runs"
      local lufa = require "lufa"
      local store = assert(runs.open(%q))
      for i = 1, 50 do
        local id = string.format("%%08d-0000-4000-8000-%%012d", %d, i)
        store:put_pipeline_run({runId = id, pipelineName = "P%d", status = "InProgress", runStart = runs.iso8601()})
        for a = 1, 3 do
          store:put_activity_run({activityRunId = id .. "-" .. a, pipelineRunId = id, activityName = "A" .. a,
            status = "Succeeded"})
        end
        lufa.sleep(0)  -- one turn of the loop: one commit
        store:put_pipeline_run({runId = id, pipelineName = "P%d", status = "Succeeded", runStart = runs.iso8601()})
      end
      store:close()]]
    local cmds = {}
    for w = 1, 4 do
      cmds[#cmds + 1] = util.shell_quote(util.lufa_binary()) .. " -e " ..
        util.shell_quote(string.format(script, path, w, w, w)) .. " &"
    end
    assert(os.execute("(" .. table.concat(cmds, " ") .. " wait)"))
    local store = assert(runs.open(path))
    local all = store:pipeline_runs()
    assert.are.equal(200, #all)
    for _, r in ipairs(all) do
      assert.are.equal("Succeeded", r.status)
      assert.are.equal(3, #store:activity_runs(r.runId))
    end
    assert.are.equal("ok", store:check())
    store:close()
  end)
end)

describe("the PostgreSQL store", function()
  local function child(url, script, env)
    return os.execute((env or "") .. " " .. util.shell_quote(util.lufa_binary()) .. " -e " ..
      util.shell_quote(string.format(script, url)) .. " >/dev/null 2>&1")
  end

  it("names itself without the password, and a refused password appears in no error", function()
    local url = server:database()
    local store = assert(runs.open(url))
    assert.is_nil(store.path:find(server.password, 1, true))
    assert.matches("^postgresql://lufa@127%.0%.0%.1:%d+/db%d+$", store.path)
    store:close()
    local wrong = "not-the-password-" .. runs.guid()
    local s, err = runs.open((url:gsub(server.password, wrong)))
    assert.is_nil(s)
    assert.matches("password authentication failed", tostring(err))
    assert.is_nil(tostring(err):find(wrong, 1, true))
    assert.matches("127%.0%.0%.1", tostring(err))  -- says which server
  end)

  it("is selected by postgres:// too, and a bad URL is named", function()
    local url = server:database():gsub("^postgresql://", "postgres://")
    local store = assert(runs.open(url))
    assert.are.equal("ok", store:check())
    store:close()
    local s, err = runs.open("postgresql://lufa@127.0.0.1:notaport/db")
    assert.is_nil(s)
    assert.matches("notaport", tostring(err))
  end)

  it("refuses a store written by a newer lufa and leaves it untouched", function()
    local url = server:database()
    local store = assert(runs.open(url))
    store:query("UPDATE lufa_schema SET version = 99")
    store:close()
    local s, err = runs.open(url)
    assert.is_nil(s)
    assert.are.equal("newer_schema", err.code)
    assert.matches("schema version 99", tostring(err))
    store = assert(require("lufa.postgres").connect(require("lufa.runs.postgres").parse_url(url)))
    assert.are.equal(99, store:first("SELECT version FROM lufa_schema").version)
    store:close()
  end)

  it("takes a run whose host died for Interrupted once its lease ran out, and gives its resume to one host", function()
    local url = server:database()
    local id = runs.guid()
    child(url, [[
      local runs = require "lufa.runs"
      local store = assert(runs.open(%q))
      store:put_pipeline_run({runId = "]] .. id .. [[", pipelineName = "P", status = "InProgress", runStart = runs.iso8601()})
      store:put_activity_run({activityRunId = "a1", pipelineRunId = "]] .. id .. [[", activityName = "A", status = "InProgress"})
      store:own("]] .. id .. [[")
      os.execute("kill -9 " .. io.open("/proc/self/stat"):read("n"))]], "LUFA_HOST_ID=gone-host LUFA_LEASE_SECONDS=1")
    local a, b = assert(runs.open(url)), assert(runs.open(url))
    local _, info = a:get_pipeline_run(id)
    assert.are.equal("gone-host", info.host)
    local reaped = {}
    util.wait_until(function()
      for _, r in ipairs(a:reap()) do reaped[#reaped + 1] = r end
      return #reaped > 0
    end, 30)
    assert.are.equal(1, #reaped)
    assert.are.equal(0, #b:reap())  -- once
    local rec = a:get_pipeline_run(id)
    assert.are.equal("Interrupted", rec.status)
    assert.matches("gone%-host", rec.message)
    assert.are.equal("Interrupted", a:activity_runs(id)[1].status)
    assert.is_true(b:claim_resume(id))
    assert.is_false(a:claim_resume(id))  -- b resumes it; its lease is alive
    -- the listing now names the host that resumes it
    assert.are.equal(require("lufa.runs.owner").self().host, a:pipeline_runs()[1].host)
    a:close()
    b:close()
  end)

  it("does not reap a run whose owner on another host keeps its lease", function()
    local url = server:database()
    local store = assert(runs.open(url))
    local id = runs.guid()
    store:put_pipeline_run(pipeline_record(id))
    store:query("UPDATE pipeline_runs SET owner = $1, owner_host = 'elsewhere' WHERE run_id = $2",
      json.encode{host = "elsewhere", pid = 1, start = "1", boot = "x"}, id)
    assert.are.equal(0, #store:reap())
    assert.are.equal("InProgress", store:get_pipeline_run(id).status)
    store:close()
  end)

  it("delivers a cancel request from another process to the run's owner", function()
    local url = server:database()
    local store = assert(runs.open(url))
    local id = runs.guid()
    store:put_pipeline_run(pipeline_record(id))
    local reason
    store:own(id, function(r) reason = r end)
    assert(child(url, [[
      local store = assert(require("lufa.runs").open(%q))
      assert(store:request_cancel("]] .. id .. [[", "from another host"))
      store:close()]]))
    util.wait_until(function() return reason ~= nil end, 10)
    assert.are.equal("from another host", reason)
    store:disown(id)
    store:close()
  end)

  it("never writes a secret: markers instead, and credential-shaped text scrubbed", function()
    local url = server:database()
    local store = assert(runs.open(url))
    local id = runs.guid()
    local key = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs="
    store:put_pipeline_run(pipeline_record(id, {parameters = {apiKey = tostring(secret(key))},
      message = "https://a.blob.core.windows.net/c/m?sv=2020&sig=" .. "Zm9vYmFyc2lnbmF0dXJl" .. "&se=x"}))
    store:put_activity_run({activityRunId = "x", pipelineRunId = id, activityName = "A", status = "Succeeded",
      output = {token = secret(key)}})
    store:journal_put(id, "A/job", {note = secret(key)})
    local dump = {}
    for _, t in ipairs{"pipeline_runs", "activity_runs", "journal"} do
      for _, row in ipairs(store:query("SELECT row_to_json(t)::text AS j FROM " .. t .. " t")) do dump[#dump + 1] = row.j end
    end
    local text = table.concat(dump, "\n")
    assert.truthy(text:find(id, 1, true))
    assert.is_nil(text:find(key, 1, true))
    assert.is_nil(text:find("Zm9vYmFyc2lnbmF0dXJl", 1, true))
    store:close()
  end)

  it("is made by the first of eight processes that open a new database at once, and used by all", function()
    local url = server:database()
    local cmds = {}
    for w = 1, 8 do
      cmds[#cmds + 1] = util.shell_quote(util.lufa_binary()) .. " -e " .. util.shell_quote(string.format([[
        local runs = require "lufa.runs"
        local store = assert(runs.open(%q))
        store:put_pipeline_run({runId = "run-%d", pipelineName = "P", status = "Succeeded", runStart = runs.iso8601()})
        store:close()]], url, w)) .. " &"
    end
    assert(os.execute("(" .. table.concat(cmds, " ") .. " wait)"))
    local store = assert(runs.open(url))
    assert.are.equal(8, #store:pipeline_runs())
    assert.are.equal(1, #store:query("SELECT version FROM lufa_schema"))
    store:close()
  end)

  it("lets four processes write to one store at once without losing a record", function()
    local url = server:database()
    assert(runs.open(url)):close()
    local script = [[
      local runs = require "lufa.runs"
      local store = assert(runs.open(%q))
      for i = 1, 50 do
        local id = string.format("%%08d-0000-4000-8000-%%012d", %d, i)
        store:put_pipeline_run({runId = id, pipelineName = "P%d", status = "InProgress", runStart = runs.iso8601()})
        for a = 1, 3 do
          store:put_activity_run({activityRunId = id .. "-" .. a, pipelineRunId = id, activityName = "A" .. a,
            status = "Succeeded"})
        end
        store:put_pipeline_run({runId = id, pipelineName = "P%d", status = "Succeeded", runStart = runs.iso8601()})
      end
      store:close()]]
    local cmds = {}
    for w = 1, 4 do
      cmds[#cmds + 1] = util.shell_quote(util.lufa_binary()) .. " -e " ..
        util.shell_quote(string.format(script, url, w, w, w)) .. " &"
    end
    assert(os.execute("(" .. table.concat(cmds, " ") .. " wait)"))
    local store = assert(runs.open(url))
    local all = store:pipeline_runs()
    assert.are.equal(200, #all)
    for _, r in ipairs(all) do
      assert.are.equal("Succeeded", r.status)
      assert.are.equal(3, #store:activity_runs(r.runId))
    end
    store:close()
  end)
end)
