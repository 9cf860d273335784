-- lufa serve without a browser: no secret of a run in its page, its API or its live events; the token off
-- loopback, the CSRF token on every POST, the Host check; keyset paging over the store; the JSON API.
local lufa = require "lufa"
local json = require "lufa.json"
local http = require "lufa.http"
local pipeline = require "lufa.pipeline"
local runs = require "lufa.runs"
local serve = require "lufa.serve"
local util = require "tests.support.util"

local SECRET = "Sup3rSecretValue-do-not-show-4711"
local SIG = "abcdefSIGNATURE123"

local dir, store, factory

local function get(url, headers)
  local res, err = http.request{url = url, headers = headers, timeout = 20, follow_redirects = false}
  assert.is_truthy(res, tostring(err))
  return res
end

local function post(url, body, headers)
  local h = {["Content-Type"] = "application/x-www-form-urlencoded"}
  for k, v in pairs(headers or {}) do h[k] = v end
  local res, err = http.request{method = "POST", url = url, body = body, headers = h, timeout = 20, follow_redirects = false}
  assert.is_truthy(res, tostring(err))
  return res
end

local function header(res, name)
  for k, v in pairs(res.headers or {}) do
    if k:lower() == name then return type(v) == "table" and v[1] or v end
  end
end

local function with_app(opts, fn)
  opts.store = opts.store or store
  local app = assert(serve.start(opts))
  local ok, err = pcall(fn, app, string.format("http://127.0.0.1:%d", app.port))
  app:close()
  assert(ok, err)
end

setup(function()
  dir = util.tempdir()
  store = assert(runs.open(dir .. "/runs.db"))
  factory = assert(pipeline.load_factory("tests/browser/factory",
    {activity_folders = {"tests/browser/activities"}, store = store}))
end)

teardown(function()
  store:close()
  os.execute("rm -rf " .. util.shell_quote(dir))
end)

describe("lufa serve", function()
  local failed

  setup(function()
    -- the failed run takes the SecureString's default (so it can be rerun), the other one is given it
    failed = assert(factory:run("Flaky", {parameters = {marker = dir .. "/missing"}}))
    assert.are.equal("Failed", failed.status)
    util.write_file(dir .. "/present", "x")
    assert.are.equal("Succeeded", factory:run("Flaky", {parameters = {marker = dir .. "/present", apiKey = SECRET}}).status)
  end)

  it("shows a run without any of its secrets, in the page, the API and the live events", function()
    local ok_run = store:pipeline_runs({pipelineName = "Flaky", status = "Succeeded"}, {limit = 1})[1]
    with_app({}, function(_, base)
      for _, path in ipairs{"/runs", "/runs/" .. failed.runId, "/runs/" .. ok_run.runId, "/api/runs",
          "/api/runs/" .. failed.runId, "/api/runs/" .. ok_run.runId, "/runs/" .. ok_run.runId .. "/events"} do
        local res = get(base .. path)
        assert.are.equal(200, res.status, path)
        assert.is_nil(res.body:find(SECRET, 1, true), path .. " shows the SecureString parameter")
        assert.is_nil(res.body:find(SIG, 1, true), path .. " shows a SAS signature")
      end
      local page = get(base .. "/runs/" .. failed.runId).body
      assert.is_truthy(page:find("InputMissing", 1, true))
      assert.is_truthy(page:find("&lt;redacted&gt;", 1, true))      -- the parameter is there, as its marker
      local events = get(base .. "/runs/" .. ok_run.runId .. "/events")
      assert.are.equal("text/event-stream; charset=utf-8", header(events, "content-type"))
      assert.is_truthy(events.body:find("event: update\n", 1, true))
      assert.is_truthy(events.body:find("event: end\n", 1, true))   -- the run has ended: the stream ends too
    end)
  end)

  it("refuses requests without the token when bound off loopback, and keeps the token in a cookie", function()
    with_app({bind = "0.0.0.0", token = "t0ken-for-the-serve-spec-0123456789"}, function(app, base)
      assert.are.equal(401, get(base .. "/runs").status)
      assert.are.equal(401, get(base .. "/api/runs").status)
      assert.are.equal(401, get(base .. "/runs?token=wrong").status)
      assert.are.equal(401, get(base .. "/runs", {Cookie = "lufa_token=wrong"}).status)
      local first = get(base .. "/runs?token=" .. app.token .. "&status=Failed")
      assert.are.equal(303, first.status)
      assert.are.equal("/runs?status=Failed", header(first, "location"))
      local cookie = header(first, "set-cookie")
      assert.is_truthy(cookie:find("HttpOnly", 1, true) and cookie:find("SameSite=Strict", 1, true))
      local later = get(base .. "/runs?status=Failed", {Cookie = cookie:match("^[^;]+")})
      assert.are.equal(200, later.status)
      assert.is_truthy(later.body:find(failed.runId, 1, true))
      assert.are.equal(200, get(base .. "/api/runs", {Authorization = "Bearer " .. app.token}).status)
      -- an encoded line break in the path stays encoded in the redirect (no header injection)
      local crlf = get(base .. "/runs%0d%0aSet-Cookie:%20x=y?token=" .. app.token)
      assert.are.equal(303, crlf.status)
      assert.are.equal("/runs%0d%0aSet-Cookie:%20x=y", header(crlf, "location"))
      -- the token alone does not allow a POST: the CSRF token is needed too
      assert.are.equal(403, post(base .. "/runs/" .. failed.runId .. "/cancel", "", {Cookie = cookie:match("^[^;]+")}).status)
    end)
  end)

  it("refuses a token-less off-loopback start: one is generated", function()
    with_app({bind = "0.0.0.0"}, function(app, base)
      assert.is_truthy(app.token and #app.token >= 24)
      assert.is_truthy(app.url:find("?token=" .. app.token, 1, true))
      assert.are.equal(401, get(base .. "/runs").status)
    end)
  end)

  it("refuses a POST without the CSRF token, and acts with it", function()
    with_app({}, function(app, base)
      local url = base .. "/api/triggers/stop"
      local body = json.encode{scope = "/factory", name = "Nightly"}
      local refused = post(url, body, {["Content-Type"] = "application/json"})
      assert.are.equal(403, refused.status)
      assert.are.equal(403, post(url, body, {["Content-Type"] = "application/json", ["X-CSRF-Token"] = "guess"}).status)
      assert.is_nil(store:trigger_state("/factory", "Nightly").runtime_state)
      local session = json.decode(get(base .. "/api/session").body)
      local done = post(url, body, {["Content-Type"] = "application/json", ["X-CSRF-Token"] = session.csrfToken})
      assert.are.equal(200, done.status, done.body)
      assert.are.equal("Stopped", store:trigger_state("/factory", "Nightly").runtime_state)
      -- a form posts the token as a field
      assert.are.equal(403, post(base .. "/triggers/start", "scope=%2Ffactory&name=Nightly").status)
      local form = post(base .. "/triggers/start", "scope=%2Ffactory&name=Nightly&csrf=" .. app.csrf)
      assert.are.equal(303, form.status)
      assert.are.equal("Started", store:trigger_state("/factory", "Nightly").runtime_state)
      local page = get(base .. "/triggers").body
      assert.is_truthy(page:find("Nightly", 1, true))
    end)
  end)

  it("requires a token given on loopback too", function()
    with_app({token = "a-loopback-token-0123456789"}, function(app, base)
      assert.are.equal(401, get(base .. "/runs").status)
      assert.are.equal(200, get(base .. "/runs", {Cookie = "lufa_token=" .. app.token}).status)
    end)
  end)

  it("answers only to its own address in the Host header (no DNS rebinding)", function()
    with_app({}, function(app, base)
      assert.are.equal(421, get(base .. "/runs", {Host = "attacker.example:" .. app.port}).status)
      assert.are.equal(421, get(base .. "/runs", {Host = "127.0.0.1:1"}).status)
      assert.are.equal(200, get(base .. "/runs", {Host = "localhost:" .. app.port}).status)
    end)
  end)

  it("says which query parameter is wrong", function()
    with_app({}, function(app, base)
      local res = get(base .. "/api/runs?since=yesterday")
      assert.are.equal(400, res.status)
      assert.is_truthy(json.decode(res.body).error:find("since: expected a time", 1, true))
      assert.are.equal(400, get(base .. "/api/runs?limit=0").status)
      assert.are.equal(400, get(base .. "/api/runs?cursor=nonsense").status)
      assert.are.equal(404, get(base .. "/api/runs/00000000-0000-0000-0000-000000000000").status)
      assert.are.equal(405, post(base .. "/runs", "csrf=" .. app.csrf).status)
    end)
  end)

  it("lists a factory's triggers with their next fire time, and starts and stops them", function()
    with_app({factories = {"examples/adf-retraining"}}, function(app, base)
      local doc = json.decode(get(base .. "/api/triggers").body)
      local nightly
      for _, t in ipairs(doc.value) do if t.name == "NightlyRetrain" then nightly = t end end
      assert.is_truthy(nightly, "NightlyRetrain listed")
      assert.are.equal("ScheduleTrigger", nightly.type)
      assert.is_truthy(runs.parse_time(nightly.nextFireTime) > runs.wall_time())
      assert.are.equal(json.null, nightly.lastFireTime)
      local scope = nightly.scope
      local res = post(base .. "/triggers/stop", "scope=" .. require("lufa.serve.http").escape(scope) ..
        "&name=NightlyRetrain&csrf=" .. app.csrf)
      assert.are.equal(303, res.status)
      assert.are.equal("Stopped", store:trigger_state(scope, "NightlyRetrain").runtime_state)
      local page = get(base .. "/triggers").body
      assert.is_truthy(page:find('data-trigger="NightlyRetrain"', 1, true))
      assert.is_truthy(page:find(">Stopped<", 1, true))
      assert.is_truthy(page:find('action="/triggers/start"', 1, true))
    end)
  end)

  it("cancels a run in progress through the store, as lufa runs cancel does", function()
    local handle = assert(factory:start("Flaky", {parameters = {marker = dir .. "/never"}}))
    with_app({}, function(app, base)
      local res = post(base .. "/api/runs/" .. handle.runId .. "/cancel", "", {["X-CSRF-Token"] = app.csrf})
      assert.are.equal(200, res.status, res.body)
      assert.are.equal("Cancelled", handle:wait().status)
      local again = post(base .. "/api/runs/" .. handle.runId .. "/cancel", "", {["X-CSRF-Token"] = app.csrf})
      assert.are.equal(409, again.status)
      assert.is_truthy(json.decode(again.body).error:find("has ended", 1, true))
    end)
  end)

  it("asks for a run's secret parameters again to rerun it, and never shows them", function()
    local given = store:pipeline_runs({pipelineName = "Flaky", status = "Succeeded"}, {limit = 1})[1]
    with_app({}, function(app, base)
      local page = get(base .. "/runs/" .. given.runId).body
      assert.is_truthy(page:find('type="password" autocomplete="off" required name="param.apiKey"', 1, true))
      local refused = post(base .. "/runs/" .. given.runId .. "/rerun", "csrf=" .. app.csrf)
      assert.are.equal(409, refused.status)
      assert.is_truthy(refused.body:find("apiKey", 1, true))
      local res = post(base .. "/runs/" .. given.runId .. "/rerun", "csrf=" .. app.csrf .. "&param.apiKey=" .. SECRET)
      assert.are.equal(303, res.status, res.body)
      local id = header(res, "location"):match("^/runs/(.+)$")
      assert.are.equal("Succeeded", app.handles[id]:wait().status)
      local again = get(base .. "/runs/" .. id).body
      assert.is_nil(again:find(SECRET, 1, true))
      assert.is_nil(get(base .. "/api/runs/" .. id).body:find(SECRET, 1, true))
    end)
  end)

  it("reruns a failed run from its failure through the API", function()
    with_app({}, function(app, base)
      util.write_file(dir .. "/missing", "now it exists")
      local res = post(base .. "/api/runs/" .. failed.runId .. "/rerun", json.encode{fromFailure = true},
        {["Content-Type"] = "application/json", ["X-CSRF-Token"] = app.csrf})
      assert.are.equal(200, res.status, res.body)
      local id = json.decode(res.body).runId
      assert.is_truthy(app.handles[id])
      local record = app.handles[id]:wait()
      assert.are.equal("Succeeded", record.status)
      assert.are.equal(failed.runGroupId, record.runGroupId)
      local doc = json.decode(get(base .. "/api/runs/" .. id).body)
      assert.are.equal("Succeeded", doc.pipelineRun.status)
      assert.is_true(doc.finished)
    end)
  end)
end)

describe("keyset paging", function()
  local function fill(s, n)
    local t0 = 1700000000
    for i = 1, n do
      s:put_pipeline_run({runId = string.format("00000000-0000-0000-0000-%012d", i), pipelineName = i % 3 == 0 and "Three" or "Other",
        status = i % 2 == 0 and "Succeeded" or "Failed", runStart = runs.iso8601(t0 + i // 2),   -- pairs share a start
        invokedBy = {name = "Manual", invokedByType = "Manual"}})
    end
  end

  local function all_pages(s, filter, limit)
    local seen, cursor, pages = {}, nil, 0
    repeat
      local list, nxt = s:pipeline_runs_page(filter, {limit = limit, cursor = cursor})
      assert.is_truthy(list, nxt)
      pages = pages + 1
      for _, r in ipairs(list) do seen[#seen + 1] = r.runId end
      cursor = nxt
    until not cursor
    return seen, pages
  end

  for _, kind in ipairs{"sqlite", "memory"} do
    it("walks every run once, newest first, in the " .. kind .. " store", function()
      local path = dir .. "/paging-" .. kind .. ".db"
      local s = kind == "sqlite" and assert(runs.open(path)) or runs.memory()
      fill(s, 230)
      s:flush()
      local ids, pages = all_pages(s, nil, 50)
      assert.are.equal(230, #ids)
      assert.are.equal(5, pages)
      local expected = s:pipeline_runs(nil, {newest_first = true})
      for i, r in ipairs(expected) do assert.are.equal(r.runId, ids[i]) end
      local three = all_pages(s, {pipelineName = "three", status = "Failed"}, 7)
      local want = s:pipeline_runs({pipelineName = "Three", status = "Failed"}, {newest_first = true})
      assert.are.equal(#want, #three)
      for i, r in ipairs(want) do assert.are.equal(r.runId, three[i]) end
      local list, err = s:pipeline_runs_page(nil, {cursor = "x"})
      assert.is_nil(list)
      assert.is_truthy(err:find("not a page cursor", 1, true))
      s:close()
    end)
  end

  it("uses an index for every page, however deep", function()
    local s = assert(runs.open(dir .. "/plan.db"))
    for _, q in ipairs{
        "SELECT seq FROM pipeline_runs WHERE (start_ms, seq) < (1, 1) ORDER BY start_ms DESC, seq DESC LIMIT 51",
        "SELECT seq FROM pipeline_runs WHERE status = 'x' COLLATE NOCASE AND (start_ms, seq) < (1, 1) " ..
          "ORDER BY start_ms DESC, seq DESC LIMIT 51",
        "SELECT seq FROM pipeline_runs WHERE pipeline_name = 'x' COLLATE NOCASE AND (start_ms, seq) < (1, 1) " ..
          "ORDER BY start_ms DESC, seq DESC LIMIT 51"} do
      local plan = {}
      for row in s.db:rows("EXPLAIN QUERY PLAN " .. q) do plan[#plan + 1] = row.detail end
      plan = table.concat(plan, "; ")
      assert.is_nil(plan:find("TEMP B-TREE", 1, true), plan)   -- no sort of the whole table
    end
    s:close()
  end)
end)

describe("lufa serve on the command line", function()
  local function sh(cmd)
    local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
    local out = p:read("a")
    p:close()
    return tonumber(out:match("exit=(%d+)%s*$")), out
  end
  local bin = util.shell_quote(util.lufa_binary())

  it("says what is wrong with its options", function()
    local status, out = sh(bin .. " serve --port 70000 --store :memory:")
    assert.are.equal(2, status)
    assert.is_truthy(out:find("--port expects a port number 0..65535, got '70000'", 1, true), out)
    status, out = sh(bin .. " serve --bind 0.0.0.0 --token short --store :memory:")
    assert.are.equal(2, status)
    assert.is_truthy(out:find("--token must be at least 16 characters", 1, true), out)
    status, out = sh(bin .. " serve --bind localhost --port 0 --store :memory:")
    assert.are.equal(2, status)
    assert.is_truthy(out:find("not a numeric IP address", 1, true), out)
    status, out = sh(bin .. " serve /nonexistent/factory --store :memory:")
    assert.are.equal(2, status)
    assert.is_truthy(out:find("/nonexistent/factory", 1, true), out)
  end)
end)

describe("lufa.server", function()
  it("hands a complete request to Lua, and accept gives nil once the server is closed", function()
    local server = require "lufa.server"
    local srv = assert(server.listen("127.0.0.1", 0))
    local seen
    local task = lufa.spawn(function()
      while true do
        local req, conn = srv:accept()
        if not req then return "closed" end
        seen = req
        local body = req.method .. " " .. req.body
        assert(conn:send("HTTP/1.1 200 OK\r\nContent-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body))
        conn:close()
      end
    end)
    local res = assert(http.request{method = "POST", url = "http://127.0.0.1:" .. srv:port() .. "/a%20b?x=1",
      body = "payload", headers = {["X-Probe"] = "one", ["Content-Type"] = "text/plain"}, timeout = 10})
    assert.are.equal(200, res.status)
    assert.are.equal("POST payload", res.body)
    assert.are.equal("/a%20b?x=1", seen.target)
    assert.are.equal("1.1", seen.version)
    assert.are.equal("127.0.0.1", seen.peer)
    assert.are.equal("one", seen.headers["x-probe"])
    assert.are.equal("7", seen.headers["content-length"])
    srv:close()
    assert.are.equal("closed", task:wait())
    local none, err = server.listen("localhost", 0)
    assert.is_nil(none)
    assert.are.equal("address", err.code)
  end)
end)
