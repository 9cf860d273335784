-- lufa.inspect (lufa.repl.pretty): sorted keys, nesting with limits, cycles, JSON markings, secrets.
local lufa = require "lufa"
local json = require "lufa.json"
local secret = require "lufa.secret"
local pretty = require "lufa.repl.pretty"

local inspect = pretty.inspect

describe("lufa.inspect", function()
  it("is the prompt's printer, available to scripts", function()
    assert.equal(inspect({ 1, x = 2 }), lufa.inspect({ 1, x = 2 }))
    assert.equal("{1, x = 2}", lufa.inspect({ 1, x = 2 }))
  end)

  it("shows scalars as Lua would read them back", function()
    assert.equal('"a\\nb\\t\\"q\\"\\\\"', inspect('a\nb\t"q"\\'))
    assert.equal('"\\000\\027"', inspect("\0\27"))
    assert.equal("42", inspect(42))
    assert.equal("1.0", inspect(1.0))
    assert.equal("0.5", inspect(0.5))
    assert.equal("nil", inspect(nil))
    assert.equal("true", inspect(true))
    assert.equal("<function builtin>", inspect(print))
    assert.matches("^<function .*repl_pretty_spec%.lua:%d+>$", inspect(function() end))
  end)

  it("puts the array part first, then the other keys sorted, numbers before strings", function()
    local t = { "a", "b", zeta = 1, alpha = 2, [10] = "ten", [2.5] = "x", ["not an id"] = 3, ["end"] = 4 }
    assert.equal('{"a", "b", [2.5] = "x", [10] = "ten", alpha = 2, ["end"] = 4, ["not an id"] = 3, zeta = 1}',
      inspect(t))
  end)

  it("breaks a table that does not fit the width onto indented lines", function()
    local t = { name = string.rep("n", 50), inner = { list = { 1, 2, 3 }, text = string.rep("t", 60) } }
    assert.equal(table.concat({
      "{",
      "  inner = {",
      "    list = {1, 2, 3},",
      '    text = "' .. string.rep("t", 60) .. '"',
      "  },",
      '  name = "' .. string.rep("n", 50) .. '"',
      "}",
    }, "\n"), inspect(t))
    assert.equal("{\n  a = 1,\n  b = 2\n}", inspect({ a = 1, b = 2 }, { width = 5 }))
  end)

  it("stops at the depth limit, the item limit and the string limit", function()
    local deep = { a = { b = { c = { d = { e = 1 } } } } }
    assert.equal("{a = {b = {c = {d = {…1}}}}}", inspect(deep))
    assert.equal("{a = {…1}}", inspect(deep, { depth = 1 }))
    local many = {}
    for i = 1, 10 do many[i] = i end
    assert.equal("{1, 2, 3, …(7 more)}", inspect(many, { items = 3 }))
    assert.equal('"abcd"…(6 more bytes)', inspect("abcdefghij", { string = 4 }))
  end)

  it("marks cycles and shows a shared table each time it appears", function()
    local t = { name = "root" }
    t.self = t
    local shared = { 1 }
    assert.equal('{name = "root", self = <cycle>}', inspect(t))
    assert.equal("{a = {1}, b = {1}}", inspect({ a = shared, b = shared }))
  end)

  it("shows JSON values as lufa.json sees them", function()
    local v = json.decode('{"list": [], "obj": {}, "none": null, "n": [1, 2]}')
    assert.equal("{list = json.array{}, n = {1, 2}, none = json.null, obj = json.object{}}", inspect(v))
    assert.equal("{}", inspect({}))
  end)

  it("never shows a secret, not even inside a string", function()
    local s = secret("inspect-secret-value-1")
    assert.equal("{key = <secret>}", inspect({ key = s }))
    assert.equal('"token=<redacted>"', inspect("token=" .. secret.expose(s)))
  end)

  it("shows a task's status and summarises an HTTP response", function()
    local t = lufa.spawn(function() end)
    assert.equal("<task ready>", inspect(t))
    t:wait()
    assert.equal("<task done>", inspect(t))
    local res = { status = 200, headers = { ["content-type"] = "text/plain" }, body = string.rep("x", 500),
      time = 0.0123, reused = false }
    local text = inspect(res)
    assert.matches("^<http response 200, 500 bytes, 12 ms> {", text)
    assert.matches('body = "' .. string.rep("x", 160) .. '"…%(340 more bytes%)', text)
  end)

  it("rejects options of the wrong type with a clear message", function()
    assert.has_error(function() inspect({}, { depth = "deep" }) end,
      "bad option 'depth' to 'inspect' (number expected, got string)")
    assert.has_error(function() inspect({}, 3) end, "bad argument #2 to 'inspect' (table of options expected)")
  end)
end)
