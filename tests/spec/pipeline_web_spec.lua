-- WebActivity against a small local HTTP server on a free loopback port.
local lufa = require "lufa"
local json = require "lufa.json"
local http = require "lufa.http"
local pipeline = require "lufa.pipeline"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local S = dofile(here .. "pipeline_support.lua")
local act = S.act

-- The server stops itself after 60 s even if the spec dies.
local SERVER = [[
const http = require("http");
const fs = require("fs");
const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => body += c);
  req.on("end", () => {
    const send = (status, obj, headers) => {
      res.writeHead(status, Object.assign({"Content-Type": "application/json"}, headers || {}));
      res.end(typeof obj === "string" ? obj : JSON.stringify(obj));
    };
    if (req.url === "/echo") return send(200, {method: req.method, body: body ? JSON.parse(body) : null,
      auth: req.headers["authorization"] || null, contentType: req.headers["content-type"] || null,
      custom: req.headers["x-custom"] || null});
    if (req.url === "/text") return send(200, "plain words", {"Content-Type": "text/plain"});
    if (req.url === "/fail") return send(500, {error: "nope"});
    if (req.url === "/async") return send(202, "", {"Location": "http://127.0.0.1:" + server.address().port + "/done", "Retry-After": "0"});
    if (req.url === "/done") return send(200, {done: true});
    if (req.url === "/slow") return setTimeout(() => send(200, {late: true}), 3000);
    if (req.url === "/shutdown") { send(200, {}); server.close(); process.exit(0); }
    send(404, {error: "not found"});
  });
});
server.listen(0, "127.0.0.1", () => fs.writeFileSync(process.argv[2], String(server.address().port)));
setTimeout(() => process.exit(0), 60000).unref();
]]

local base
local has_node = os.execute("command -v node >/dev/null 2>&1")

setup(function()
  if not has_node then return end
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  local script = io.open(dir .. "/server.js", "w")
  script:write(SERVER)
  script:close()
  os.execute(string.format("node %s/server.js %s/port >/dev/null 2>&1 &", dir, dir))
  for _ = 1, 100 do
    local f = io.open(dir .. "/port")
    local port = f and f:read("a")
    if f then f:close() end
    if port and port ~= "" then
      base = "http://127.0.0.1:" .. port
      break
    end
    lufa.sleep(0.05)
  end
  os.execute("rm -rf " .. dir)
end)

teardown(function()
  if base then http.request{method = "GET", url = base .. "/shutdown", timeout = 2} end
end)

local function web(name, props, extra)
  return act(name, "WebActivity", nil, props, extra)
end

describe("WebActivity", function()
  it("sends method, headers and a JSON body, and exposes the response as output", function()
    assert(base, "the local test server did not start")
    local f = S.factory({
      web("Call", {method = "post", url = base .. "/echo", headers = {["X-Custom"] = "@pipeline().Pipeline"},
        body = {run = "@{pipeline().RunId}", n = 3},
        authentication = {type = "Basic", username = "u", password = {type = "SecureString", value = "p4ss"}}}),
      act("Read", "Ok", {{"Call", "Succeeded"}}, {value = "@activity('Call').output.body.n"}),
    })
    local rec, _, recs = S.run(f)
    assert.are.equal("Succeeded", rec.status, rec.message)
    local out = recs.Call.output
    assert.are.equal("POST", out.method)
    assert.are.equal(rec.runId, out.body.run)
    assert.are.equal("P", out.custom)
    assert.are.equal("application/json", out.contentType)
    assert.are.equal("Basic dTpwNHNz", out.auth)
    assert.is_table(out.ADFWebActivityResponseHeaders)
    assert.are.equal(3, recs.Read.output.value)
    assert.is_nil(json.encode(recs.Call.input):find("p4ss", 1, true))
  end)

  it("wraps a non-JSON body as Response", function()
    assert(base, "the local test server did not start")
    local rec, _, recs = S.run(S.factory{web("T", {method = "GET", url = base .. "/text"})})
    assert.are.equal("Succeeded", rec.status, rec.message)
    assert.are.equal("plain words", recs.T.output.Response)
  end)

  it("fails with errorCode 2108 on an error status", function()
    assert(base, "the local test server did not start")
    local rec, _, recs = S.run(S.factory{web("F", {method = "GET", url = base .. "/fail"})})
    assert.are.equal("Failed", rec.status)
    assert.are.equal("2108", recs.F.error.errorCode)
    assert.truthy(recs.F.error.message:find("Response status code: '500'", 1, true))
  end)

  it("polls the Location of a 202 until the operation is done", function()
    assert(base, "the local test server did not start")
    local rec, _, recs = S.run(S.factory{web("A", {method = "POST", url = base .. "/async", body = {}})})
    assert.are.equal("Succeeded", rec.status, rec.message)
    assert.is_true(recs.A.output.done)
  end)

  it("is cut short by policy.timeout, which aborts the transfer", function()
    assert(base, "the local test server did not start")
    local rec, _, recs = S.run(S.factory{web("Slow", {method = "GET", url = base .. "/slow"},
      {policy = {timeout = "00:00:00.2"}})})
    assert.are.equal("Failed", rec.status)
    assert.are.equal("ActivityTimedOut", recs.Slow.error.errorCode)
  end)

  it("validates method and body", function()
    local f = assert(pipeline.from_table{name = "P", properties = {activities = {
      web("A", {method = "FETCH", url = "http://127.0.0.1:9/"}),
      web("B", {method = "GET", url = "http://127.0.0.1:9/", body = "x"}),
      web("C", {method = "POST", url = "http://127.0.0.1:9/"}),
    }}})
    local problems = pipeline.validate(f)
    assert.truthy(S.find_problem(problems, "unknown method 'FETCH'"))
    assert.truthy(S.find_problem(problems, "a GET request cannot have a body"))
    assert.truthy(S.find_problem(problems, "WebActivity with method POST requires \"body\""))
  end)
end)
