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

  it("functions that take a node-set refuse other values instead of raising a Lua error", function()
    local doc = doc_scope("<list><item>a</item></list>")
    for _, case in ipairs { { "count(/>/it)", "count" }, { "sum(1)", "sum" }, { "name(true())", "name" },
      { "local-name(1)", "local-name" }, { "namespace-uri('x')", "namespace-uri" } } do
      local err = eval_error("@xpath(pipeline().parameters.d, '" .. case[1]:gsub("'", "''") .. "')", doc)
      assert.truthy(err.message:find("XPath: " .. case[2] .. "() expects a node-set", 1, true), err.message)
    end
    assert.are.equal(1, eval("@xpath(pipeline().parameters.d, 'count(/list/item)')", doc))
    assert.are.equal("list", eval("@xpath(pipeline().parameters.d, 'name(/list)')", doc))
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

describe("a pipeline with too many activities", function()
  local compile = require "lufa.pipeline.compile"

  local function factory_with(activities)
    local dir = os.tmpname()
    os.remove(dir)
    assert(fs.mkdir(dir))
    assert(fs.mkdir(dir .. "/pipeline"))
    local f = assert(io.open(dir .. "/pipeline/many.json", "wb"))
    f:write(json.encode(O { name = "many", properties = O { activities = activities } }))
    f:close()
    return dir
  end

  local function waits(n, inner)
    local list = json.array {}
    for i = 1, n do
      list[i] = O { name = (inner and "in" or "w") .. i, type = "Wait", typeProperties = O { waitTimeInSeconds = 0 } }
    end
    return list
  end

  local function problems_of(dir)
    local factory, problems = pipeline.load_factory(dir)
    assert.is_not_nil(factory, problems and problems[1] and problems[1].message)
    return (pipeline.validate(factory))
  end

  it("is refused before its activities are compiled, naming the count and the limit", function()
    local dir = factory_with(waits(compile.MAX_ACTIVITIES + 1))
    local problems = problems_of(dir)
    local found
    for _, p in ipairs(problems) do
      if p.severity == "error" and p.message:find("lufa runs at most " .. compile.MAX_ACTIVITIES, 1, true) then found = p end
    end
    assert.is_not_nil(found, "no error about the activity count")
    assert.truthy(found.message:find(tostring(compile.MAX_ACTIVITIES + 1) .. " activities", 1, true))
    assert.are.equal(".properties.activities", found.path)
    assert.truthy(found.file:find("many.json", 1, true))
  end)

  it("counts the activities inside containers", function()
    local fe = O { name = "each", type = "ForEach", typeProperties = O { items = "@createArray(1)",
      activities = waits(compile.MAX_ACTIVITIES, true) } }
    local problems = problems_of(factory_with(json.array { fe }))
    local found
    for _, p in ipairs(problems) do
      if p.message:find((compile.MAX_ACTIVITIES + 1) .. " activities, counting those inside containers", 1, true) then found = p end
    end
    assert.is_not_nil(found, "no error about the activity count")
  end)

  it("up to the limit only warns that ADF allows 80", function()
    local problems = problems_of(factory_with(waits(81)))
    for _, p in ipairs(problems) do assert.are_not.equal("error", p.severity, p.message) end
    local warned = false
    for _, p in ipairs(problems) do warned = warned or p.message:find("ADF allows at most 80", 1, true) ~= nil end
    assert.is_true(warned)
  end)
end)

describe("ForEach over more than ADF's 100,000 items", function()
  it("fails the activity with the count and the limit", function()
    local foreach = require "lufa.activities.ForEach"
    local items = {}
    for i = 1, foreach.MAX_ITEMS + 1 do items[i] = i end
    local ctx = {
      property = function(_, name) if name == "items" then return json.array(items) end end,
      fail = function(_, code, message) error({ code = code, message = message }, 0) end,
    }
    local ok, err = pcall(foreach.run, ctx, O { typeProperties = O { activities = json.array {} } })
    assert.is_false(ok)
    assert.are.equal("InvalidForEachItems", err.code)
    assert.truthy(err.message:find("hold 100001 elements; ADF allows at most 100000", 1, true), err.message)
  end)
end)

describe("strings that double without end", function()
  local V = require "lufa.expression.values"
  local limit = V.MAX_STRING
  local half = ("x"):rep(limit // 2 + 1)

  it("concat refuses to build one past the limit, naming it", function()
    local err = eval_error("@concat(pipeline().parameters.s, pipeline().parameters.s)",
      { pipeline = { parameters = O { s = half } } })
    assert.truthy(err.message:find("function 'concat' would build a string of 64.0 MB; expression strings may be at most 64 MB", 1, true), err.message)
  end)

  it("so do replace, interpolation and the encodings", function()
    local scope = { pipeline = { parameters = O { s = half, q = ("x"):rep(limit // 4 * 3 + 3) } } }
    assert.truthy(eval_error("@replace(pipeline().parameters.s, 'x', 'xx')", scope).message:find("function 'replace' would build", 1, true))
    assert.truthy(eval_error("@{pipeline().parameters.s}@{pipeline().parameters.s}", scope).message:find("string interpolation would build", 1, true))
    assert.truthy(eval_error("@base64(pipeline().parameters.q)", scope).message:find("function 'base64' would build", 1, true))
  end)

  it("just under the limit is built", function()
    local s = ("x"):rep(limit // 2)
    assert.are.equal(limit, #eval("@concat(pipeline().parameters.s, pipeline().parameters.s)", { pipeline = { parameters = O { s = s } } }))
  end)
end)
