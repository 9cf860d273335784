-- Values exactly as ADF gives them. Every case names its source:
--   adf   the examples of Microsoft's ADF expression reference (control-flow-expression-language-functions),
--   la    the examples of the Logic Apps function reference (the same engine; more xml/xpath examples),
--   dftf  the cases of microsoft/data-factory-testing-framework,
--   .net  .NET's documented behaviour where ADF passes a value to it (date formats with en-US, doubles),
-- and `note` says where the published example itself is wrong and what ADF gives instead.
-- docs/expressions.md's conformance table is this list, function by function.

local expression = require "lufa.expression"
local json = require "lufa.json"

local A, O, null = json.array, json.object, json.null

local function canon(v)
  local t = json.type(v)
  if t == "array" then
    local parts = {}
    for i = 1, #v do parts[i] = canon(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  elseif t == "object" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do parts[i] = string.format("%q:%s", k, canon(v[k])) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "integer" then return "int:" .. string.format("%d", v)
  elseif t == "number" then return "float:" .. string.format("%.17g", v)
  elseif t == "string" then return string.format("%q", v)
  end
  return tostring(v)
end

local function xml_value(text)
  local codec = require "lufa.expression.codec"
  return O { ["$content-type"] = "application/xml;charset=utf-8", ["$content"] = codec.base64_encode(text) }
end

local ITEMS = "<?xml version=\"1.0\"?><produce><item><name>Gala</name><type>apple</type><count>20</count></item>" ..
  "<item><name>Honeycrisp</name><type>apple</type><count>10</count></item></produce>"
local EXPIRED = "<produce><item><name expired=\"true\">Gala</name></item><item><name>Honeycrisp</name></item></produce>"
local FILE = "<?xml version=\"1.0\"?><file xmlns=\"https://contoso.com\"><location>Paris</location></file>"

local function scope(now)
  return {
    now = now and function() return now end or nil,
    pipeline = { parameters = O { items = ITEMS, expired = EXPIRED, file = FILE, xml = "<?xml version=\"1.0\"?>\n" ..
      "<file xmlns=\"https://contoso.com\"><location>Paris</location></file>" }, globalParameters = O {} },
    activity = function(name)
      if name == "Sample" then return O { output = O { float = 0.016666666666666666 } } end
      if name == "Error activity" then return O { status = "Failed", error = O { message = "Oh no" } } end
      return nil
    end,
  }
end

local function eval(text, now)
  local c, err = expression.compile(text)
  if not c then error(err, 0) end
  return c:eval(scope(now))
end

local cases = {
  -- dates and times: en-US standard formats, kind kept
  { "@addDays('2018-03-15T13:00:00Z', 10)", "2018-03-25T13:00:00.0000000Z", "adf",
    note = "the page prints 2018-03-25T00:00:0000000Z; adding days keeps the time of day" },
  { "@addDays('2018-03-15T00:00:00Z', -5)", "2018-03-10T00:00:00.0000000Z", "adf" },
  { "@addHours('2018-03-15T00:00:00Z', 10)", "2018-03-15T10:00:00.0000000Z", "adf" },
  { "@addHours('2018-03-15T15:00:00Z', -5)", "2018-03-15T10:00:00.0000000Z", "adf" },
  { "@addMinutes('2018-03-15T00:10:00Z', 10)", "2018-03-15T00:20:00.0000000Z", "adf" },
  { "@addMinutes('2018-03-15T00:20:00Z', -5)", "2018-03-15T00:15:00.0000000Z", "adf" },
  { "@addSeconds('2018-03-15T00:00:00Z', 10)", "2018-03-15T00:00:10.0000000Z", "adf" },
  { "@addSeconds('2018-03-15T00:00:30Z', -5)", "2018-03-15T00:00:25.0000000Z", "adf" },
  { "@addToTime('2018-01-01T00:00:00Z', 1, 'Day')", "2018-01-02T00:00:00.0000000Z", "adf" },
  { "@addToTime('2018-01-01T00:00:00Z', 1, 'Day', 'D')", "Tuesday, January 2, 2018", "adf" },
  { "@convertFromUtc('2018-01-01T08:00:00.0000000Z', 'Pacific Standard Time')", "2018-01-01T00:00:00.0000000", "adf",
    note = "the page prints 2018-01-01T00:00:00Z; a converted local time has no zone (as convertTimeZone's example shows)" },
  { "@convertFromUtc('2018-01-01T08:00:00.0000000Z', 'Pacific Standard Time', 'D')", "Monday, January 1, 2018", "adf" },
  { "@convertTimeZone('2018-01-01T08:00:00.0000000Z', 'UTC', 'Pacific Standard Time')", "2018-01-01T00:00:00.0000000", "adf" },
  { "@convertTimeZone('2018-01-01T08:00:00.0000000Z', 'UTC', 'Pacific Standard Time', 'D')", "Monday, January 1, 2018", "adf" },
  { "@convertToUtc('01/01/2018 00:00:00', 'Pacific Standard Time')", "2018-01-01T08:00:00.0000000Z", "adf" },
  { "@convertToUtc('01/01/2018 00:00:00', 'Pacific Standard Time', 'D')", "Monday, January 1, 2018", "adf" },
  { "@dayOfMonth('2018-03-15T13:27:36Z')", 15, "adf" },
  { "@dayOfWeek('2018-03-15T13:27:36Z')", 4, "adf", note = "the page says 3; 2018-03-15 is a Thursday (Sunday = 0)" },
  { "@dayOfYear('2018-03-15T13:27:36Z')", 74, "adf" },
  { "@formatDateTime('03/15/2018 12:00:00', 'yyyy-MM-ddTHH:mm:ss')", "2018-03-15T12:00:00", "adf" },
  { "@formatDateTime('2018-03-15T13:00:00')", "2018-03-15T13:00:00.0000000", ".net",
    note = "a time without a zone stays zone-less: no Z is added" },
  { "@formatDateTime('2018-03-15T18:30:00+05:30')", "2018-03-15T13:00:00.0000000Z", ".net",
    note = "a time with an offset keeps its instant, in UTC" },
  { "@addHours('2018-03-15 10:00', 1)", "2018-03-15T11:00:00.0000000", ".net" },
  { "@formatDateTime('2009-06-15T13:45:30Z', 'd')", "6/15/2009", ".net" },
  { "@formatDateTime('2009-06-15T13:45:30Z', 'f')", "Monday, June 15, 2009 1:45 PM", ".net" },
  { "@formatDateTime('2009-06-15T13:45:30Z', 'F')", "Monday, June 15, 2009 1:45:30 PM", ".net" },
  { "@formatDateTime('2009-06-15T13:45:30Z', 'g')", "6/15/2009 1:45 PM", ".net" },
  { "@formatDateTime('2009-06-15T13:45:30Z', 'G')", "6/15/2009 1:45:30 PM", ".net" },
  { "@formatDateTime('2009-06-15T13:45:30Z', 'M')", "June 15", ".net" },
  { "@formatDateTime('2009-06-15T13:45:30Z', 'R')", "Mon, 15 Jun 2009 13:45:30 GMT", ".net" },
  { "@formatDateTime('2009-06-15T13:45:30Z', 's')", "2009-06-15T13:45:30", ".net" },
  { "@formatDateTime('2009-06-15T13:45:30Z', 't')", "1:45 PM", ".net" },
  { "@formatDateTime('2009-06-15T13:45:30Z', 'T')", "1:45:30 PM", ".net" },
  { "@formatDateTime('2009-06-15T13:45:30Z', 'u')", "2009-06-15 13:45:30Z", ".net" },
  { "@formatDateTime('2009-06-15T13:45:30Z', 'U')", "Monday, June 15, 2009 1:45:30 PM", ".net" },
  { "@formatDateTime('2009-06-15T13:45:30Z', 'Y')", "June 2009", ".net" },
  { "@formatDateTime('2009-06-15T13:45:30', 'yyyy-MM-ddTHH:mm:ssK')", "2009-06-15T13:45:30", ".net" },
  { "@getFutureTime(5, 'Day')", "2018-03-06T00:00:00.0000000Z", "adf", now = "2018-03-01T00:00:00.0000000Z" },
  { "@getFutureTime(5, 'Day', 'D')", "Tuesday, March 6, 2018", "adf", now = "2018-03-01T00:00:00.0000000Z" },
  { "@getPastTime(5, 'Day')", "2018-01-27T00:00:00.0000000Z", "adf", now = "2018-02-01T00:00:00.0000000Z" },
  { "@getPastTime(5, 'Day', 'D')", "Saturday, January 27, 2018", "adf", now = "2018-02-01T00:00:00.0000000Z" },
  { "@startOfDay('2018-03-15T13:30:30Z')", "2018-03-15T00:00:00.0000000Z", "adf" },
  { "@startOfHour('2018-03-15T13:30:30Z')", "2018-03-15T13:00:00.0000000Z", "adf" },
  { "@startOfMonth('2018-03-15T13:30:30Z')", "2018-03-01T00:00:00.0000000Z", "adf" },
  { "@subtractFromTime('2018-01-02T00:00:00Z', 1, 'Day')", "2018-01-01T00:00:00.0000000Z", "adf" },
  { "@subtractFromTime('2018-01-02T00:00:00Z', 1, 'Day', 'D')", "Monday, January 1, 2018", "adf",
    note = "the page prints \"Monday, January, 1, 2018\" with a stray comma" },
  { "@utcNow()", "2018-04-15T13:00:00.0000000Z", "adf", now = "2018-04-15T13:00:00Z" },
  { "@utcNow('D')", "Sunday, April 15, 2018", "adf", now = "2018-04-15T13:00:00Z" },

  -- XML and XPath: XML values ($content-type / $content), node-sets as arrays, namespaces in scope
  { "@xml('<name>Sophia Owen</name>')", xml_value("<name>Sophia Owen</name>"), "la" },
  { "@string(xml(json('{ \"name\": \"Sophia Owen\" }')))", "<name>Sophia Owen</name>", "adf" },
  -- members in the order of the JSON text, attributes first
  { "@string(xml(json('{\"r\": {\"z\": \"1\", \"@b\": \"x\", \"a\": \"2\", \"@a\": \"y\"}}')))",
    '<r b="x" a="y"><z>1</z><a>2</a></r>', "la" },
  { "@xpath(xml(pipeline().parameters.items), '/produce/item/name')",
    A { xml_value("<name>Gala</name>"), xml_value("<name>Honeycrisp</name>") }, "la" },
  { "@xpath(xml(pipeline().parameters.items), 'sum(/produce/item/count)')", 30, "adf" },
  { "@xpath(xml(pipeline().parameters.items), '/produce/item[last()]/name')", A { xml_value("<name>Honeycrisp</name>") }, "la" },
  { "@xpath(xml(pipeline().parameters.expired), '//name[@expired]')", A { xml_value("<name expired=\"true\">Gala</name>") }, "la" },
  { "@xpath(xml(pipeline().parameters.expired), '//name[@expired = ''true'']')",
    A { xml_value("<name expired=\"true\">Gala</name>") }, "la" },
  { "@xpath(xml(pipeline().parameters.file), '/*[name()=\"file\"]/*[name()=\"location\"]')",
    A { xml_value("<location xmlns=\"https://contoso.com\">Paris</location>") }, "adf" },
  { "@xpath(xml(pipeline().parameters.file), '/*[local-name()=\"file\" and namespace-uri()=\"https://contoso.com\"]/*[local-name()=\"location\"]')",
    A { xml_value("<location xmlns=\"https://contoso.com\">Paris</location>") }, "adf" },
  { "@xpath(xml(pipeline().parameters.file), 'string(/*[name()=\"file\"]/*[name()=\"location\"])')", "Paris", "adf" },
  { "@length(xpath(xml(pipeline().parameters.xml), '/*[name()=\"file\"]/*[name()=\"location\"]'))", 1, "dftf" },
  { "@base64ToString(xpath(xml(pipeline().parameters.xml), '/*[name()=\"file\"]/*[name()=\"location\"]')[0]['$content'])",
    "<location xmlns=\"https://contoso.com\">Paris</location>", "dftf" },
  { "@xpath(xml(pipeline().parameters.file), '/file')", A {}, ".net",
    note = "an unprefixed name matches only names in no namespace (XPath 1.0)" },
  { "@xpath(xml(pipeline().parameters.items), 'count(//item)')", 2, ".net" },
  { "@json(xml('<?xml version=\"1.0\"?> <root> <person id=''1''> <name>Sophia Owen</name> <occupation>Engineer</occupation> </person> </root>'))",
    O { ["?xml"] = O { ["@version"] = "1.0" }, root = O { person = O { ["@id"] = "1", name = "Sophia Owen", occupation = "Engineer" } } },
    "adf", note = "the page shows person as a one-element array; JSON.NET's conversion, which ADF uses, gives the object" },

  -- conversion and string edge cases
  { "@json(null)", O {}, "adf", note = "\"If the string is null, the function returns an empty object\"" },
  { "@json('[1, 2, 3]')", A { 1, 2, 3 }, "adf" },
  { "@json('{\"fullName\": \"Sophia Owen\"}')", O { fullName = "Sophia Owen" }, "adf" },
  { "@json('{ \"field0\": [ { \"field1\": [ \"value1\", \"value2\" ] } ] }').field0[0].field1[1]", "value2", "dftf" },
  { "@indexOf('hello world', '')", 0, ".net" },
  { "@lastIndexOf('hello world', '')", 11, ".net", note = "String.LastIndexOf(\"\") on .NET 5 and later" },
  { "@split('a_b_c', '')", A { "a_b_c" }, ".net" },
  { "@float('10.333')", 10.333, "adf" },
  { "@float('10')", 10.0, "adf", note = "float() always gives a float, also for whole numbers" },
  { "@int('10')", 10, "adf" },
  { "@sub(10.3, .3)", 10.0, "adf", note = "a number may start with its point; the result is the float 10" },
  { "@add(-.5, 1)", 0.5, "adf" },
  { "@add(1, 1.5)", 2.5, "adf" },
  { "@mul(1.5, 2)", 3.0, "adf" },
  { "@mul(1, 2)", 2, "adf" },
  { "@div(11, 5)", 2, "adf" },
  { "@div(11, 5.0)", 2.2, ".net" },
  { "@concat(activity('Sample').output.float, 'test')", "0.016666666666666666test", "dftf" },
  { "@string(add(0.1, 0.2))", "0.30000000000000004", ".net", note = "doubles print in their shortest round-trip form" },
  { "@string(json('{ \"name\": \"Sophie Owen\" }'))", "{\"name\":\"Sophie Owen\"}", "adf" },
  { "@decodeUriComponent('http%3A%2F%2Fcontoso.com')", "http://contoso.com", "adf",
    note = "the page prints https://contoso.com" },
  { "@uriComponent('https://contoso.com')", "https%3A%2F%2Fcontoso.com", "adf", note = "the page prints http%3A…" },
  { "@concat('https://example.com/jobs/', '123''', concat('&', 'abc,'))", "https://example.com/jobs/123'&abc,", "dftf" },
  { "@CONCAT('a', 'b')", "ab", "dftf" },
  { "@coalesce(null)", null, "dftf" },
  { "@createArray('a', createArray('b', 'c'))[1][0]", "b", "dftf" },
  { "@activity('Error activity').Error.message", "Oh no", "dftf" },
  { "@pipeline()?.TriggeredByPipelineRunId", null, "dftf" },
}

-- Failures ADF reports (lufa's messages name the expression, the function and what was wrong).
local failures = {
  { "@div(1, 0)", "evaluation", "function 'div' cannot divide by zero", "adf" },
  { "@mod(1, 0)", "evaluation", "function 'mod' cannot divide by zero", "adf" },
  { "@add(9223372036854775807, 1)", "evaluation", "overflowed the 64-bit integer range", ".net" },
  { "@replace('abc', '', 'x')", "argument", "cannot replace an empty string", ".net" },
  { "@xpath(xml(pipeline().parameters.file), '/c:file')", "argument", "the namespace prefix 'c' is not bound", ".net" },
  { "@pipeline().parameters.missing", "property", "property 'missing' doesn't exist", "dftf" },
  { "@activity('nope').output", "evaluation", "activity 'nope' is not available here", "dftf" },
  { "@item()", "evaluation", "the template function 'item' is not expected at this location", "dftf" },
}

describe("expression values as ADF gives them", function()
  for _, case in ipairs(cases) do
    it(case[1] .. " (" .. case[3] .. ")", function()
      assert.are.equal(canon(case[2]), canon(eval(case[1], case.now)))
    end)
  end

  for _, case in ipairs(failures) do
    it(case[1] .. " fails: " .. case[3], function()
      local ok, err = pcall(eval, case[1])
      assert.is_false(ok)
      assert.are.equal("expression", err.kind)
      assert.are.equal(case[2], err.code, err.message)
      assert.is_truthy(err.message:find(case[3], 1, true), err.message)
      assert.is_truthy(err.message:find(case[1], 1, true), "the message names the expression")
    end)
  end

  it("runs the testing framework's xpath pipeline scenario: an Array variable holds the XML node", function()
    local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
    local S = dofile(here .. "pipeline_support.lua")
    local act = S.act
    local f = S.factory({
      act("Set XML String", "SetVariable", nil, {variableName = "xml", value = "<?xml version=\"1.0\"?>\n" ..
        "<file xmlns=\"https://contoso.com\"><location>Paris</location></file>"}),
      act("Set xpath", "SetVariable", nil, {variableName = "xpath", value = "/*[name()=\"file\"]/*[name()=\"location\"]"}),
      act("As array", "SetVariable", {{"Set XML String", "Succeeded"}, {"Set xpath", "Succeeded"}},
        {variableName = "result_arr", value = {value = "@xpath(xml(variables('xml')), variables('xpath'))", type = "Expression"}}),
    }, {variables = {xml = {type = "String"}, xpath = {type = "String"}, result_arr = {type = "Array"}}})
    local rec, _, recs = S.run(f)
    assert.are.equal("Succeeded", rec.status)
    assert.are.equal(canon(A { xml_value("<location xmlns=\"https://contoso.com\">Paris</location>") }),
      canon(recs["As array"].output.value))
  end)

  it("keeps XML and binary values made from a SecureString secret, and usable", function()
    local secret = require "lufa.secret"
    local s = scope()
    s.pipeline.parameters.doc = secret("<cfg><key>k-123456</key></cfg>")
    local function ev(text)
      return assert(expression.compile(text)):eval(s)
    end
    local x = ev("@xml(pipeline().parameters.doc)")
    assert.are.equal("application/xml;charset=utf-8", x["$content-type"], "the type stays readable")
    assert.is_true(secret.is(x["$content"]))
    local found = ev("@xpath(xml(pipeline().parameters.doc), 'string(/cfg/key)')")
    assert.is_true(secret.is(found))
    assert.are.equal("k-123456", secret.expose(found))
    local text = ev("@string(binary(pipeline().parameters.doc))")
    assert.is_true(secret.is(text))
    assert.are.equal("<cfg><key>k-123456</key></cfg>", secret.expose(text))
    local joined = ev("@concat('doc=', xml(pipeline().parameters.doc))")
    assert.is_true(secret.is(joined))
    assert.is_falsy(json.encode(x):find("k-123456", 1, true))
  end)

  it("gives binary results as ADF's binary content values, read back as their bytes", function()
    local bin = O { ["$content-type"] = "application/octet-stream", ["$content"] = "aGVsbG8=" }
    assert.are.equal(canon(bin), canon(eval("@base64ToBinary('aGVsbG8=')")))
    assert.are.equal(canon(bin), canon(eval("@binary('hello')")))
    assert.are.equal(canon(bin), canon(eval("@dataUriToBinary('data:text/plain;charset=utf-8;base64,aGVsbG8=')")))
    assert.are.equal("hello", eval("@string(decodeDataUri('data:text/plain;charset=utf-8;base64,aGVsbG8='))"))
    assert.are.equal("aGVsbG8=", eval("@base64(binary('hello'))"))
    assert.are.equal("http://contoso.com", eval("@string(uriComponentToBinary('http%3A%2F%2Fcontoso.com'))"))
  end)

  it("has every function in docs/expressions.md's conformance table, with its sources", function()
    local doc = assert(io.open("docs/expressions.md")):read("a")
    local at = assert(doc:find("| function | checked | source |", 1, true), "the conformance table")
    local listed = {}
    for line in doc:sub(at):gmatch("[^\n]+") do
      local first, source = line:match("^| ([^|]+) |[^|]+| ([^|]+) |$")
      if first and first:find("`", 1, true) then
        assert.is_truthy(source:find("%u"), "a source for " .. first)
        for name in first:gmatch("`(%w+)`") do listed[name] = true end
      end
    end
    local missing = {}
    for _, name in ipairs(expression.function_names()) do
      if not listed[name] then missing[#missing + 1] = name end
    end
    assert.are.same({}, missing)
  end)

  it("follows one failure convention: compile and try_eval return nil and the error, eval raises it", function()
    local bad, cerr = expression.compile("@concat('a'")
    assert.is_nil(bad)
    assert.are.equal("expression", cerr.kind)
    assert.are.equal("syntax", cerr.code)
    local c = assert(expression.compile("@div(1, 0)"))
    local v, err = c:try_eval(scope())
    assert.is_nil(v)
    assert.are.equal("expression", err.kind)
    assert.are.equal("evaluation", err.code)
    assert.are.equal(2, err.column)
    local ok, raised = pcall(c.eval, c, scope())
    assert.is_false(ok)
    assert.are.equal(err.message, raised.message)
    assert.are.equal(3, assert(expression.compile("@add(1, 2)")):try_eval(scope()))
  end)

  it("rejects an unknown function and a wrong argument count when compiling, naming them", function()
    local c, err = expression.compile("@concat(formatDatetime(utcnow(), 'd'), lenght('x'))")
    assert.is_nil(c)
    assert.are.equal("syntax", err.code)
    assert.is_truthy(err.message:find("unknown function 'lenght' (did you mean 'length'?)", 1, true), err.message)
    c, err = expression.compile("@substring('abc')")
    assert.is_nil(c)
    assert.is_truthy(err.message:find("substring", 1, true), err.message)
  end)
end)
