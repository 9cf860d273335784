-- Conformance table for the ADF expression function library: every function,
-- at least two cases each, plus type errors. Values are compared with their
-- JSON type (integer 3 differs from float 3.0).

local expression = require "lufa.expression"
local json = require "lufa.json"

local A, O, null = json.array, json.object, json.null

-- Canonical text of a value that keeps integer/float and array/object apart.
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

local fixed_now = 1521118800 -- 2018-03-15T13:00:00Z

local function scope()
  return {
    pipeline = {
      DataFactory = "factory1", Pipeline = "pipe1", RunId = "run-1", TriggerType = "Manual",
      TriggerId = "t-1", TriggerName = "Manual", TriggerTime = "2018-03-15T13:00:00.0000000Z", GroupId = "g-1",
      TriggeredByPipelineName = null, TriggeredByPipelineRunId = null,
      parameters = O { a = "alpha", n = 42, f = 1.5, list = A { 1, 2, 3 }, obj = O { k = "v" } },
      globalParameters = O { env = "dev" },
    },
    activity = function(name)
      if name:lower() == "lookup" then
        return O { status = "Succeeded", output = O { firstRow = O { id = 7 }, value = A { O { n = 1 }, O { n = 2 } } } }
      end
      error("unknown activity " .. name)
    end,
    variables = function(name)
      if name == "counter" then return 3 end
      if name == "names" then return A { "x", "y" } end
      error("unknown variable " .. name)
    end,
    item = function() return O { name = "file.csv", size = 10 } end,
    trigger = O { scheduledTime = "2018-03-15T13:00:00Z", outputs = O { windowStartTime = "2018-03-15T00:00:00Z" } },
    dataset = O { folder = "in" },
    linkedService = O { url = "https://example.test" },
    now = function() return fixed_now end,
  }
end

local function eval(text)
  local c, err = expression.compile(text)
  if not c then error(err, 0) end
  return c:eval(scope())
end

-- { expression, expected value } or { expression, error = "code" }.
local cases = {
  -- string
  concat = {
    { "@concat('a', 'b', 'c')", "abc" },
    { "@concat('n=', 1, ' f=', 2.5, ' b=', true)", "n=1 f=2.5 b=True" },
    { "@concat('x', createArray(1, 2))", "x[1,2]" },
    { "@concat('null:', null)", "null:" },
  },
  endsWith = {
    { "@endsWith('hello world', 'WORLD')", true },
    { "@endsWith('hello world', 'hello')", false },
    { "@endsWith(createArray(1), 'x')", error = "type" },
  },
  guid = {
    { "@length(guid())", 36 },
    { "@length(guid('N'))", 32 },
    { "@startsWith(guid('B'), '{')", true },
    { "@guid('Q')", error = "argument" },
  },
  indexOf = {
    { "@indexOf('hello world', 'WORLD')", 6 },
    { "@indexOf('hello', 'z')", -1 },
    { "@indexOf('héllo wörld', 'w')", 6 },
    { "@indexOf(1, createArray())", error = "type" },
  },
  lastIndexOf = {
    { "@lastIndexOf('hello world world', 'World')", 12 },
    { "@lastIndexOf('hello', 'z')", -1 },
  },
  replace = {
    { "@replace('the old string', 'old', 'new')", "the new string" },
    { "@replace('aXa', 'x', 'b')", "aXa" },
    { "@replace('abc', '', 'x')", error = "argument" },
  },
  split = {
    { "@split('a_b_c', '_')", A { "a", "b", "c" } },
    { "@split('abc', ',')", A { "abc" } },
    { "@split('a,,b', ',')", A { "a", "", "b" } },
  },
  startsWith = {
    { "@startsWith('hello world', 'HELLO')", true },
    { "@startsWith('hello world', 'world')", false },
  },
  substring = {
    { "@substring('hello world', 6, 5)", "world" },
    { "@substring('hello', 1)", "ello" },
    { "@substring('hello', 3, 5)", error = "argument" },
    { "@substring('hello', 'a', 1)", error = "type" },
  },
  toLower = {
    { "@toLower('Hello World')", "hello world" },
    { "@toLower('ABC1')", "abc1" },
  },
  toUpper = {
    { "@toUpper('Hello World')", "HELLO WORLD" },
    { "@toUpper('abc1')", "ABC1" },
  },
  trim = {
    { "@trim('  Hello World  ')", "Hello World" },
    { "@trim('x')", "x" },
    { "@trim(createArray())", error = "type" },
  },
  -- collection
  contains = {
    { "@contains('hello world', 'world')", true },
    { "@contains('hello world', 'WORLD')", false },
    { "@contains(createArray('a', 'b'), 'b')", true },
    { "@contains(json('{\"k\": 1}'), 'k')", true },
    { "@contains(1, 1)", error = "type" },
  },
  empty = {
    { "@empty('')", true },
    { "@empty(createArray(1))", false },
    { "@empty(json('{}'))", true },
    { "@empty(null)", true },
    { "@empty(5)", error = "type" },
  },
  first = {
    { "@first('hello')", "h" },
    { "@first(createArray(0, 1, 2))", 0 },
    { "@first(skip(createArray(1), 1))", null },
  },
  last = {
    { "@last('abcd')", "d" },
    { "@last(createArray(0, 1, 2))", 2 },
    { "@last(7)", error = "type" },
  },
  intersection = {
    { "@intersection(createArray(1, 2, 3), createArray(101, 2, 1, 10), createArray(6, 8, 1, 2))", A { 1, 2 } },
    { "@intersection(json('{\"a\":1,\"b\":2}'), json('{\"b\":3,\"c\":4}'))", O { b = 3 } },
    { "@intersection(createArray(1), json('{}'))", error = "type" },
  },
  join = {
    { "@join(createArray('a', 'b', 'c'), '.')", "a.b.c" },
    { "@join(createArray(1, true, 2.5), ',')", "1,True,2.5" },
    { "@join('abc', ',')", error = "type" },
  },
  length = {
    { "@length('abcd')", 4 },
    { "@length(createArray(0, 1, 2, 3))", 4 },
    { "@length('héllo')", 5 },
    { "@length(3)", error = "type" },
  },
  skip = {
    { "@skip(createArray(0, 1, 2, 3), 2)", A { 2, 3 } },
    { "@skip(createArray(0, 1), 5)", A {} },
    { "@skip(createArray(0), -1)", error = "argument" },
  },
  take = {
    { "@take('abcde', 3)", "abc" },
    { "@take(createArray(0, 1, 2, 3, 4), 3)", A { 0, 1, 2 } },
    { "@take(createArray(0), 'x')", error = "type" },
  },
  union = {
    { "@union(createArray(1, 2, 3), createArray(1, 2, 10, 101))", A { 1, 2, 3, 10, 101 } },
    { "@union(json('{\"a\":1}'), json('{\"a\":2,\"b\":3}'))", O { a = 2, b = 3 } },
    { "@union(createArray(1), 'x')", error = "type" },
  },
  -- logical
  ["and"] = {
    { "@and(true, true)", true },
    { "@and(false, true)", false },
    { "@and(false, div(1, 0))", false }, -- short-circuit: the division never runs
    { "@and(1, true)", error = "type" },
  },
  ["or"] = {
    { "@or(false, true)", true },
    { "@or(false, false)", false },
    { "@or(true, div(1, 0))", true },
    { "@or('true', false)", error = "type" },
  },
  ["not"] = {
    { "@not(false)", true },
    { "@not(equals(1, 1))", false },
    { "@not('x')", error = "type" },
  },
  equals = {
    { "@equals(1, 1.0)", true },
    { "@equals('abc', 'ABC')", false },
    { "@equals(true, 1)", true },
    { "@equals('1', 1)", false },
    { "@equals(createArray(1, json('{\"a\":[2]}')), json('[1, {\"a\": [2]}]'))", true },
    { "@equals(null, null)", true },
  },
  greater = {
    { "@greater(10, 5)", true },
    { "@greater('apple', 'banana')", false },
    { "@greater(2.5, 2)", true },
    { "@greater('a', 1)", error = "type" },
  },
  greaterOrEquals = {
    { "@greaterOrEquals(5, 5)", true },
    { "@greaterOrEquals('apple', 'banana')", false },
  },
  less = {
    { "@less(5, 10)", true },
    { "@less('banana', 'apple')", false },
    { "@less(createArray(), 1)", error = "type" },
  },
  lessOrEquals = {
    { "@lessOrEquals(10, 10)", true },
    { "@lessOrEquals('apply', 'apple')", false },
  },
  ["if"] = {
    { "@if(equals(1, 1), 'yes', 'no')", "yes" },
    { "@if(false, div(1, 0), 2)", 2 }, -- only the chosen branch is evaluated
    { "@if('true', 1, 2)", error = "type" },
  },
  -- conversion
  array = {
    { "@array('hello')", A { "hello" } },
    { "@array(createArray(1))", A { A { 1 } } },
  },
  base64 = {
    { "@base64('hello')", "aGVsbG8=" },
    { "@base64('')", "" },
  },
  base64ToBinary = {
    { "@base64ToBinary('aGVsbG8=')", O { ["$content-type"] = "application/octet-stream", ["$content"] = "aGVsbG8=" } },
    { "@string(base64ToBinary('aGVsbG8='))", "hello" },
    { "@base64ToBinary('a$b')", error = "argument" },
  },
  base64ToString = {
    { "@base64ToString('aGVsbG8=')", "hello" },
    { "@base64ToString('w6k=')", "é" },
    { "@base64ToString('***')", error = "argument" },
  },
  binary = {
    { "@binary('hello')", O { ["$content-type"] = "application/octet-stream", ["$content"] = "aGVsbG8=" } },
    { "@binary(createArray())", error = "type" },
  },
  bool = {
    { "@bool(1)", true },
    { "@bool(0)", false },
    { "@bool('True')", true },
    { "@bool('yes')", error = "type" },
  },
  coalesce = {
    { "@coalesce(null, true, false)", true },
    { "@coalesce(null, 'hello', 'world')", "hello" },
    { "@coalesce(null, null)", null },
    { "@coalesce(null, '')", "" },
  },
  createArray = {
    { "@createArray('h', 1, 2.5)", A { "h", 1, 2.5 } },
    { "@createArray(null)", A { null } },
    { "@createArray()", A {} },
  },
  dataUri = {
    { "@dataUri('hello')", "data:text/plain;charset=utf-8;base64,aGVsbG8=" },
    { "@dataUri('')", "data:text/plain;charset=utf-8;base64," },
  },
  dataUriToBinary = {
    { "@dataUriToBinary('data:text/plain;charset=utf-8;base64,aGVsbG8=')", O { ["$content-type"] = "application/octet-stream", ["$content"] = "aGVsbG8=" } },
    { "@dataUriToBinary('nope')", error = "argument" },
  },
  dataUriToString = {
    { "@dataUriToString('data:text/plain;charset=utf-8;base64,aGVsbG8=')", "hello" },
    { "@dataUriToString('data:,a%20b')", "a b" },
  },
  decodeBase64 = {
    { "@decodeBase64('aGVsbG8=')", "hello" },
    { "@decodeBase64('aGk')", "hi" },
  },
  decodeDataUri = {
    { "@decodeDataUri('data:text/plain;charset=utf-8;base64,aGVsbG8=')", O { ["$content-type"] = "application/octet-stream", ["$content"] = "aGVsbG8=" } },
    { "@decodeDataUri(1)", error = "argument" },
  },
  decodeUriComponent = {
    { "@decodeUriComponent('http%3A%2F%2Fcontoso.com')", "http://contoso.com" },
    { "@decodeUriComponent('a+b%20c')", "a+b c" },
  },
  encodeUriComponent = {
    { "@encodeUriComponent('https://contoso.com')", "https%3A%2F%2Fcontoso.com" },
    { "@encodeUriComponent('a b~_.-')", "a%20b~_.-" },
  },
  float = {
    { "@float('10.333')", 10.333 },
    { "@float(3)", 3.0 },
    { "@float('1e3')", 1000.0 },
    { "@float('abc')", error = "type" },
  },
  int = {
    { "@int('10')", 10 },
    { "@int(' -3 ')", -3 },
    { "@int('10.5')", error = "type" },
    { "@int(3.7)", error = "type" },
  },
  json = {
    { "@json('{\"a\": [1, 2.5, null]}')", O { a = A { 1, 2.5, null } } },
    { "@json('[]')", A {} },
    { "@json('<root><x>1</x></root>')", O { root = O { x = "1" } } },
    { "@json('{bad')", error = "argument" },
  },
  string = {
    { "@string(10)", "10" },
    { "@string(2.5)", "2.5" },
    { "@string(1.0)", "1" },
    { "@string(true)", "True" },
    { "@string(json('{\"name\":\"Sophie\"}'))", "{\"name\":\"Sophie\"}" },
    { "@string(div(1.0, 60))", "0.016666666666666666" },
  },
  uriComponent = {
    { "@uriComponent('https://contoso.com')", "https%3A%2F%2Fcontoso.com" },
    { "@uriComponent('ü')", "%C3%BC" },
  },
  uriComponentToBinary = {
    { "@uriComponentToBinary('http%3A%2F%2Fcontoso.com')", O { ["$content-type"] = "application/octet-stream", ["$content"] = "aHR0cDovL2NvbnRvc28uY29t" } },
    { "@string(uriComponentToBinary('%41'))", "A" },
  },
  uriComponentToString = {
    { "@uriComponentToString('http%3A%2F%2Fcontoso.com')", "http://contoso.com" },
    { "@uriComponentToString('x%2')", "x%2" },
  },
  xml = {
    { "@string(xml('{\"person\": {\"name\": \"Sophia\", \"age\": 30}}'))", "<person><name>Sophia</name><age>30</age></person>" },
    { "@string(xml(json('{\"r\": {\"@id\": \"1\", \"x\": [\"a\", \"b\"]}}')))", "<r id=\"1\"><x>a</x><x>b</x></r>" },
    { "@xml('<name>Sophia Owen</name>')", O { ["$content-type"] = "application/xml;charset=utf-8",
      ["$content"] = "PG5hbWU+U29waGlhIE93ZW48L25hbWU+" } },
    { "@xml('{\"a\": 1, \"b\": 2}')", error = "argument" },
  },
  xpath = {
    { "@xpath('<produce><item><name>Gala</name><count>20</count></item><item><name>Honeycrisp</name><count>10</count></item></produce>', 'sum(/produce/item/count)')", 30 },
    { "@xpath('<produce><item><name>Gala</name></item><item><name>Honeycrisp</name></item></produce>', '/produce/item/name')",
      A { O { ["$content-type"] = "application/xml;charset=utf-8", ["$content"] = "PG5hbWU+R2FsYTwvbmFtZT4=" },
        O { ["$content-type"] = "application/xml;charset=utf-8", ["$content"] = "PG5hbWU+SG9uZXljcmlzcDwvbmFtZT4=" } } },
    { "@xpath('<file><location>Paris</location></file>', 'string(/*[name()=\"file\"]/*[name()=\"location\"])')", "Paris" },
    { "@xpath('<a><b id=\"1\">x</b><b id=\"2\">y</b></a>', '/a/b[@id=\"2\"]/text()')", A { "y" } },
    { "@xpath('<a><b/><b/></a>', 'count(//b)')", 2 },
    { "@xpath('<a>', '/a')", error = "argument" },
  },
  -- math
  add = {
    { "@add(1, 1.5)", 2.5 },
    { "@add(2, 3)", 5 },
    { "@add(9223372036854775807, 1)", error = "evaluation" },
    { "@add('1', 2)", error = "type" },
  },
  div = {
    { "@div(10, 5)", 2 },
    { "@div(11, 5)", 2 },
    { "@div(-11, 5)", -2 },
    { "@div(11, 5.0)", 2.2 },
    { "@div(1, 0)", error = "evaluation" },
  },
  max = {
    { "@max(1, 5, 3)", 5 },
    { "@max(createArray(1, 5.5, 3))", 5.5 },
    { "@max(createArray())", error = "argument" },
  },
  min = {
    { "@min(1, 0, 3)", 0 },
    { "@min(createArray(2.5, 7))", 2.5 },
    { "@min('a', 1)", error = "type" },
  },
  mod = {
    { "@mod(3, 2)", 1 },
    { "@mod(-5, 3)", -2 },
    { "@mod(5.5, 2)", 1.5 },
    { "@mod(1, 0)", error = "evaluation" },
  },
  mul = {
    { "@mul(1, 2)", 2 },
    { "@mul(1.5, 2)", 3.0 },
    { "@mul(true, 2)", error = "type" },
  },
  rand = {
    { "@and(greaterOrEquals(rand(1, 3), 1), less(rand(1, 3), 3))", true },
    { "@rand(4, 5)", 4 },
    { "@rand(5, 1)", error = "argument" },
  },
  range = {
    { "@range(1, 4)", A { 1, 2, 3, 4 } },
    { "@range(-2, 0)", A {} },
    { "@range(1, -1)", error = "argument" },
  },
  sub = {
    { "@sub(10.3, 0.3)", 10.0 },
    { "@sub(5, 7)", -2 },
    { "@sub(null, 1)", error = "type" },
  },
  -- date and time
  addDays = {
    { "@addDays('2018-03-15T13:00:00Z', 10)", "2018-03-25T13:00:00.0000000Z" },
    { "@addDays('2018-03-15T00:00:00Z', -5)", "2018-03-10T00:00:00.0000000Z" },
    { "@addDays('2018-03-15T13:00:00Z', 1, 'yyyy-MM-dd')", "2018-03-16" },
    { "@addDays('yesterday', 1)", error = "argument" },
  },
  addHours = {
    { "@addHours('2018-03-15T00:00:00Z', 10)", "2018-03-15T10:00:00.0000000Z" },
    { "@addHours('2018-03-15T15:00:00Z', -5)", "2018-03-15T10:00:00.0000000Z" },
  },
  addMinutes = {
    { "@addMinutes('2018-03-15T00:10:00Z', 10)", "2018-03-15T00:20:00.0000000Z" },
    { "@addMinutes('2018-03-15T00:20:00Z', -5)", "2018-03-15T00:15:00.0000000Z" },
  },
  addSeconds = {
    { "@addSeconds('2018-03-15T00:00:00Z', 10)", "2018-03-15T00:00:10.0000000Z" },
    { "@addSeconds('2018-03-15T00:00:30Z', -5)", "2018-03-15T00:00:25.0000000Z" },
    { "@addSeconds('2018-03-15T00:00:30Z', 'x')", error = "type" },
  },
  addToTime = {
    { "@addToTime('2018-01-01T00:00:00Z', 1, 'Day')", "2018-01-02T00:00:00.0000000Z" },
    { "@addToTime('2018-01-01T00:00:00Z', 1, 'Day', 'D')", "Tuesday, January 2, 2018" },
    { "@addToTime('2018-01-31T00:00:00Z', 1, 'Month')", "2018-02-28T00:00:00.0000000Z" },
    { "@addToTime('2018-01-01T00:00:00Z', 1, 'Fortnight')", error = "argument" },
  },
  convertFromUtc = {
    { "@convertFromUtc('2018-01-01T08:00:00.0000000Z', 'Pacific Standard Time')", "2018-01-01T00:00:00.0000000" },
    { "@convertFromUtc('2018-01-01T08:00:00.0000000Z', 'Pacific Standard Time', 'D')", "Monday, January 1, 2018" },
    { "@convertFromUtc('2018-07-01T08:00:00Z', 'Pacific Standard Time', 'HH:mm')", "01:00" },
    { "@convertFromUtc('2018-07-01T08:00:00Z', 'Mars Standard Time')", error = "argument" },
  },
  convertTimeZone = {
    { "@convertTimeZone('2018-01-01T08:00:00.0000000Z', 'UTC', 'Pacific Standard Time')", "2018-01-01T00:00:00.0000000" },
    { "@convertTimeZone('2018-01-01T08:00:00.0000000Z', 'UTC', 'Pacific Standard Time', 'D')", "Monday, January 1, 2018" },
    { "@convertTimeZone('2018-07-01 12:00:00', 'W. Europe Standard Time', 'AUS Eastern Standard Time', 'HH:mm')", "20:00" },
  },
  convertToUtc = {
    { "@convertToUtc('01/01/2018 00:00:00', 'Pacific Standard Time')", "2018-01-01T08:00:00.0000000Z" },
    { "@convertToUtc('01/01/2018 00:00:00', 'Pacific Standard Time', 'D')", "Monday, January 1, 2018" },
    { "@convertToUtc('2018-03-11 02:30:00', 'Pacific Standard Time')", error = "argument" },
  },
  dayOfMonth = {
    { "@dayOfMonth('2018-03-15T13:27:36Z')", 15 },
    { "@dayOfMonth('2016-02-29')", 29 },
    { "@dayOfMonth('2018-02-30')", error = "argument" },
  },
  dayOfWeek = {
    { "@dayOfWeek('2018-03-15T13:27:36Z')", 4 },
    { "@dayOfWeek('2023-01-01')", 0 },
  },
  dayOfYear = {
    { "@dayOfYear('2018-03-15T13:27:36Z')", 74 },
    { "@dayOfYear('2016-12-31')", 366 },
  },
  formatDateTime = {
    { "@formatDateTime('03/15/2018 12:00:00', 'yyyy-MM-ddTHH:mm:ss')", "2018-03-15T12:00:00" },
    { "@formatDateTime('2018-03-15T13:27:36.1234567Z')", "2018-03-15T13:27:36.1234567Z" },
    { "@formatDateTime('2018-03-15T13:27:36Z', 'dddd, MMM d, yy h:mm tt')", "Thursday, Mar 15, 18 1:27 PM" },
    { "@formatDateTime('2018-03-15T13:27:36.5Z', 'HH:mm:ss.fff / ss.FFF / ss.FF')", "13:27:36.500 / 36.5 / 36.5" },
    { "@formatDateTime('2018-03-15T13:27:36Z', 'R')", "Thu, 15 Mar 2018 13:27:36 GMT" },
    { "@formatDateTime('2018-03-15T13:27:36Z', 'u')", "2018-03-15 13:27:36Z" },
    { "@formatDateTime('2018-03-15T13:27:36Z', '''Day'' d ''of'' MMMM')", "Day 15 of March" },
    { "@formatDateTime('2018-03-15T13:27:36+02:00', 's')", "2018-03-15T11:27:36" },
    { "@formatDateTime('2018-03-15', 'Q')", error = "argument" },
  },
  getFutureTime = {
    { "@getFutureTime(5, 'Day')", "2018-03-20T13:00:00.0000000Z" },
    { "@getFutureTime(1, 'Year', 'yyyy')", "2019" },
  },
  getPastTime = {
    { "@getPastTime(5, 'Day')", "2018-03-10T13:00:00.0000000Z" },
    { "@getPastTime(2, 'Hour', 'HH')", "11" },
  },
  startOfDay = {
    { "@startOfDay('2018-03-15T13:30:30Z')", "2018-03-15T00:00:00.0000000Z" },
    { "@startOfDay('2018-03-15T13:30:30Z', 'yyyy-MM-dd HH:mm')", "2018-03-15 00:00" },
  },
  startOfHour = {
    { "@startOfHour('2018-03-15T13:30:30Z')", "2018-03-15T13:00:00.0000000Z" },
    { "@startOfHour('2018-03-15T13:30:30Z', 'HH:mm')", "13:00" },
  },
  startOfMonth = {
    { "@startOfMonth('2018-03-15T13:30:30Z')", "2018-03-01T00:00:00.0000000Z" },
    { "@startOfMonth('2018-03-15T13:30:30Z', 'yyyy-MM-dd')", "2018-03-01" },
  },
  subtractFromTime = {
    { "@subtractFromTime('2018-01-02T00:00:00Z', 1, 'Day')", "2018-01-01T00:00:00.0000000Z" },
    { "@subtractFromTime('2018-03-31T00:00:00Z', 1, 'Month', 'yyyy-MM-dd')", "2018-02-28" },
  },
  ticks = {
    { "@ticks('2018-03-15T13:00:00Z')", 636567156000000000 },
    { "@ticks('0001-01-01T00:00:00Z')", 0 },
    { "@ticks(5)", error = "type" },
  },
  utcNow = {
    { "@utcNow()", "2018-03-15T13:00:00.0000000Z" },
    { "@utcNow('yyyy-MM-dd')", "2018-03-15" },
  },
  -- system accessors
  pipeline = {
    { "@pipeline().RunId", "run-1" },
    { "@pipeline().parameters.n", 42 },
    { "@pipeline()?.TriggeredByPipelineName", null },
    { "@pipeline().globalParameters.env", "dev" },
  },
  activity = {
    { "@activity('lookup').output.firstRow.id", 7 },
    { "@activity('Lookup').status", "Succeeded" },
    { "@activity('lookup').output.value[1].n", 2 },
  },
  variables = {
    { "@variables('counter')", 3 },
    { "@variables('names')[0]", "x" },
  },
  item = {
    { "@item().name", "file.csv" },
    { "@item().size", 10 },
  },
  trigger = {
    { "@trigger().scheduledTime", "2018-03-15T13:00:00Z" },
    { "@trigger().outputs.windowStartTime", "2018-03-15T00:00:00Z" },
  },
  dataset = {
    { "@dataset().folder", "in" },
    { "@dataset()?.missing", null },
  },
  linkedService = {
    { "@linkedService().url", "https://example.test" },
    { "@linkedService().missing", error = "property" },
  },
  triggerBody = {
    { "@triggerBody()", error = "evaluation" },
    { "@coalesce(1, 2)", 1 }, -- triggerBody() has nothing to return outside event triggers
  },
}

describe("expression functions", function()
  local names = {}
  for name in pairs(cases) do names[#names + 1] = name end
  table.sort(names, function(a, b) return a:lower() < b:lower() end)

  for _, name in ipairs(names) do
    describe(name, function()
      for _, case in ipairs(cases[name]) do
        local text = case[1]
        if case.error then
          it(text .. " fails with " .. case.error, function()
            local ok, err = pcall(eval, text)
            assert.is_false(ok, "expected an error")
            assert.are.equal("expression", err.kind)
            assert.are.equal(case.error, err.code, tostring(err.message))
            assert.is_truthy(err.message:find(text, 1, true), "the message names the expression")
            assert.is_number(err.column)
          end)
        else
          it(text, function()
            assert.are.equal(canon(case[2]), canon(eval(text)))
          end)
        end
      end
    end)
  end

  it("covers every function in the library with at least two cases", function()
    local missing = {}
    for _, name in ipairs(expression.function_names()) do
      local list = cases[name]
      if not list or #list < 2 then missing[#missing + 1] = name end
    end
    assert.are.same({}, missing)
  end)

  it("has the 84 ADF functions plus the system accessors", function()
    local count = 0
    for _ in ipairs(expression.function_names()) do count = count + 1 end
    assert.are.equal(84 + 8, count)
  end)
end)
