-- A resolver that cannot be reached: the lookup fails with code "dns", and request_with_retry tries again.
-- The failures come from tests/support/resolver_shim.c, preloaded into a child lufa (the fault soak uses it
-- the same way); nothing is looked up beyond this machine.
local util = require "tests.support.util"

local lufa_bin = util.lufa_binary()
local shim = lufa_bin:match("^(.*)/[^/]*$") .. "/liblufa_test_resolver.so"

-- Runs `script` in a child lufa with the resolver preloaded, refusing `failures` lookups; its output.
local function run(script, failures)
  local env = string.format("LD_PRELOAD=%s LUFA_TEST_DNS_FAILURES=%d", util.shell_quote(shim), failures)
  local asan = os.getenv("ASAN_OPTIONS")
  if asan then env = env .. " ASAN_OPTIONS=" .. util.shell_quote(asan .. ":verify_asan_link_order=0") end
  local p = io.popen(string.format("env %s %s -e %s 2>&1", env, util.shell_quote(lufa_bin), util.shell_quote(script)))
  local out = p:read("a")
  p:close()
  return out
end

-- Port 1 on loopback has no listener: once the name resolves, the connection is refused.
local SCRIPT = [[
  local http = require "lufa.http"
  local res, err = http.request_with_retry({ url = "http://svc.lufa.test:1/", connect_timeout = 5 },
    { attempts = %d, base_delay = 0.01, on_retry = function(_, _, e) print("retry after " .. e.code) end })
  print("last: " .. (res and res.status or err.code), err and err.message)
]]

describe("a resolver that cannot be reached", function()
  it("is told apart from a refused connection, and retried", function()
    local out = run(SCRIPT:format(4), 2)
    assert.are.equal("retry after dns\nretry after dns\nretry after connect\nlast: connect", out:match("^(.-)\t"), out)
  end)

  it("gives the host it could not resolve when the retries run out", function()
    local out = run(SCRIPT:format(2), 5)
    assert.matches("retry after dns\nlast: dns\t.*Could not resolve host: svc%.lufa%.test", out)
  end)
end)
