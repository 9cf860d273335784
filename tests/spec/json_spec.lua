-- lufa.json: fidelity through decode -> encode, positioned decode errors, path-naming encode errors,
-- pretty printing, markers and secrets.

local json = require "lufa.json"
local secret = require "lufa.secret"
local E = require "lufa.error"

-- Decodes text that must fail; returns the error table.
local function decode_error(text, opts)
  local value, err = json.decode(text, opts)
  assert.is_nil(value)
  assert.is_true(E.is(err), "expected a lufa.error")
  assert.are.equal("json", err.kind)
  return err
end

-- Runs fn expecting it to raise; returns the message.
local function raised(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function tmpfile(contents)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(contents)
  f:close()
  return path
end

describe("lufa.json", function()
  describe("decode", function()
    it("keeps integers as integers and floats as floats", function()
      local v = json.decode('{"i":3,"f":3.0,"e":1e2,"neg":-7,"z":0,"nz":-0.0}')
      assert.are.equal("integer", math.type(v.i))
      assert.are.equal(3, v.i)
      assert.are.equal("float", math.type(v.f))
      assert.are.equal("float", math.type(v.e))
      assert.are.equal(100.0, v.e)
      assert.are.equal(-7, v.neg)
      assert.are.equal("integer", math.type(v.z))
      assert.are.equal("float", math.type(v.nz))
      assert.are.equal("-0.0", string.format("%.1f", v.nz))
    end)

    it("reads the whole 64-bit range exactly as integers", function()
      assert.are.equal(math.maxinteger, json.decode("9223372036854775807"))
      assert.are.equal("integer", math.type(json.decode("9223372036854775807")))
      assert.are.equal(math.mininteger, json.decode("-9223372036854775808"))
      assert.are.equal("integer", math.type(json.decode("-9223372036854775808")))
      assert.are.equal(1e30, json.decode("1000000000000000000000000000000.0"))
      assert.are.equal(1e30, json.decode("1e30"))
    end)

    it("rounds floats correctly, on the fast path and off it", function()
      assert.are.equal(0.1, json.decode("0.1"))
      assert.are.equal(0.30000000000000004, json.decode("0.30000000000000004"))
      assert.are.equal(1.7976931348623157e308, json.decode("1.7976931348623157e308"))
      assert.are.equal(5e-324, json.decode("5e-324"))
      assert.are.equal(123.456e-7, json.decode("123.456e-7"))
      assert.are.equal(2.5, json.decode("25E-1"))
      assert.are.equal(0.0, json.decode("1e-400"))
    end)

    it("gives arrays and objects marker metatables, even when empty", function()
      local v = json.decode('{"a":[],"o":{},"l":[1,2]}')
      assert.are.equal(json.array_mt, getmetatable(v.a))
      assert.are.equal(json.object_mt, getmetatable(v.o))
      -- an object with keys carries its key order, a metatable whose own metatable is object_mt
      assert.are.equal(json.object_mt, getmetatable(getmetatable(v)))
      assert.are.equal("lufa.json.object", getmetatable(v).__name)
      assert.are.equal("object", json.type(v))
      assert.are.equal(json.array_mt, getmetatable(v.l))
      assert.are.equal(2, #v.l)
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      assert.are.same({"a", "l", "o"}, keys)
    end)

    it("decodes null as json.null, also inside arrays (no holes)", function()
      local v = json.decode('[1,null,3]')
      assert.are.equal(3, #v)
      assert.are.equal(json.null, v[2])
      assert.are.equal("null", tostring(json.null))
      assert.are.equal(json.null, json.decode("null"))
      assert.are.equal(json.null, json.decode('{"x":null}').x)
    end)

    it("keeps the case of keys and the last of duplicate keys", function()
      local v = json.decode('{"Name":1,"name":2,"NAME":3,"d":1,"d":2}')
      assert.are.equal(1, v.Name)
      assert.are.equal(2, v.name)
      assert.are.equal(3, v.NAME)
      assert.are.equal(2, v.d)
    end)

    it("unescapes strings, including surrogate pairs, and keeps UTF-8 as is", function()
      assert.are.equal('a"b\\c/d\b\f\n\r\t', json.decode('"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t"'))
      assert.are.equal("é€😀", json.decode('"\\u00e9\\u20AC\\ud83d\\ude00"'))
      assert.are.equal("Modèle ✓ 日本", json.decode('"Modèle ✓ 日本"'))
      assert.are.equal("a\0b", json.decode('"a\\u0000b"'))
      assert.are.equal("", json.decode('""'))
    end)

    it("accepts every kind of JSON whitespace and a leading byte order mark", function()
      assert.are.same({1, 2}, json.decode(" \t\r\n[ 1 ,\n\t2 ]\r\n "))
      assert.are.equal(7, json.decode("\xEF\xBB\xBF7"))
    end)

    it("reads booleans and top-level scalars", function()
      assert.is_true(json.decode("true"))
      assert.is_false(json.decode("false"))
      assert.are.equal("s", json.decode('"s"'))
    end)
  end)

  describe("decode errors", function()
    it("say line, column and what was expected", function()
      local err = decode_error('{\n  "a": 1,\n  "b": 2\n  "c": 3\n}')
      assert.are.equal("syntax", err.code)
      assert.are.equal(4, err.line)
      assert.are.equal(3, err.column)
      assert.are.equal("line 4, column 3: expected ',' or '}' after an object member, found '\"'", err.message)
      assert.are.equal(err.message .. " (syntax)", tostring(err))
    end)

    it("count columns in characters, not bytes", function()
      local err = decode_error('["é€😀" x]')
      assert.are.equal(1, err.line)
      assert.are.equal(8, err.column)
      assert.are.equal(#'["é€😀" ' + 1, err.position)
    end)

    it("prefix the source when given", function()
      local err = decode_error("[1,]", {source = "pipeline.json"})
      assert.are.equal("pipeline.json: line 1, column 4: expected a value after ',', found ']' " ..
        "(trailing commas are not allowed)", err.message)
      assert.are.equal("pipeline.json", err.source)
    end)

    local cases = {
      {"", 1, 1, "expected a value, found end of input"},
      {"[1, 2", 1, 6, "expected ',' or ']' after an array element, found end of input"},
      {'{"a" 1}', 1, 6, "expected ':' after an object key, found '1'"},
      {"{1:2}", 1, 2, "expected a string key or '}', found '1'"},
      {'{"a":1,}', 1, 8, "expected a string key after ',', found '}' (trailing commas are not allowed)"},
      {"[1] [2]", 1, 5, "expected end of input after the JSON value, found '['"},
      {"tru", 1, 1, "expected a value, found 'tru'"},
      {"[NaN]", 1, 2, "expected a value, found 'NaN'"},
      {"[Infinity]", 1, 2, "expected a value, found 'Infinity'"},
      {"'single'", 1, 1, "expected a value, found '''"},
      {"01", 1, 1, "leading zeros are not allowed in numbers"},
      {"-", 1, 2, "expected a digit after '-', found end of input"},
      {"+1", 1, 1, "expected a value, found '+'"},
      {".5", 1, 1, "expected a value, found '.'"},
      {"1.", 1, 3, "expected a digit after the decimal point, found end of input"},
      {"1e+", 1, 4, "expected a digit in the exponent, found end of input"},
      {"1e400", 1, 1, "number 1e400 is too large for a double"},
      {'"abc', 1, 5, "expected '\"' to close the string, found end of input"},
      {'"a\tb"', 1, 3, "unescaped control character U+0009 in a string (write it as \\u0009)"},
      {'"\\x"', 1, 3, "expected an escape (one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), found 'x'"},
      {'"\\u12G4"', 1, 2, "expected 4 hex digits after '\\u'"},
      {"[1]\0", 1, 4, "expected end of input after the JSON value, found the control character U+0000"},
      {"// comment\n1", 1, 1, "expected a value, found '/'"},
    }
    for _, c in ipairs(cases) do
      it(("reject %q"):format(c[1]), function()
        local err = decode_error(c[1])
        assert.are.equal("syntax", err.code)
        assert.are.equal(("line %d, column %d: %s"):format(c[2], c[3], c[4]), err.message)
        assert.are.equal(c[2], err.line)
        assert.are.equal(c[3], err.column)
      end)
    end

    local utf8_cases = {
      {'"\xFF"', 2, "invalid UTF-8 in a string (byte 0xFF)"},
      {'"ok \xC0\x80"', 5, "invalid UTF-8 in a string (byte 0xC0)"},            -- overlong NUL
      {'"\xE0\x80\xAF"', 2, "invalid UTF-8 in a string (byte 0xE0)"},           -- overlong '/'
      {'"\xED\xA0\x80"', 2, "invalid UTF-8 in a string (byte 0xED)"},           -- a surrogate in UTF-8
      {'"\xF4\x90\x80\x80"', 2, "invalid UTF-8 in a string (byte 0xF4)"},       -- above U+10FFFF
      {'"\xE2\x82"', 2, "invalid UTF-8 in a string (byte 0xE2)"},               -- truncated
      {'"\x80"', 2, "invalid UTF-8 in a string (byte 0x80)"},                   -- stray continuation byte
      {'[\xFE]', 2, "invalid UTF-8 (byte 0xFE)"},
      {'"\\ud800"', 2, "lone high surrogate \\uD800 (it must be followed by a \\uDC00-\\uDFFF escape)"},
      {'"\\ud800\\u0041"', 2, "lone high surrogate \\uD800 (it must be followed by a \\uDC00-\\uDFFF escape)"},
      {'"\\udfff"', 2, "lone low surrogate \\uDFFF (it must follow a high surrogate)"},
    }
    for _, c in ipairs(utf8_cases) do
      it(("reject invalid Unicode %q with its position"):format(c[1]), function()
        local err = decode_error(c[1])
        assert.are.equal("utf8", err.code)
        assert.are.equal(("line 1, column %d: %s"):format(c[2], c[3]), err.message)
      end)
    end

    it("limit nesting depth (1000 by default, opts.max_depth otherwise)", function()
      assert.is_table(json.decode(("["):rep(1000) .. ("]"):rep(1000)))
      local err = decode_error(("["):rep(1001) .. ("]"):rep(1001))
      assert.are.equal("depth", err.code)
      assert.are.equal(1001, err.column)
      assert.are.equal("line 1, column 1001: nesting deeper than 1000 levels (max_depth)", err.message)
      assert.is_table(json.decode('{"a":[1]}', {max_depth = 2}))
      assert.are.equal("depth", decode_error('{"a":[{}]}', {max_depth = 2}).code)
    end)

    it("raise for misuse: a non-string text, bad options", function()
      assert.matches("string expected", raised(function() json.decode(42) end))
      assert.matches("string expected", raised(function() json.decode(nil) end))
      assert.matches("json.decode: unknown option 'maxdepth' %(did you mean 'max_depth'%?%)", raised(function() json.decode("1", {maxdepth = 3}) end))
      assert.matches("max_depth must be an integer from 1 to 10000",
        raised(function() json.decode("1", {max_depth = 0}) end))
      assert.matches("source", raised(function() json.decode("1", {source = 3}) end))
    end)
  end)

  describe("decode_file", function()
    it("decodes a file", function()
      local path = tmpfile('\xEF\xBB\xBF{"name": "p", "activities": []}\n')
      local v = assert(json.decode_file(path))
      os.remove(path)
      assert.are.equal("p", v.name)
      assert.are.equal("array", json.type(v.activities))
    end)

    it("names the file in errors", function()
      local path = tmpfile('{\n  "name": "p",\n}\n')
      local v, err = json.decode_file(path)
      os.remove(path)
      assert.is_nil(v)
      assert.are.equal("syntax", err.code)
      assert.are.equal(path, err.file)
      assert.are.equal(path .. ": line 3, column 1: expected a string key after ',', found '}' " ..
        "(trailing commas are not allowed)", err.message)
    end)

    it("returns an io error for a file it cannot read", function()
      local v, err = json.decode_file("/nonexistent/dir/pipeline.json")
      assert.is_nil(v)
      assert.are.equal("json", err.kind)
      assert.are.equal("io", err.code)
      assert.are.equal("/nonexistent/dir/pipeline.json", err.file)
      assert.matches("^/nonexistent/dir/pipeline.json: cannot open: ", err.message)
    end)
  end)

  describe("encode", function()
    it("round-trips the four kinds ADF needs with their types", function()
      local text = '{"a":[],"n":3,"o":{},"z":null}'
      assert.are.equal(text, json.encode(json.decode(text), {sort_keys = true}))
      local v = json.decode(json.encode(json.decode(text)))
      assert.are.equal("integer", json.type(v.n))
      assert.are.equal("array", json.type(v.a))
      assert.are.equal("object", json.type(v.o))
      assert.are.equal("null", json.type(v.z))
    end)

    it("writes floats so they read back exactly and stay floats", function()
      local expected = {  -- pairs, not a map: 3.0 as a table key would become the integer 3
        {3.0, "3.0"}, {0.1, "0.1"}, {1e300, "1e+300"}, {-2.5, "-2.5"}, {100.0, "100.0"},
        {1e-5, "0.00001"}, {1.5e-7, "1.5e-07"}, {2^53, "9007199254740992.0"}, {1e21, "1e+21"},
        {0.30000000000000004, "0.30000000000000004"}, {5e-324, "5e-324"}, {1 / 3, "0.3333333333333333"},
      }
      for _, case in ipairs(expected) do
        assert.are.equal("float", math.type(case[1]))
        assert.are.equal(case[2], json.encode(case[1]))
      end
      assert.are.equal("-0.0", json.encode(-0.0))
      assert.are.equal("0.0", json.encode(0.0))
    end)

    it("round-trips random doubles bit for bit", function()
      local seed = 20240501
      local function byte()
        seed = (seed * 1103515245 + 12345) % 2147483648
        return (seed >> 16) & 0xFF
      end
      local checked = 0
      for _ = 1, 5000 do
        local bytes = {}
        for i = 1, 8 do bytes[i] = string.char(byte()) end
        local d = string.unpack("<d", table.concat(bytes))
        if d == d and d ~= math.huge and d ~= -math.huge then
          local back = json.decode(json.encode(d))
          assert.are.equal("float", math.type(back))
          assert.are.equal(string.pack("<d", d), string.pack("<d", back))
          checked = checked + 1
        end
      end
      assert.is_true(checked > 4000)
    end)

    it("writes integers exactly", function()
      assert.are.equal("9223372036854775807", json.encode(math.maxinteger))
      assert.are.equal("-9223372036854775808", json.encode(math.mininteger))
      assert.are.equal("[0,-1,10,99,100,12345678901]", json.encode({0, -1, 10, 99, 100, 12345678901}))
    end)

    it("escapes control characters, quotes and backslashes, and keeps UTF-8 as is", function()
      assert.are.equal('"a\\"b\\\\c/d\\b\\f\\n\\r\\t\\u0000\\u001f\x7f"', json.encode('a"b\\c/d\b\f\n\r\t\0\31\127'))
      assert.are.equal('"Modèle ✓ 日本 😀"', json.encode("Modèle ✓ 日本 😀"))
      local long = ("é\n"):rep(10000)
      assert.are.equal(long, json.decode(json.encode(long)))
    end)

    it("writes marked and plain tables by the contract's rules", function()
      assert.are.equal("[]", json.encode(json.array()))
      assert.are.equal("{}", json.encode(json.object()))
      assert.are.equal("{}", json.encode({}))
      assert.are.equal("[1,2,3]", json.encode({1, 2, 3}))
      assert.are.equal('{"a":1}', json.encode({a = 1}))
      assert.are.equal("[1,null,3]", json.encode({1, json.null, 3}))
      assert.are.equal("null", json.encode(nil))
      assert.are.equal("null", json.encode(json.null))
      assert.are.equal("true", json.encode(true))
      local reversed = {}
      for i = 3, 1, -1 do reversed[i] = i * 10 end
      assert.are.equal("[10,20,30]", json.encode(reversed))
    end)

    it("keeps decoded arrays and objects through edits", function()
      local v = json.decode('{"list":[],"map":{}}')
      v.list[1] = "x"
      v.map.k = "y"
      assert.are.equal('{"list":["x"],"map":{"k":"y"}}', json.encode(v, {sort_keys = true}))
    end)

    it("pretty-prints with 2-space indentation and sorted keys", function()
      local v = {z = 1, a = {y = {1, {b = true, a = json.null}}, x = json.array(), w = {}}, m = "s"}
      local expected = table.concat({
        '{',
        '  "a": {',
        '    "w": {},',
        '    "x": [],',
        '    "y": [',
        '      1,',
        '      {',
        '        "a": null,',
        '        "b": true',
        '      }',
        '    ]',
        '  },',
        '  "m": "s",',
        '  "z": 1',
        '}',
      }, "\n")
      assert.are.equal(expected, json.encode(v, {pretty = true}))
      assert.are.equal('{"a":{"w":{},"x":[],"y":[1,{"a":null,"b":true}]},"m":"s","z":1}',
        json.encode(v, {sort_keys = true}))
      local unsorted = json.encode({b = 1, a = 2}, {pretty = true, sort_keys = false})
      assert.matches('^{\n  "[ab]": [12],\n  "[ab]": [12]\n}$', unsorted)
    end)

    it("sorts keys by their bytes", function()
      assert.are.equal('{"":0,"A":1,"B":2,"a":3,"b":4,"é":5}',
        json.encode({["é"] = 5, b = 4, a = 3, B = 2, A = 1, [""] = 0}, {sort_keys = true}))
    end)

    it("round-trips a nested document to the same text", function()
      local text = '{"activities":[{"dependsOn":[],"name":"Retrain","policy":{"retry":2,"timeout":"0.12:00:00"},' ..
        '"typeProperties":{"globalParameters":{"lr":0.0125,"note":"a \\"b\\"\\n\\u0001","u":"é"}}}],"parameters":{}}'
      assert.are.equal(text, json.encode(json.decode(text), {sort_keys = true}))
    end)
  end)

  describe("encode errors", function()
    local cases = {
      {"a function", {a = {1, 2, {b = print}}}, "json.encode: cannot encode a function at $.a[2].b"},
      {"a coroutine", {coroutine.create(print)}, "json.encode: cannot encode a coroutine at $[0]"},
      {"a userdata", {f = io.stdout}, "json.encode: cannot encode a userdata at $.f"},
      {"NaN", {x = {0 / 0}}, "json.encode: cannot encode NaN (JSON has no NaN or infinity) at $.x[0]"},
      {"infinity", {math.huge}, "json.encode: cannot encode inf (JSON has no NaN or infinity) at $[0]"},
      {"mixed keys", {list = {1, 2, x = 3}},
        'json.encode: table mixes array elements with string keys (such as "x") at $.list'},
      {"a hole", {1, nil, 3}, "json.encode: array has a hole at Lua index 2 of 3 (use json.null for JSON null) at $"},
      {"key 0", {[0] = "a"}, "json.encode: table has the integer key 0 (an array needs keys 1..n) at $"},
      {"a float key", {[1.5] = "a"}, "json.encode: object has the number key 1.5 (JSON object keys must be strings) at $"},
      {"a boolean key", {t = {[true] = 1}},
        "json.encode: object has a boolean as a key (JSON object keys must be strings) at $.t"},
      {"an integer key in an object", {o = json.object({[1] = "x"})},
        "json.encode: object has the number key 1 (JSON object keys must be strings) at $.o"},
      {"a string key in an array", {json.array({1, k = 2})},
        'json.encode: table mixes array elements with string keys (such as "k") at $[0]'},
      {"invalid UTF-8", {["odd key"] = {["a\"b"] = "\xFF"}},
        'json.encode: a string is not valid UTF-8 (byte 0xFF at byte 1 of it) at $["odd key"]["a\\"b"]'},
      {"an invalid UTF-8 key", {["\xC0"] = 1},
        "json.encode: a key is not valid UTF-8 (byte 0xC0 at byte 1 of it) at $[\"\xC0\"]"},
    }
    for _, c in ipairs(cases) do
      it("name the JSON path for " .. c[1], function()
        assert.are.equal(c[3], raised(function() json.encode(c[2]) end))
      end)
    end

    it("detect cycles", function()
      local t = {name = "root", children = {}}
      t.children[1] = {parent = t}
      assert.are.equal("json.encode: cycle (the table at $ contains itself) at $.children[0].parent",
        raised(function() json.encode(t) end))
      local shared = {1}
      assert.are.equal("[[1],[1]]", json.encode({shared, shared}))  -- shared, not cyclic
    end)

    it("limit depth", function()
      local deep = {}
      local cur = deep
      for _ = 1, 1000 do cur[1] = {} cur = cur[1] end
      assert.matches("^json.encode: nesting deeper than 1000 levels %(max_depth%) at %$%[0%]",
        raised(function() json.encode(deep) end))
      assert.matches("nesting deeper than 5 levels", raised(function() json.encode(deep, {max_depth = 5}) end))
    end)

    it("raise for unknown or mistyped options", function()
      assert.matches("json.encode: unknown option 'indnet' %(did you mean 'indent'%?%)", raised(function() json.encode({}, {indnet = 2}) end))
      assert.matches("option 'indent' must be an integer from 1 to 16", raised(function() json.encode({}, {indent = 0}) end))
      assert.matches("option 'indent' must be an integer from 1 to 16", raised(function() json.encode({}, {indent = "4"}) end))
      assert.matches("option 'sort_keys' must be a boolean", raised(function() json.encode({}, {sort_keys = 1}) end))
      assert.matches("option 'pretty' must be a boolean", raised(function() json.encode({}, {pretty = 1}) end))
    end)

    it("leave the encoder usable", function()
      pcall(json.encode, {f = print})
      assert.are.equal('{"ok":true}', json.encode({ok = true}))
    end)
  end)

  describe("secrets", function()
    local BYTES = "client-s3cr3t"

    it("encode as the redacted marker", function()
      local out = json.encode({client_secret = secret(BYTES)})
      assert.are.equal('{"client_secret":"<redacted>"}', out)
      assert.is_nil(out:find(BYTES, 1, true))
      assert.are.equal("string", json.type(secret(BYTES)))
    end)

    it("are revealed only on request, and the result is then a secret", function()
      local out = json.encode({client_secret = secret(BYTES), n = 1}, {reveal_secrets = true, sort_keys = true})
      assert.is_true(secret.is(out))
      assert.are.equal("<redacted>", tostring(out))
      assert.are.equal('{"client_secret":"' .. BYTES .. '","n":1}', secret.expose(out))
      local plain = json.encode({n = 1}, {reveal_secrets = true})
      assert.are.equal("string", type(plain))
    end)

    it("never appear in encode errors", function()
      local msg = raised(function()
        json.encode({s = secret("bad\xFF" .. BYTES)}, {reveal_secrets = true})
      end)
      assert.are.equal("json.encode: a secret is not valid UTF-8 at $.s", msg)
      msg = raised(function() json.encode({s = secret(BYTES), f = print}, {reveal_secrets = true}) end)
      assert.is_nil(msg:find(BYTES, 1, true))
    end)
  end)

  describe("markers and types", function()
    it("json.array and json.object mark tables and return them", function()
      local t = {}
      assert.are.equal(t, json.array(t))
      assert.are.equal(json.array_mt, getmetatable(t))
      assert.are.equal("[]", json.encode(t))
      assert.are.equal(t, json.object(t))
      assert.are.equal("{}", json.encode(t))
      assert.matches("table already has a metatable", raised(function() json.array(setmetatable({}, {})) end))
      assert.matches("table expected", raised(function() json.object(3) end))
    end)

    it("json.type names JSON types, or nil", function()
      assert.are.equal("null", json.type(json.null))
      assert.are.equal("boolean", json.type(false))
      assert.are.equal("integer", json.type(3))
      assert.are.equal("number", json.type(3.0))
      assert.are.equal("string", json.type(""))
      assert.are.equal("array", json.type({1, 2}))
      assert.are.equal("array", json.type(json.array()))
      assert.are.equal("object", json.type({}))
      assert.are.equal("object", json.type({a = 1}))
      assert.is_nil(json.type({1, a = 1}))
      assert.is_nil(json.type({[2] = 1}))
      assert.is_nil(json.type(print))
      assert.is_nil(json.type(0 / 0))
      assert.is_nil(json.type(nil))
    end)

    it("json.null is one distinct value per state", function()
      assert.are.equal("userdata", type(json.null))
      assert.are_not.equal(nil, json.null)
      assert.are.equal("null", tostring(json.null))
      assert.are.equal(json.null, json.decode("[null]")[1])
    end)
  end)

  describe("numbers", function()
    local function big(text)
      local v = json.decode(text)
      assert.are.equal("bignum", json.type(v), text)
      assert.are.equal("userdata", type(v))
      assert.are.equal(text, tostring(v))
      assert.are.equal(text, json.encode(v))
      return v
    end

    it("keep integers beyond 64 bits exactly, as bignums", function()
      big("9223372036854775808")                       -- 2^63
      big("18446744073709551616")                      -- 2^64
      big("-9223372036854775809")                      -- -2^63 - 1
      big("12345678901234567890")                      -- 20 digits
      big("1234567890123456789012345678901234567890")  -- 40 digits
      local text = '{"id":123456789012345678901234567890,"n":[-98765432109876543210,1]}'
      assert.are.equal(text, json.encode(json.decode(text)))
      assert.are.equal("[12345678901234567890]", json.encode(json.decode("[12345678901234567890]")))
    end)

    it("keep the edges of the 64-bit range as integers", function()
      for _, text in ipairs{"9223372036854775807", "-9223372036854775808", "0", "-1"} do
        local v = json.decode(text)
        assert.are.equal("integer", math.type(v), text)
        assert.are.equal(text, json.encode(v))
      end
    end)

    it("compute with bignums in floats, and compare them exactly with integers", function()
      local b = json.decode("12345678901234567890")
      assert.are.equal("float", math.type(b + 1))
      assert.are.equal(12345678901234567890.0 + 1, b + 1)
      assert.are.equal(2 * 12345678901234567890.0, b * 2)
      assert.are.equal(-12345678901234567890.0, -b)
      assert.are.equal(12345678901234567890.0, b:tonumber())
      assert.is_true(b > math.maxinteger)
      assert.is_true(math.mininteger > json.decode("-9223372036854775809"))
      assert.is_true(b < json.decode("12345678901234567891"))
      assert.is_true(json.decode("-12345678901234567891") < json.decode("-12345678901234567890"))
      assert.is_true(b < json.decode("100000000000000000000"))
      assert.is_true(b <= b)
      assert.is_true(b < 1e20)
      assert.is_false(b < 0 / 0)
      assert.are.equal(b, json.bignum("12345678901234567890"))
      assert.are_not.equal(b, json.bignum("12345678901234567891"))
      assert.are.equal("n=12345678901234567890", "n=" .. b)
      assert.matches("attempt to perform arithmetic", raised(function() return b + "x" end))
      assert.matches("attempt to compare", raised(function() return b < "x" end))
    end)

    it("can be refused or rounded instead (opts.big_integers)", function()
      local err = decode_error('{"a":[1,99999999999999999999]}', {big_integers = "error"})
      assert.are.equal("range", err.code)
      assert.are.equal("line 1, column 9: integer 99999999999999999999 is outside the 64-bit range " ..
        '(opts.big_integers is "error")', err.message)
      assert.are.equal(2.0 ^ 63, json.decode("9223372036854775808", {big_integers = "float"}))
      assert.are.equal("float", math.type(json.decode("-9223372036854775809", {big_integers = "float"})))
      assert.are.equal(math.maxinteger, json.decode("9223372036854775807", {big_integers = "error"}))
      assert.matches("big_integers", raised(function() json.decode("1", {big_integers = "round"}) end))
    end)

    it("json.bignum makes what decode would give", function()
      assert.are.equal(5, json.bignum("5"))
      assert.are.equal("integer", math.type(json.bignum("-9223372036854775808")))
      assert.are.equal("bignum", json.type(json.bignum("-9223372036854775809")))
      assert.are.equal('{"n":-9223372036854775809}', json.encode({n = json.bignum("-9223372036854775809")}))
      for _, bad in ipairs{"", "-", "007", "1.5", "1e3", " 1", "-0", "abc"} do
        assert.matches("expected the digits of an integer", raised(function() json.bignum(bad) end))
      end
    end)

    it("keep floats as doubles that round-trip in the shortest form", function()
      assert.are.equal("0.1", json.encode(json.decode("0.1")))
      assert.are.equal("[3.0,3]", json.encode(json.decode("[3.0,3]")))
      assert.are.equal("float", math.type(json.decode("3.0")))
      assert.are.equal("integer", math.type(json.decode("3")))
      assert.are.equal("1e+308", json.encode(json.decode("1e308")))
      assert.are.equal(1e308, json.decode("1e308"))
      local err = decode_error("1e309")
      assert.are.equal("line 1, column 1: number 1e309 is too large for a double", err.message)
      -- -0 is integer syntax: the integer 0; -0.0 is the float negative zero
      assert.are.equal("integer", math.type(json.decode("-0")))
      assert.are.equal("0", json.encode(json.decode("-0")))
      assert.are.equal("-0.0", json.encode(json.decode("-0.0")))
      assert.are.equal("float", math.type(json.decode("1E2")))
    end)
  end)

  describe("key order", function()
    local function roundtrip(text) assert.are.equal(text, json.encode(json.decode(text))) end

    it("is kept from decode to encode", function()
      roundtrip('{"z":1,"a":{"y":[1,{"b":true,"a":null}],"x":[],"w":{}},"m":"s"}')
      -- objects of one shape, and of shapes that alternate in the same place
      roundtrip('[{"k":1,"j":2},{"k":3,"j":4},{"j":5,"k":6},{"k":7},{"k":8,"j":9,"i":0},{"k":1,"j":2}]')
      roundtrip('{"b":{"y":1,"x":2},"a":{"x":1,"y":2},"c":[{"q":{"n":1,"m":2}},{"q":{"m":1,"n":2}}]}')
      roundtrip('{"a\\"b":1,"\\n":2,"é":3,"long key that is longer than forty bytes, to be sure":4}')
      local v = json.decode('{"b":1,"a":{"d":1,"c":2}}')
      assert.are.equal('{\n  "b": 1,\n  "a": {\n    "d": 1,\n    "c": 2\n  }\n}', json.encode(v, {pretty = true}))
      assert.are.equal('{"b":1,"a":{"d":1,"c":2}}', json.encode(v, {sort_keys = false}))
      assert.are.equal('{"a":{"c":2,"d":1},"b":1}', json.encode(v, {sort_keys = true}))
    end)

    it("drops removed keys and writes added ones after the known ones, sorted", function()
      local v = json.decode('{"z":1,"y":2,"x":3}')
      v.y = nil
      v.b = 4
      v.a = 5
      assert.are.equal('{"z":1,"x":3,"a":5,"b":4}', json.encode(v))
      assert.are.equal('{\n  "z": 1,\n  "x": 3,\n  "a": 5,\n  "b": 4\n}', json.encode(v, {pretty = true}))
      v.y = 6  -- a key of the document goes back to its place
      assert.are.equal('{"z":1,"y":6,"x":3,"a":5,"b":4}', json.encode(v))
      v.z, v.y, v.x = nil, nil, nil
      assert.are.equal('{"a":5,"b":4}', json.encode(v))
      v.a, v.b = nil, nil
      assert.are.equal("{}", json.encode(v))
      local e = json.decode('{"list":{}}').list  -- an empty object has no order: added keys as for json.object
      e.b, e.a = 1, 2
      assert.are.equal('{\n  "a": 2,\n  "b": 1\n}', json.encode(e, {pretty = true}))
    end)

    it("writes a repeated key once, in its first place, with its last value", function()
      assert.are.equal('{"a":3,"b":2}', json.encode(json.decode('{"a":1,"b":2,"a":3}')))
    end)

    it("is shared by objects of one shape without mixing them up", function()
      local v = json.decode('[{"a":1,"b":2},{"a":3,"b":4}]')
      assert.are.equal(getmetatable(v[1]), getmetatable(v[2]))
      v[1].c = 5
      v[2].a = nil
      assert.are.equal('[{"a":1,"b":2,"c":5},{"b":4}]', json.encode(v))
    end)

    it("survives copies that keep the metatable, json.object and json.type", function()
      local v = json.decode('{"y":1,"x":2}')
      local copy = setmetatable({}, getmetatable(v))
      for k, x in pairs(v) do copy[k] = x end
      assert.are.equal('{"y":1,"x":2}', json.encode(copy))
      assert.are.equal(v, json.object(v))
      assert.are.equal('{"y":1,"x":2}', json.encode(v))
      assert.are.equal("object", json.type(v))
      assert.matches("table mixes", raised(function() json.encode(json.array(json.decode('{"b":1}'))) end))
    end)

    it("loses no member when the record is tampered with through getmetatable", function()
      local v = json.decode('{"b":1,"a":2}')
      getmetatable(v)[1] = 5
      assert.are.equal('{\n  "a": 2,\n  "b": 1\n}', json.encode(v, {pretty = true}))
      local w = json.decode('{"b":1,"a":2,"c":3}')
      getmetatable(w)[1][1] = {}
      assert.are.equal('{"a":2,"c":3,"b":1}', json.encode(w))
    end)

    it("reports keys that are not strings added to a decoded object", function()
      local v = json.decode('{"a":1}')
      v[1] = true
      assert.matches("object has the number key 1", raised(function() json.encode(v) end))
    end)

    it("leaves tables built in Lua as before: sorted when pretty", function()
      assert.are.equal('{\n  "a": 1,\n  "b": 2\n}', json.encode({b = 2, a = 1}, {pretty = true}))
      assert.are.equal('{\n    "a": [\n        1\n    ]\n}', json.encode({a = {1}}, {indent = 4}))
    end)

    it("round-trips random documents to the same text", function()
      local keys = {"a", "b", "id", "name", "type", "x", "a\\\"q", "long key that is longer than forty bytes, to be sure"}
      local seed = 7
      local function rand(n)
        seed = (seed * 1103515245 + 12345) % 2147483648
        return seed % n + 1
      end
      local function gen(depth)
        local r = rand(10)
        if depth > 4 or r <= 3 then
          return ({"1", '"s"', "null", "-2.5", "123456789012345678901"})[rand(5)]
        elseif r <= 5 then
          local t = {}
          for i = 1, rand(4) - 1 do t[i] = gen(depth + 1) end
          return "[" .. table.concat(t, ",") .. "]"
        end
        local used, t = {}, {}
        for _ = 1, rand(6) - 1 do
          local k = keys[rand(#keys)]
          if not used[k] then
            used[k] = true
            t[#t + 1] = '"' .. k .. '":' .. gen(depth + 1)
          end
        end
        return "{" .. table.concat(t, ",") .. "}"
      end
      for _ = 1, 300 do
        local parts = {}
        for j = 1, rand(20) do parts[j] = gen(0) end
        roundtrip("[" .. table.concat(parts, ",") .. "]")
      end
    end)

    -- A factory file as ADF writes it: 4-space indentation, '"key": value', a final newline.
    local factory_file = "examples/adf-retraining/linkedService/updatableScoringEndpoint2.json"
    local function lines(s)
      local t = {}
      for line in s:gmatch("([^\n]*)\n") do t[#t + 1] = line end
      return t
    end
    local function read(path)
      local f = assert(io.open(path, "rb"))
      local s = f:read("a")
      f:close()
      return s
    end

    it("reproduces a factory file with indent = 4", function()
      local text = read(factory_file)
      local doc = assert(json.decode(text))
      assert.are.equal(text, json.encode(doc, {indent = 4}) .. "\n")
    end)

    it("changes exactly one line of a factory file when one value changes", function()
      local text = read(factory_file)
      local doc = assert(json.decode(text))
      doc.properties.typeProperties.tenant = "contoso.example"
      local before, after = lines(text), lines(json.encode(doc, {pretty = true, indent = 4}) .. "\n")
      assert.are.equal(#before, #after)
      local changed = {}
      for i = 1, #before do
        if before[i] ~= after[i] then changed[#changed + 1] = i end
      end
      assert.are.equal(1, #changed)
      assert.are.equal('            "tenant": "contoso.example"', after[changed[1]])
      assert.are.equal('            "tenant": "mycompany.com"', before[changed[1]])
    end)

    it("adds one line at the end of its object when a key is added", function()
      local text = read(factory_file)
      local doc = assert(json.decode(text))
      doc.properties.typeProperties.authorityHost = "https://login.example"
      local before, after = lines(text), lines(json.encode(doc, {indent = 4}) .. "\n")
      assert.are.equal(#before + 1, #after)
      local i = 1
      while before[i] == after[i] do i = i + 1 end
      -- the last member gains its comma, the new member follows it, the rest is as it was
      assert.are.equal(before[i] .. ",", after[i])
      assert.matches('"tenant"', before[i])
      assert.are.equal('            "authorityHost": "https://login.example"', after[i + 1])
      for k = i + 1, #before do assert.are.equal(before[k], after[k + 1]) end
    end)
  end)

  describe("a large document", function()
    it("survives decode -> encode -> decode unchanged", function()
      local runs = {}
      for i = 1, 2000 do
        runs[i] = ('{"runId":"%08x-run","status":"Succeeded","durationInMs":%d,"cost":%s,"tags":[],' ..
          '"error":null,"message":"line 1\\nline \\"2\\" \\u00e9 ✓","params":{"lr":%s,"n":%d}}')
          :format(i, i * 7919, tostring(i / 8), tostring(i * 1e-3), -i)
      end
      local text = '{"value":[' .. table.concat(runs, ",") .. '],"nextLink":null}'
      local v = assert(json.decode(text))
      assert.are.equal(2000, #v.value)
      local again = assert(json.decode(json.encode(v)))
      assert.are.same(v, again)
      assert.are.equal(json.encode(v, {sort_keys = true}), json.encode(again, {sort_keys = true}))
      assert.are.equal("integer", math.type(again.value[2000].durationInMs))
      assert.are.equal("float", math.type(again.value[16].cost))
    end)
  end)
  describe("keys", function()
    it("lists a decoded object's keys in document order, then keys added since, sorted", function()
      local d = assert(json.decode('{"z": 1, "a": 2, "m": {"y": 1, "b": 2}}'))
      assert.are.same({ "z", "a", "m" }, json.keys(d))
      assert.are.same({ "y", "b" }, json.keys(d.m))
      d.z, d.c, d.b = nil, 3, 4
      assert.are.same({ "a", "m", "b", "c" }, json.keys(d))
      -- the order encode writes
      assert.are.equal('{"a":2,"m":{"y":1,"b":2},"b":4,"c":3}', json.encode(d))
    end)

    it("sorts the string keys of other tables and leaves the rest out", function()
      assert.are.same({ "b", "q" }, json.keys({ q = 1, b = 2, [1] = 3, [true] = 4 }))
      assert.are.same({}, json.keys(json.object {}))
      assert.has_error(function() json.keys("x") end)
    end)
  end)
end)
