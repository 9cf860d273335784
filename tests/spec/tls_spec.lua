-- lufa verifies TLS: a loopback HTTPS server with a self-signed certificate made now (openssl, by
-- tests/support/httpd.mjs) is refused with an error that names the host and the failure and says what to do;
-- the same certificate given as ca_file (or in LUFA_CA_FILE) is trusted; and nothing in lufa turns
-- verification off except an explicit tls_verify = false, which warns.
local http = require "lufa.http"
local E = require "lufa.error"
local server = require "tests.support.server"
local util = require "tests.support.util"

local function refused(res, err)
  assert.is_nil(res)
  assert.is_true(E.is(err), "expected a lufa.error, got " .. tostring(err))
  assert.are.equal("tls", err.code)
  return err.message
end

-- Runs a Lua snippet in a child lufa with `env`; returns its exit status and output.
local function run_child(code, env)
  local file = os.tmpname()
  util.write_file(file, code)
  local envs = {}
  for k, v in pairs(env or {}) do envs[#envs + 1] = k .. "=" .. util.shell_quote(v) end
  local p = assert(io.popen(string.format("env %s %s %s 2>&1; echo \"exit=$?\"", table.concat(envs, " "),
    util.shell_quote(util.lufa_binary()), util.shell_quote(file))))
  local out = p:read("a")
  p:close()
  os.remove(file)
  return tonumber(out:match("exit=(%d+)%s*$")), out
end

describe("TLS verification", function()
  local srv
  setup(function() srv = server.start { tls = true, self_signed = true } end)
  teardown(function() if srv then srv:stop() end end)

  it("refuses a self-signed certificate, naming the host and the fix", function()
    local message = refused(http.request { url = srv.url .. "/echo?sig=secret-signature" })
    assert.truthy(message:find(srv.url .. "/echo", 1, true), message)
    assert.truthy(message:find("TLS verification failed", 1, true), message)
    assert.truthy(message:lower():find("self%-signed"), message)
    assert.truthy(message:find("ca_file", 1, true) and message:find("LUFA_CA_FILE", 1, true), message)
    assert.is_nil(message:find("secret-signature", 1, true), "the query is not quoted")
  end)

  it("refuses it under the name localhost as well", function()
    refused(http.request { url = srv.url:gsub("127%.0%.0%.1", "localhost") .. "/echo" })
  end)

  it("trusts it when it is given as ca_file", function()
    local res = assert(http.request { url = srv.url .. "/echo", ca_file = srv.ca_file })
    assert.are.equal(200, res.status)
  end)

  it("trusts it when it is given in LUFA_CA_FILE", function()
    local status, out = run_child(string.format([[
      local res = assert(require("lufa.http").request { url = %q })
      print("status", res.status)
    ]], srv.url .. "/echo"), { LUFA_CA_FILE = srv.ca_file })
    assert.are.equal(0, status, out)
    assert.truthy(out:find("status\t200", 1, true), out)
    assert.is_nil(out:find("verification is off", 1, true), out)
  end)

  it("says which CA file cannot be used", function()
    local missing = os.tmpname() .. ".missing.pem"
    local res, err = http.request { url = srv.url .. "/echo", ca_file = missing }
    assert.is_nil(res)
    assert.are.equal("tls", err.code)
    assert.truthy(err.message:find(missing, 1, true), err.message)
  end)

  it("is turned off only by tls_verify = false, which warns on stderr", function()
    local status, out = run_child(string.format([[
      local res = assert(require("lufa.http").request { url = %q, tls_verify = false })
      print("status", res.status)
    ]], srv.url .. "/echo"))
    assert.are.equal(0, status, out)
    assert.truthy(out:find("status\t200", 1, true), out)
    assert.truthy(out:find("TLS certificate verification is off", 1, true), out)
  end)

  it("warns through lufa.log: a JSON line with LUFA_LOG_FORMAT=json, nothing at level error", function()
    local script = string.format([[
      local res = assert(require("lufa.http").request { url = %q, tls_verify = false })
      print("status", res.status)
    ]], srv.url .. "/echo")
    local status, out = run_child(script, { LUFA_LOG_FORMAT = "json" })
    assert.are.equal(0, status, out)
    local line = out:match("(%{[^\n]*verification is off[^\n]*%})")
    assert.truthy(line, out)
    local v = require("lufa.json").decode(line)
    assert.are.equal("warn", v.level)
    assert.are.equal("lufa.http: TLS certificate verification is off for " .. srv.url:match("//([^/]+)"), v.msg)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", v.time)
    status, out = run_child(script, { LUFA_LOG = "error" })
    assert.are.equal(0, status, out)
    assert.is_nil(out:find("verification is off", 1, true), out)
  end)

  it("has no other switch: the host sets no verify option elsewhere, lufa's modules never pass false", function()
    local c = util.read_file("host/http.c")
    local _, peer = c:gsub("CURLOPT_SSL_VERIFYPEER", "")
    local _, host = c:gsub("CURLOPT_SSL_VERIFYHOST", "")
    assert.are.equal(1, peer)
    assert.are.equal(1, host)
    assert.truthy(c:find("if %(!tls_verify%) {%s*curl_easy_setopt%(e, CURLOPT_SSL_VERIFYPEER, 0L%);%s*" ..
      "curl_easy_setopt%(e, CURLOPT_SSL_VERIFYHOST, 0L%);%s*warn_tls_off"), "verification is off only with the warning")
    local p = assert(io.popen("find lua -name '*.lua'"))
    for file in p:lines() do
      local text = util.read_file(file)
      assert.is_nil(text:find("tls_verify%s*=%s*false"), file .. " turns verification off")
    end
    p:close()
  end)
end)

describe("the TLS version", function()
  local old, v12
  setup(function()
    old = server.start { tls = true, max_tls = "TLSv1.1" }
    v12 = server.start { tls = true, max_tls = "TLSv1.2" }
  end)
  teardown(function()
    if old then old:stop() end
    if v12 then v12:stop() end
  end)

  it("1.2 is enough: a server that speaks no newer protocol is reached", function()
    local res = assert(http.request { url = v12.url .. "/echo", ca_file = v12.ca_file })
    assert.are.equal(200, res.status)
  end)

  it("is at least 1.2: a server that speaks only TLS 1.1 is refused even with its CA trusted", function()
    local res, err = http.request { url = old.url .. "/echo", ca_file = old.ca_file, connect_timeout = 10 }
    assert.is_nil(res)
    assert.are.equal("tls", err.code, tostring(err.message))
  end)
end)
