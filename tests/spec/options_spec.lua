-- Options that cannot be misspelt: lufa.options' distance and nearest, and lufa.http refusing an unknown
-- request option or retry policy field with the nearest known name.
local options = require "lufa.options"
local http = require "lufa.http"

describe("lufa.options", function()
  it("measures edits, counting an adjacent swap as one", function()
    assert.are.equal(0, options.distance("timeout", "timeout"))
    assert.are.equal(1, options.distance("timout", "timeout"))
    assert.are.equal(1, options.distance("tiemout", "timeout"))
    assert.are.equal(1, options.distance("header", "headers"))
    assert.are.equal(3, options.distance("abc", ""))
  end)

  it("suggests a near name only", function()
    local known = {"timeout", "connect_timeout", "headers", "url"}
    assert.are.equal("timeout", options.nearest("Timeout", known))
    assert.are.equal("url", options.nearest("uri", known))
    assert.is_nil(options.nearest("compression", known))
  end)

  it("names the unknown key and what was meant, or lists the known ones", function()
    assert.has_error(function() options.check({timout = 1}, {"timeout"}, "f") end,
      "f: unknown option 'timout' (did you mean 'timeout'?)")
    assert.has_error(function() options.check({zzz = 1}, {"b", "a"}, "f") end, "f: unknown option 'zzz' (known options: a, b)")
    assert.has_error(function() options.check({1}, {"a"}, "f") end, "f: options are named, got a number key (1)")
    assert.are.same({a = 1}, options.check({a = 1}, {a = true}, "f"))
  end)
end)

describe("lufa.http", function()
  it("refuses a misspelt request option instead of ignoring it", function()
    local ok, err = pcall(http.request, {url = "http://127.0.0.1:9/", timout = 5})
    assert.is_false(ok)
    assert.matches("lufa.http.request: unknown option 'timout' %(did you mean 'timeout'%?%)", err)
    ok, err = pcall(http.request, {url = "http://127.0.0.1:9/", header = {}})
    assert.matches("did you mean 'headers'%?", err)
  end)

  it("refuses a misspelt retry policy field", function()
    local ok, err = pcall(http.request_with_retry, {url = "http://127.0.0.1:9/"}, {attempt = 2})
    assert.is_false(ok)
    assert.matches("unknown option 'attempt' %(did you mean 'attempts'%?%)", err)
  end)

  it("names the caller's line in the error", function()
    local ok, err = pcall(function()
      local res = http.request{url = "http://127.0.0.1:9/", retries = 1}
      return res
    end)
    assert.is_false(ok)
    assert.matches("options_spec%.lua:%d+: lufa%.http%.request: unknown option 'retries'", err)
  end)
end)
