-- Hostile input gets a clean error that names the limit, never a crash, a hang or a Lua error from inside
-- lufa. Each case below is an input the fuzz harnesses of tests/fuzz found (or one of the limits they check).

local expression = require "lufa.expression"
local parser = require "lufa.expression.parser"
local expression_xml = require "lufa.expression.xml"
local json = require "lufa.json"
local core_xml = require "lufa.core.xml"
local pipeline = require "lufa.pipeline"
local load = require "lufa.pipeline.load"
local fs = require "lufa.fs"
local E = require "lufa.error"

local O = json.object

-- Compiling must fail with a positioned syntax error; returns it.
local function syntax_error(text)
  local c, err = expression.compile(text)
  assert.is_nil(c)
  assert.is_true(E.is(err), "expected a lufa.error")
  assert.are.equal("syntax", err.code)
  assert.are.equal("integer", math.type(err.column))
  return err
end

-- Evaluating must fail with a lufa.error of lufa's own wording (no Lua source position); returns it.
local function eval_error(text, scope)
  local c = assert(expression.compile(text))
  local ok, err = pcall(c.eval, c, scope or {})
  assert.is_false(ok, "expected " .. text .. " to fail")
  assert.is_true(E.is(err), "expected a lufa.error")
  assert.is_nil(err.message:find("%.lua:%d+:"), "an internal error: " .. err.message)
  return err
end

local function eval(text, scope)
  local c = assert(expression.compile(text))
  return c:eval(scope or {})
end

describe("expressions nested without end", function()
  local n = 100000
  it("get a syntax error naming the limit instead of overflowing the stack", function()
    for _, text in ipairs {
      "@" .. ("string("):rep(n) .. "1" .. (")"):rep(n),
      "@pipeline()" .. (".a"):rep(n),
      "@pipeline()" .. ("['a']"):rep(n),
      "x @{" .. ("concat("):rep(n) .. "'a'" .. (")"):rep(n) .. "}",
    } do
      local err = syntax_error(text)
      assert.truthy(err.message:find("nested deeper than " .. parser.MAX_DEPTH .. " levels", 1, true), err.message)
    end
  end)

  it("evaluate up to the limit", function()
    local depth = parser.MAX_DEPTH - 1
    assert.are.equal("1", eval("@" .. ("string("):rep(depth) .. "1" .. (")"):rep(depth)))
    assert.are.equal(99, eval("@" .. ("add(1, "):rep(depth) .. "0" .. (")"):rep(depth)))
    local scope = { pipeline = { parameters = O { a = 1 } } }
    assert.are.equal(json.null, eval("@pipeline()" .. ("?.a"):rep(depth), scope))
  end)
end)

describe("numbers beyond the range of a double", function()
  it("are a syntax error as literals", function()
    assert.truthy(syntax_error("@5.5556e506").message:find("the number 5.5556e506 is beyond the range of a double", 1, true))
    syntax_error("@add(1, -1e999)")
  end)

  it("are an evaluation error as results, so no infinity reaches JSON", function()
    for _, text in ipairs { "@float('1e400')", "@mul(1e308, 10.0)", "@add(1.7e308, 1.7e308)",
      "@sub(-1.7e308, 1.7e308)", "@div(1e308, 1e-308)" } do
      assert.truthy(eval_error(text).message:find("beyond the range of a double", 1, true), text)
    end
    assert.are.equal(2.5, eval("@div(5.0, 2)"))
  end)
end)

describe("counts and offsets at the ends of the integer range", function()
  it("skip(…, maxinteger) returns at once with nothing", function()
    assert.are.same({}, eval("@skip(createArray(1, 2), 9223372036854775807)"))
    assert.are.equal("", eval("@skip('abc', 9223372036854775807)"))
  end)

  it("range() refuses to wrap around", function()
    assert.truthy(eval_error("@range(9223372036854775807, 2)").message:find("overflowed the 64-bit integer range", 1, true))
    assert.are.same({ 9223372036854775807 }, eval("@range(9223372036854775807, 1)"))
  end)

  it("date arithmetic refuses to wrap around instead of giving a wrong date", function()
    local now = { now = function() return "2026-01-01T00:00:00Z" end }
    for _, text in ipairs {
      "@addDays('2026-01-01T00:00:00Z', 9223372036854775807)",
      "@addSeconds('2026-01-01T00:00:00Z', -9223372036854775807)",
      "@addToTime('2026-01-01T00:00:00Z', 9223372036854775807, 'Year')",
      "@addToTime('2026-01-01T00:00:00Z', -9223372036854775807, 'Month')",
      "@getFutureTime(9223372036854775807, 'Second')",
    } do
      assert.truthy(eval_error(text, now).message:find("outside years 1 to 9999", 1, true), text)
    end
    assert.are.equal("2027-01-01T00:00:00.0000000Z", eval("@addToTime('2026-01-01T00:00:00Z', 1, 'Year')"))
  end)
end)

describe("XML", function()
  local function doc_scope(doc) return { pipeline = { parameters = O { d = doc } } } end

  it("character references outside what XML allows are refused, not a Lua error", function()
    for _, ref in ipairs { "&#99999999999;", "&#x110000;", "&#xD800;", "&#0;" } do
      local err = eval_error("@xpath(pipeline().parameters.d, '/a')", doc_scope("<a>" .. ref .. "</a>"))
      assert.truthy(err.message:find("bad XML character reference", 1, true), ref)
    end
    assert.are.equal("AA\u{1F600}", eval("@xpath(pipeline().parameters.d, 'string(/a)')",
      doc_scope("<a>&#x41;&#65;&#x1F600;</a>")))
  end)

  it("elements nested past the limit get an error naming it in both parsers", function()
    local n = 100000
    local deep = ("<a>"):rep(n) .. ("</a>"):rep(n)
    local err = eval_error("@json(pipeline().parameters.d)", doc_scope(deep))
    assert.truthy(err.message:find("nested deeper than " .. expression_xml.MAX_DEPTH .. " levels", 1, true), err.message)
    local tree, cerr = core_xml.parse(deep)
    assert.is_nil(tree)
    assert.truthy(cerr.message:find("deeper than 256", 1, true), cerr.message)
    local ok = ("<a>"):rep(expression_xml.MAX_DEPTH) .. ("</a>"):rep(expression_xml.MAX_DEPTH)
    assert.are.equal("string", type(eval("@xpath(pipeline().parameters.d, 'name(/*)')", doc_scope(ok))))
  end)
end)

describe("JSON nested without end", function()
  it("gets a positioned error naming max_depth", function()
    local value, err = json.decode(("["):rep(100000) .. ("]"):rep(100000))
    assert.is_nil(value)
    assert.truthy(err.message:find("nesting deeper than 1000 levels (max_depth)", 1, true), err.message)
  end)
end)

describe("a factory file of 1 GB", function()
  it("is refused before it is read, naming the file and the limit", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(fs.mkdir(dir))
    assert(fs.mkdir(dir .. "/pipeline"))
    local path = dir .. "/pipeline/huge.json"
    local f = assert(io.open(path, "wb"))  -- sparse: 1 GB long, nothing on disk
    assert(f:seek("set", 1024 * 1024 * 1024 - 1))
    f:write("}")
    f:close()
    local factory, problems = pipeline.load_factory(dir)
    os.remove(path)
    os.remove(dir .. "/pipeline")
    os.remove(dir)
    assert.is_nil(factory)
    assert.are.equal(1, #problems)
    assert.are.equal(path, problems[1].file)
    assert.truthy(problems[1].message:find("the file is 1024.0 MB; a factory file may be at most " ..
      load.MAX_FILE_BYTES // 1048576 .. " MB", 1, true), problems[1].message)
  end)
end)
