-- lufa.log: levels, the JSON format, a sink, redaction of every line; lufa.http's request lines at debug
-- (method, URL, status, time) and headers at trace with credentials redacted; the CLI's -v/-vv/-q and a
-- bad level or format refused with what is known.
local log = require "lufa.log"
local http = require "lufa.http"
local json = require "lufa.json"
local secret = require "lufa.secret"
local server = require "tests.support.server"
local util = require "tests.support.util"

local lines
local function capture(level, format)
  lines = {}
  log.configure{level = level, format = format or "text", sink = function(l) lines[#lines + 1] = l end}
end

teardown(function() log.configure{level = "warn", format = "text", sink = false} end)

describe("lufa.log", function()
  it("writes what its level lets through", function()
    capture("info")
    log.debug("not shown")
    log.info("submitted job %s", "j-1")
    log.error("failed")
    assert.are.same({"lufa: [info] submitted job j-1", "lufa: [error] failed"}, lines)
    assert.is_true(log.enabled("info"))
    assert.is_false(log.enabled("debug"))
    assert.are.equal("info", log.level())
  end)

  it("writes one JSON object per line with --log-format json", function()
    capture("warn", "json")
    log.warn("disk %d%% full", 91)
    local doc = assert(json.decode(lines[1]))
    assert.are.equal("warn", doc.level)
    assert.are.equal("disk 91% full", doc.msg)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", doc.time)
  end)

  it("never writes a secret, even as plain text", function()
    local key = secret("log-spec-key-93a7f1")
    capture("info")
    log.info("key %s, exposed %s", key, secret.expose(key))
    assert.are.same({"lufa: [info] key <redacted>, exposed <redacted>"}, lines)
  end)

  it("refuses an unknown level or format, naming the known ones", function()
    assert.has_error(function() log.configure{level = "loud"} end)
    local ok, err = pcall(log.configure, {format = "xml"})
    assert.is_false(ok)
    assert.matches("unknown log format 'xml' %(known: text, json%)", err)
  end)
end)

describe("lufa.http with logging", function()
  local srv
  setup(function() srv = server.start() end)
  teardown(function() srv:stop() end)

  it("logs each request with its status and time at debug, headers at trace with credentials redacted", function()
    capture("debug")
    assert(http.request(srv:opts("/echo", {headers = {Authorization = "Bearer plain-token-55", ["X-Trace"] = "t1"}})))
    assert.are.equal(1, #lines)
    assert.matches("^lufa: %[debug%] GET http://127%.0%.0%.1:%d+/echo %-> 200 in [%d.]+ ms", lines[1])
    capture("trace")
    assert(http.request(srv:opts("/echo", {headers = {Authorization = "Bearer plain-token-55", ["X-Trace"] = "t1"}})))
    local text = table.concat(lines, "\n")
    assert.matches("> GET http://127%.0%.0%.1:%d+/echo\n    Authorization: <redacted>\n    X%-Trace: t1", text)
    assert.matches("< 200\n", text)
    assert.is_nil(text:find("plain-token-55", 1, true))
  end)

  it("logs a transport failure with its code", function()
    capture("debug")
    local res, err = http.request{url = "http://127.0.0.1:9/", connect_timeout = 2}
    assert.is_nil(res)
    assert.matches("GET http://127%.0%.0%.1:9/ %-> " .. err.code .. " after [%d.]+ ms", lines[1])
  end)
end)

describe("the command line's -v and --log-format", function()
  local function sh(args)
    local p = io.popen(util.shell_quote(util.lufa_binary()) .. " " .. args .. " 2>&1; echo \"exit=$?\"")
    local out = p:read("a")
    p:close()
    return tonumber(out:match("exit=(%d+)%s*$")), out
  end

  it("refuses a bad format and says what is known", function()
    local code, out = sh("run f P --log-format xml")
    assert.are.equal(2, code)
    assert.matches("unknown log format 'xml' %(known: text, json%)", out)
  end)

  it("carries the host's own messages: an uncaught task error is a JSON line with LUFA_LOG_FORMAT=json", function()
    local p = io.popen("LUFA_LOG_FORMAT=json " .. util.shell_quote(util.lufa_binary()) ..
      " -e 'require(\"lufa\").spawn(function() error(\"boom in a task\") end)' 2>&1; echo \"exit=$?\"")
    local out = p:read("a")
    p:close()
    assert.is_nil(out:find("exit=0", 1, true), out)
    local json_line = out:match("^(%{.-%})\nexit=")
    assert.truthy(json_line, out)
    local v = require("lufa.json").decode(json_line)
    assert.are.equal("error", v.level)
    assert.matches("^uncaught error in task: .*boom in a task", v.msg)
    assert.matches("stack traceback", v.msg)  -- the traceback stays in the one line
  end)

  it("reports a bad LUFA_LOG without failing", function()
    local code, out = sh("-e 'print(require(\"lufa.log\").level())' ; LUFA_LOG=loud " ..
      util.shell_quote(util.lufa_binary()) .. " -e 'print(require(\"lufa.log\").level())'")
    assert.are.equal(0, code)
    assert.matches("warn\n.*unknown log level 'loud'.*\nwarn\n", out)
  end)
  it("configure without a table says what it expects", function()
    local log = require "lufa.log"
    local ok, err = pcall(log.configure)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'lufa.log.configure' %(table expected, got nil%)", err)
  end)
end)
