-- lufa.secret: a secret's bytes reach Lua only through secret.expose; every way of turning it into text
-- gives the marker, and no error message carries the bytes.

local secret = require "lufa.secret"

local BYTES = "s3cr3t-T0KEN-bytes"

-- Runs fn expecting it to raise; returns the message (as text) so a spec can check what it reveals.
local function raised(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

describe("lufa.secret", function()
  local s
  before_each(function() s = secret(BYTES) end)

  describe("construction", function()
    it("makes opaque secrets from strings, by call or new", function()
      assert.are.equal("userdata", type(s))
      assert.is_true(secret.is(s))
      assert.is_true(secret.is(secret.new(BYTES)))
      assert.are.equal(BYTES, secret.expose(secret.new(BYTES)))
    end)

    it("tells secrets from other values", function()
      assert.is_false(secret.is(BYTES))
      assert.is_false(secret.is(nil))
      assert.is_false(secret.is({}))
      assert.is_false(secret.is(io.stdout))
    end)

    it("returns a secret unchanged when given one", function()
      assert.are.equal(s, secret(s))
      assert.is_true(rawequal(s, secret(s)))
    end)

    it("keeps every byte, including NUL and high bytes", function()
      local raw = "a\0b\255c"
      assert.are.equal(raw, secret.expose(secret(raw)))
      assert.are.equal("", secret.expose(secret("")))
    end)

    it("raises for values that are not bytes", function()
      assert.has_error(function() secret({}) end)
      assert.has_error(function() secret() end)
      assert.has_error(function() secret.new(true) end)
    end)
  end)

  describe("text conversions give the marker", function()
    it("tostring", function()
      assert.are.equal("<redacted>", tostring(s))
      assert.are.equal(secret.marker, tostring(s))
    end)

    it("string.format with %s, widths and several arguments", function()
      assert.are.equal("<redacted>", string.format("%s", s))
      assert.are.equal("token=<redacted>!", string.format("token=%s!", s))
      assert.are.equal("  <redacted>", string.format("%12s", s))
      assert.are.equal("<redacted> <redacted>", ("%s %s"):format(s, secret("other")))
    end)

    it("string.format with %q or %d raises without the bytes", function()
      local msg = raised(function() return string.format("%q", s) end)
      assert.is_nil(msg:find(BYTES, 1, true))
      msg = raised(function() return string.format("%d", s) end)
      assert.is_nil(msg:find(BYTES, 1, true))
    end)

    it("json.encode gives the marker, and reveal_secrets gives a secret", function()
      local ok, json = pcall(require, "lufa.json")
      if not ok then
        pending("lufa.json is not built into this binary yet")
        return
      end
      assert.are.equal('{"token":"<redacted>"}', json.encode({ token = s }))
      assert.are.equal('["<redacted>"]', json.encode({ s }))
      local revealed = json.encode({ token = s }, { reveal_secrets = true })
      assert.is_true(secret.is(revealed))
      assert.are.equal('{"token":"' .. BYTES .. '"}', secret.expose(revealed))
    end)
  end)

  describe("concatenation", function()
    it("of a string and a secret is a secret of the joined bytes", function()
      local header = "Bearer " .. s
      assert.is_true(secret.is(header))
      assert.are.equal("Bearer " .. BYTES, secret.expose(header))
      assert.are.equal("<redacted>", tostring(header))
      local suffixed = s .. "?x=1"
      assert.is_true(secret.is(suffixed))
      assert.are.equal(BYTES .. "?x=1", secret.expose(suffixed))
    end)

    it("of two secrets, and in a chain, stays secret", function()
      local joined = s .. ":" .. secret("two")
      assert.is_true(secret.is(joined))
      assert.are.equal(BYTES .. ":two", secret.expose(joined))
      local chain = "a" .. s .. "b" .. 7
      assert.is_true(secret.is(chain))
      assert.are.equal("a" .. BYTES .. "b7", secret.expose(chain))
    end)

    it("with a table raises without the bytes", function()
      local msg = raised(function() return s .. {} end)
      assert.is_nil(msg:find(BYTES, 1, true))
    end)
  end)

  describe("secret.concat", function()
    it("joins strings, numbers and secrets into one secret", function()
      local joined = secret.concat("https://host/path?", 7, s, "&x=", secret("two"))
      assert.is_true(secret.is(joined))
      assert.are.equal("https://host/path?7" .. BYTES .. "&x=two", secret.expose(joined))
      local plain = secret.concat("a", "b")
      assert.is_true(secret.is(plain))
      assert.are.equal("ab", secret.expose(plain))
      assert.are.equal("", secret.expose(secret.concat()))
    end)

    it("keeps every part where a `..` chain would lose them: in a task whose stack moves", function()
      -- each call runs at a depth where the stack must grow, in a fresh coroutine (a task's stack starts
      -- small); secret.concat is one call, so no chain is left to lose parts
      local function at_depth(n, f) if n == 0 then return f() end return (at_depth(n - 1, f)) end
      for depth = 1, 40 do
        local joined = coroutine.wrap(function()
          return at_depth(depth, function() return secret.concat("a", "b", s, "c") end)
        end)()
        assert.are.equal("ab" .. BYTES .. "c", secret.expose(joined))
      end
    end)

    it("names the part that is not a string, a number or a secret", function()
      local msg = raised(function() return secret.concat("a", s, {}) end)
      assert.matches("bad argument #3", msg)
      assert.is_nil(msg:find(BYTES, 1, true))
    end)
  end)

  describe("equality", function()
    it("compares contents", function()
      assert.is_true(s == secret(BYTES))
      assert.is_false(s == secret(BYTES .. "x"))
      assert.is_false(s == secret(""))
      assert.is_true(secret("") == secret(""))
      assert.is_true(s ~= secret("other"))
    end)

    it("never equals a plain string, even with the same bytes", function()
      assert.is_false(s == BYTES)
      assert.is_false(BYTES == s)
    end)
  end)

  describe("expose", function()
    it("is the way to the bytes", function()
      assert.are.equal(BYTES, secret.expose(s))
      assert.are.equal("string", type(secret.expose(s)))
    end)

    it("raises for a value that is not a secret", function()
      assert.has_error(function() secret.expose(BYTES) end)
      assert.has_error(function() secret.expose(nil) end)
    end)
  end)

  describe("no way around expose", function()
    it("hides the metatable", function()
      assert.are.equal("lufa.secret", getmetatable(s))
      assert.has_error(function() setmetatable(s, nil) end)
    end)

    it("has no fields or length", function()
      assert.is_nil(raised(function() return s.bytes end):find(BYTES, 1, true))
      assert.is_nil(raised(function() return s:expose() end):find(BYTES, 1, true))
      assert.is_nil(raised(function() return #s end):find(BYTES, 1, true))
      assert.has_error(function() s.x = 1 end)
    end)

    it("refuses string functions without revealing the bytes", function()
      for _, fn in ipairs({ string.len, string.upper, string.byte, string.rep, table.concat, io.write }) do
        local msg = raised(function() return fn(s, 1) end)
        assert.is_nil(msg:find(BYTES, 1, true))
      end
      local msg = raised(function() return table.concat({ "a", s }) end)
      assert.is_nil(msg:find(BYTES, 1, true))
    end)

    it("keeps the bytes out of arithmetic and comparison errors", function()
      for _, op in ipairs({
        function() return s + 1 end,
        function() return s < s end,
        function() return s <= "x" end,
        function() return -s end,
        function() return s() end,
      }) do
        assert.is_nil(raised(op):find(BYTES, 1, true))
      end
    end)

    it("stays redacted when raised as an error value", function()
      local ok, err = pcall(error, s)
      assert.is_false(ok)
      assert.are.equal("<redacted>", tostring(err))
      assert.is_true(secret.is(err))
    end)
  end)
end)
