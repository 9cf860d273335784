--- The ADF expression function library (string, collection, logical, conversion,
-- math) and the system accessors (pipeline(), activity(), …). Date and time
-- functions live in lufa.expression.datetime, XML ones in lufa.expression.xml.
--
-- Each entry: `{name =, min =, max =, fn = function(scope, ...) end, lazy =, secrets =}`.
-- `lazy` functions receive argument thunks (and/or/if short-circuit).
-- `secrets = "pass"` functions handle lufa.secret arguments themselves; the
-- others get secrets exposed and their string results re-wrapped as secrets.
-- @module lufa.expression.functions

local json = require "lufa.json"
local secret = require "lufa.secret"
local V = require "lufa.expression.values"
local codec = require "lufa.expression.codec"

local null = json.null
local raise, a_ = V.raise, V.a
local to_text, is_array, is_object = V.to_text, V.is_array, V.is_object
local check_string, check_integer, check_number, check_boolean =
  V.check_string, V.check_integer, V.check_number, V.check_boolean
local format, lower, upper, find, sub = string.format, string.lower, string.upper, string.find, string.sub
local mtype = math.type
local is_secret = secret.is
local SECRET_TYPE = V.SECRET_TYPE

local M = {}
local registry = {}
M.registry = registry

--- Register a function (names are matched ignoring case).
-- @param name the documented spelling
-- @param min fewest arguments
-- @param max most arguments (nil: no limit)
-- @param fn implementation `fn(scope, ...)`
-- @param opts optional `{lazy = true, secrets = "pass"}`
function M.define(name, min, max, fn, opts)
  local spec = { name = name, min = min, max = max, fn = fn }
  if opts then for k, v in pairs(opts) do spec[k] = v end end
  registry[lower(name)] = spec
  return spec
end
local define = M.define

--- Look up a function by name, ignoring case.
function M.lookup(name)
  return registry[lower(name)]
end

local function array(t) return json.array(t) end

-- ---------------------------------------------------------------- strings

local function concat_values(values, n, what)
  local any_secret = false
  local parts, size = {}, 0
  for i = 1, n do
    local text, from_secret = V.text_piece(values[i])
    parts[i] = text
    size = size + #text
    if from_secret then any_secret = true end
  end
  V.check_size(what or "function 'concat'", size)
  local text = table.concat(parts, "", 1, n)
  if any_secret then return secret.new(text) end
  return text
end
M.concat_values = concat_values

define("concat", 1, nil, function(_, a, b, ...)
  -- The common case, two plain strings, skips building an argument list.
  if type(a) == "string" and type(b) == "string" and select("#", ...) == 0 then
    V.check_size("function 'concat'", #a + #b)
    return a .. b
  end
  local n = select("#", ...)
  if b == nil and n == 0 then return concat_values({ a }, 1) end
  return concat_values({ a, b, ... }, n + 2)
end, { secrets = "pass" })

local function text_arg(fname, position, v)
  -- Numbers and booleans read as their text, XML and binary values as their bytes; collections and
  -- null do not.
  local t = type(v)
  if t == "string" then return v end
  if t == "number" or t == "boolean" then return to_text(v) end
  if V.content_type(v) then return V.content_bytes(v) end
  return check_string(fname, position, v)
end

define("endsWith", 2, 2, function(_, text, s)
  text, s = lower(text_arg("endsWith", 1, text)), lower(text_arg("endsWith", 2, s))
  return s == "" or sub(text, -#s) == s
end)

define("startsWith", 2, 2, function(_, text, s)
  text, s = lower(text_arg("startsWith", 1, text)), lower(text_arg("startsWith", 2, s))
  return sub(text, 1, #s) == s
end)

-- Byte offset -> character index (0-based), for non-ASCII text.
local function char_index(text, byte_pos)
  if not find(text, "[\128-\255]") then return byte_pos - 1 end
  return (utf8.len(text, 1, byte_pos - 1, true) or (byte_pos - 1))
end

define("indexOf", 2, 2, function(_, text, s)
  text, s = lower(text_arg("indexOf", 1, text)), lower(text_arg("indexOf", 2, s))
  local p = find(text, s, 1, true)
  if not p then return -1 end
  return char_index(text, p)
end)

define("lastIndexOf", 2, 2, function(_, text, s)
  text, s = lower(text_arg("lastIndexOf", 1, text)), lower(text_arg("lastIndexOf", 2, s))
  if s == "" then return V.char_length(text) end
  local last
  local p = find(text, s, 1, true)
  while p do
    last = p
    p = find(text, s, p + 1, true)
  end
  if not last then return -1 end
  return char_index(text, last)
end)

define("replace", 3, 3, function(_, text, old, new)
  text = text_arg("replace", 1, text)
  old = text_arg("replace", 2, old)
  new = text_arg("replace", 3, new)
  if old == "" then raise("argument", "function 'replace' cannot replace an empty string (argument 2)") end
  local out, pos, size = {}, 1, #text
  while true do
    local s, e = find(text, old, pos, true)
    if not s then break end
    out[#out + 1] = sub(text, pos, s - 1)
    out[#out + 1] = new
    pos = e + 1
    size = size + #new - #old
    V.check_size("function 'replace'", size)
  end
  out[#out + 1] = sub(text, pos)
  return table.concat(out)
end)

define("split", 2, 2, function(_, text, delim)
  text = text_arg("split", 1, text)
  delim = text_arg("split", 2, delim)
  local parts = array({})
  if delim == "" then parts[1] = text return parts end
  local pos = 1
  while true do
    local s, e = find(text, delim, pos, true)
    if not s then break end
    parts[#parts + 1] = sub(text, pos, s - 1)
    pos = e + 1
  end
  parts[#parts + 1] = sub(text, pos)
  return parts
end)

define("substring", 2, 3, function(_, text, start, length)
  text = text_arg("substring", 1, text)
  start = check_integer("substring", 2, start)
  local chars = V.chars(text)
  local n = #chars
  if length == nil then length = n - start else length = check_integer("substring", 3, length) end
  if start < 0 or start > n then
    raise("argument", format("function 'substring': start index %d is outside the text of length %d", start, n))
  end
  if length < 0 or start + length > n then
    raise("argument", format("function 'substring': start index %d plus length %d is beyond the text of length %d",
      start, length, n))
  end
  return table.concat(chars, "", start + 1, start + length)
end)

define("toLower", 1, 1, function(_, text) return lower(text_arg("toLower", 1, text)) end)
define("toUpper", 1, 1, function(_, text) return upper(text_arg("toUpper", 1, text)) end)

define("trim", 1, 1, function(_, text)
  return (text_arg("trim", 1, text):match("^%s*(.-)%s*$"))
end)

local function random_hex(n)
  local t = {}
  for i = 1, n do t[i] = format("%x", math.random(0, 15)) end
  return table.concat(t)
end

define("guid", 0, 1, function(_, fmt)
  fmt = fmt == nil and "D" or check_string("guid", 1, fmt)
  -- Version 4 (random) layout.
  local variant = format("%x", 8 + math.random(0, 3))
  local a, b, c, d, e = random_hex(8), random_hex(4), "4" .. random_hex(3), variant .. random_hex(3), random_hex(12)
  local f = upper(fmt)
  if f == "N" then return a .. b .. c .. d .. e end
  if f == "D" then return a .. "-" .. b .. "-" .. c .. "-" .. d .. "-" .. e end
  if f == "B" then return "{" .. a .. "-" .. b .. "-" .. c .. "-" .. d .. "-" .. e .. "}" end
  if f == "P" then return "(" .. a .. "-" .. b .. "-" .. c .. "-" .. d .. "-" .. e .. ")" end
  if f == "X" then
    local rest = d .. e
    local bytes = {}
    for i = 1, 16, 2 do bytes[#bytes + 1] = "0x" .. rest:sub(i, i + 1) end
    return "{0x" .. a .. ",0x" .. b .. ",0x" .. c .. ",{" .. table.concat(bytes, ",") .. "}}"
  end
  raise("argument", "function 'guid' expects the format N, D, B, P or X but got '" .. fmt .. "'")
end)

-- ---------------------------------------------------------------- collections

local function collection_kind(fname, position, v)
  local t = type(v)
  if t == "string" then return "string" end
  if is_array(v) then return "array" end
  if is_object(v) then return "object" end
  raise("type", format("function '%s' expects a string, an array or an object as argument %d but got %s",
    fname, position, a_(v)))
end

define("contains", 2, 2, function(_, coll, v)
  local k = collection_kind("contains", 1, coll)
  if k == "string" then
    return find(coll, text_arg("contains", 2, v), 1, true) ~= nil
  elseif k == "array" then
    for i = 1, #coll do
      if V.equals(coll[i], v) then return true end
    end
    return false
  end
  return type(v) == "string" and coll[v] ~= nil
end)

define("empty", 1, 1, function(_, coll)
  if coll == null then return true end
  local k = collection_kind("empty", 1, coll)
  if k == "string" then return coll == "" end
  return next(coll) == nil
end)

define("first", 1, 1, function(_, coll)
  local k = collection_kind("first", 1, coll)
  if k == "string" then
    if coll == "" then return "" end
    return V.chars(coll)[1]
  elseif k == "array" then
    local v = coll[1]
    if v == nil then return null end
    return v
  end
  raise("type", "function 'first' expects a string or an array but got an object")
end)

define("last", 1, 1, function(_, coll)
  local k = collection_kind("last", 1, coll)
  if k == "string" then
    if coll == "" then return "" end
    local chars = V.chars(coll)
    return chars[#chars]
  elseif k == "array" then
    local v = coll[#coll]
    if v == nil then return null end
    return v
  end
  raise("type", "function 'last' expects a string or an array but got an object")
end)

local function same_kind_collections(fname, ...)
  local n = select("#", ...)
  local first
  for i = 1, n do
    local v = select(i, ...)
    local k = is_array(v) and "array" or (is_object(v) and "object") or nil
    if not k then
      raise("type", format("function '%s' expects arrays or objects but argument %d is %s", fname, i, a_(v)))
    end
    first = first or k
    if k ~= first then
      raise("type", format("function '%s' expects all arguments to be %ss but argument %d is %s",
        fname, first, i, a_(v)))
    end
  end
  return first
end

local function array_has(list, v)
  for i = 1, #list do
    if V.equals(list[i], v) then return true end
  end
  return false
end

define("intersection", 1, nil, function(_, ...)
  local colls = { ... }
  local k = same_kind_collections("intersection", ...)
  if k == "array" then
    local result = array({})
    for _, v in ipairs(colls[1]) do
      local everywhere = not array_has(result, v)
      for i = 2, #colls do
        if not everywhere then break end
        everywhere = array_has(colls[i], v)
      end
      if everywhere then result[#result + 1] = v end
    end
    return result
  end
  local result = json.object({})
  for key in pairs(colls[1]) do
    local everywhere = true
    for i = 2, #colls do
      if colls[i][key] == nil then everywhere = false break end
    end
    if everywhere then result[key] = colls[#colls][key] end
  end
  return result
end)

define("union", 1, nil, function(_, ...)
  local colls = { ... }
  local k = same_kind_collections("union", ...)
  if k == "array" then
    local result = array({})
    for _, c in ipairs(colls) do
      for _, v in ipairs(c) do
        if not array_has(result, v) then result[#result + 1] = v end
      end
    end
    return result
  end
  local result = json.object({})
  for _, c in ipairs(colls) do
    for key, v in pairs(c) do result[key] = v end
  end
  return result
end)

define("join", 2, 2, function(_, list, delim)
  if not is_array(list) then
    raise("type", "function 'join' expects an array as argument 1 but got " .. a_(list))
  end
  delim = text_arg("join", 2, delim)
  local parts = {}
  for i = 1, #list do parts[i] = to_text(list[i]) end
  return table.concat(parts, delim)
end)

define("length", 1, 1, function(_, coll)
  local k = collection_kind("length", 1, coll)
  if k == "string" then return V.char_length(coll) end
  if k == "array" then return #coll end
  local n = 0
  for _ in pairs(coll) do n = n + 1 end
  return n
end)

local function slice(fname, coll, from, to)
  from = math.max(from, 1)
  local k = collection_kind(fname, 1, coll)
  if k == "object" then raise("type", "function '" .. fname .. "' expects an array or a string but got an object") end
  if k == "string" then
    local chars = V.chars(coll)
    return table.concat(chars, "", from, math.min(to, #chars))
  end
  local result = array({})
  for i = from, math.min(to, #coll) do result[#result + 1] = coll[i] end
  return result
end

define("skip", 2, 2, function(_, coll, n)
  n = check_integer("skip", 2, n)
  if n < 0 then raise("argument", "function 'skip' expects a count of 0 or more but got " .. n) end
  return slice("skip", coll, n == math.maxinteger and n or n + 1, math.maxinteger)
end)

define("take", 2, 2, function(_, coll, n)
  n = check_integer("take", 2, n)
  if n < 0 then raise("argument", "function 'take' expects a count of 0 or more but got " .. n) end
  return slice("take", coll, 1, n)
end)

-- ---------------------------------------------------------------- logical

define("and", 2, nil, function(_, ...)
  for i = 1, select("#", ...) do
    local v = check_boolean("and", i, (select(i, ...))())
    if not v then return false end
  end
  return true
end, { lazy = true })

define("or", 2, nil, function(_, ...)
  for i = 1, select("#", ...) do
    local v = check_boolean("or", i, (select(i, ...))())
    if v then return true end
  end
  return false
end, { lazy = true })

define("not", 1, 1, function(_, v) return not check_boolean("not", 1, v) end)

define("if", 3, 3, function(_, cond, yes, no)
  if check_boolean("if", 1, cond()) then return yes() end
  return no()
end, { lazy = true, secrets = "pass" })

define("equals", 2, 2, function(_, a, b) return V.equals(a, b) end, { secrets = "pass" })

-- Ordering: numbers by value; strings ignoring case first, then lower case
-- before upper case (close to .NET's culture-aware comparison for ASCII).
local function compare(fname, a, b)
  local ta, tb = type(a), type(b)
  if ta == "number" and tb == "number" then
    if a < b then return -1 elseif a > b then return 1 else return 0 end
  end
  if ta == "string" and tb == "string" then
    local la, lb = lower(a), lower(b)
    if la ~= lb then return la < lb and -1 or 1 end
    if a == b then return 0 end
    return a > b and -1 or 1
  end
  raise("type", format("function '%s' expects two numbers or two strings but got %s and %s", fname, a_(a), a_(b)))
end
M.compare = compare

define("greater", 2, 2, function(_, a, b) return compare("greater", a, b) > 0 end)
define("greaterOrEquals", 2, 2, function(_, a, b) return compare("greaterOrEquals", a, b) >= 0 end)
define("less", 2, 2, function(_, a, b) return compare("less", a, b) < 0 end)
define("lessOrEquals", 2, 2, function(_, a, b) return compare("lessOrEquals", a, b) <= 0 end)

-- ---------------------------------------------------------------- conversion

define("array", 1, 1, function(_, v) return array({ v }) end, { secrets = "pass" })

define("createArray", 0, nil, function(_, ...)
  local n = select("#", ...)
  local t = array({ ... })
  for i = 1, n do
    if t[i] == nil then t[i] = null end
  end
  return t
end, { secrets = "pass" })

define("coalesce", 1, nil, function(_, ...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if v ~= null and v ~= nil then return v end
  end
  return null
end, { secrets = "pass" })

define("base64", 1, 1, function(_, s)
  s = text_arg("base64", 1, s)
  V.check_size("function 'base64'", (#s + 2) // 3 * 4)
  return codec.base64_encode(s)
end)

local function base64_arg(fname, s)
  local bytes, why = codec.base64_decode(text_arg(fname, 1, s))
  if not bytes then raise("argument", "function '" .. fname .. "' expects base64 text: " .. why) end
  return bytes
end

-- Binary results are content values {"$content-type": "application/octet-stream", "$content": base64},
-- as ADF carries binary data (its reference: "The binary content is base64-encoded and represented by
-- $content"); text functions, string() and concat read them as their bytes.
local new_binary = V.new_content

define("base64ToString", 1, 1, function(_, s) return base64_arg("base64ToString", s) end)
define("decodeBase64", 1, 1, function(_, s) return base64_arg("decodeBase64", s) end)
define("base64ToBinary", 1, 1, function(_, s) return new_binary(base64_arg("base64ToBinary", s)) end)
define("binary", 1, 1, function(_, s) return new_binary(text_arg("binary", 1, s)) end)

define("dataUri", 1, 1, function(_, s)
  s = text_arg("dataUri", 1, s)
  V.check_size("function 'dataUri'", (#s + 2) // 3 * 4)
  return codec.data_uri(s)
end)

local function data_uri_arg(fname, s)
  local bytes, why = codec.data_uri_content(text_arg(fname, 1, s))
  if not bytes then raise("argument", "function '" .. fname .. "': " .. why) end
  return bytes
end

define("dataUriToBinary", 1, 1, function(_, s) return new_binary(data_uri_arg("dataUriToBinary", s)) end)
define("decodeDataUri", 1, 1, function(_, s) return new_binary(data_uri_arg("decodeDataUri", s)) end)
define("dataUriToString", 1, 1, function(_, s) return data_uri_arg("dataUriToString", s) end)

define("decodeUriComponent", 1, 1, function(_, s) return codec.uri_decode(text_arg("decodeUriComponent", 1, s)) end)
define("uriComponentToString", 1, 1, function(_, s)
  return codec.uri_decode(text_arg("uriComponentToString", 1, s))
end)
define("uriComponentToBinary", 1, 1, function(_, s)
  return new_binary(codec.uri_decode(text_arg("uriComponentToBinary", 1, s)))
end)
define("encodeUriComponent", 1, 1, function(_, s) return codec.uri_encode(text_arg("encodeUriComponent", 1, s)) end)
define("uriComponent", 1, 1, function(_, s)
  local encoded = codec.uri_encode(text_arg("uriComponent", 1, s))
  V.check_size("function 'uriComponent'", #encoded)
  return encoded
end)

define("int", 1, 1, function(_, v)
  local t = type(v)
  if mtype(v) == "integer" then return v end
  if t == "number" then
    local i = math.tointeger(v)
    if i then return i end
    raise("type", "function 'int' cannot convert the float " .. V.format_float(v) .. " to an integer")
  end
  if t == "string" then
    local digits = v:match("^%s*([-+]?%d+)%s*$")
    local i = digits and math.tointeger(tonumber(digits))
    if i then return i end
    raise("type", "function 'int' expects text holding a whole number but got '" .. v .. "'")
  end
  raise("type", "function 'int' expects a string or a number but got " .. a_(v))
end)

-- Floating-point results stay finite: JSON (outputs, run records) has no infinity or NaN.
local function finite(fname, r)
  if mtype(r) == "float" and (r ~= r or r == math.huge or r == -math.huge) then
    raise("evaluation", "function '" .. fname .. "' gave a number beyond the range of a double")
  end
  return r
end

define("float", 1, 1, function(_, v)
  local t = type(v)
  if t == "number" then return v + 0.0 end
  if t == "string" then
    local text = v:match("^%s*(.-)%s*$")
    if text:find("^[-+]?%d*%.?%d+[eE][-+]?%d+$") or text:find("^[-+]?%d+%.?%d*[eE]?[-+]?%d*$") or
        text:find("^[-+]?%d*%.%d+$") then
      local f = tonumber(text)
      if f then return finite("float", f + 0.0) end
    end
    raise("type", "function 'float' expects text holding a number but got '" .. v .. "'")
  end
  raise("type", "function 'float' expects a string or a number but got " .. a_(v))
end)

define("bool", 1, 1, function(_, v)
  local t = type(v)
  if t == "boolean" then return v end
  if t == "number" then return v ~= 0 end
  if t == "string" then
    local l = lower(v:match("^%s*(.-)%s*$"))
    if l == "true" then return true end
    if l == "false" then return false end
    raise("type", "function 'bool' expects 'true', 'false' or a number but got '" .. v .. "'")
  end
  raise("type", "function 'bool' expects a boolean, a number or a string but got " .. a_(v))
end)

define("string", 1, 1, function(_, v)
  if type(v) == SECRET_TYPE and is_secret(v) then return v end
  if V.content_is_secret(v) then return secret.new(V.content_bytes(v)) end
  return to_text(v)
end, { secrets = "pass" })

define("json", 1, 1, function(_, v)
  -- json(null) is an empty object (ADF's reference); an XML value converts
  -- like XML text; other values that are already JSON pass through.
  if v == null then return json.object({}) end
  if V.is_xml(v) then return require("lufa.expression.xml").to_json(V.xml_text(v)) end
  if type(v) ~= "string" then return v end
  local text = v:match("^%s*(.-)%s*$")
  if text:sub(1, 1) == "<" then
    return require("lufa.expression.xml").to_json(text)
  end
  local value, err = json.decode(text)
  if value == nil then
    raise("argument", "function 'json' expects JSON text: " .. tostring(err and err.message or err))
  end
  return value
end)

-- ---------------------------------------------------------------- math

-- Integer arithmetic that refuses to wrap around (64-bit overflow is an error).
local function int_overflow(fname)
  raise("evaluation", "function '" .. fname .. "' overflowed the 64-bit integer range")
end

define("add", 2, 2, function(_, a, b)
  check_number("add", 1, a); check_number("add", 2, b)
  local r = a + b
  if mtype(r) == "integer" and ((a >= 0) == (b >= 0)) and ((r >= 0) ~= (a >= 0)) then int_overflow("add") end
  return finite("add", r)
end)

define("sub", 2, 2, function(_, a, b)
  check_number("sub", 1, a); check_number("sub", 2, b)
  local r = a - b
  if mtype(r) == "integer" and ((a >= 0) ~= (b >= 0)) and ((r >= 0) ~= (a >= 0)) then int_overflow("sub") end
  return finite("sub", r)
end)

define("mul", 2, 2, function(_, a, b)
  check_number("mul", 1, a); check_number("mul", 2, b)
  local r = a * b
  if mtype(r) == "integer" and a ~= 0 and (r // a ~= b or (a == -1 and b == math.mininteger)) then
    int_overflow("mul")
  end
  return finite("mul", r)
end)

define("div", 2, 2, function(_, a, b)
  check_number("div", 1, a); check_number("div", 2, b)
  if b == 0 then raise("evaluation", "function 'div' cannot divide by zero") end
  if mtype(a) == "integer" and mtype(b) == "integer" then
    -- Integer division truncates toward zero, as in .NET.
    if a == math.mininteger and b == -1 then int_overflow("div") end
    local q = a // b
    if q < 0 and q * b ~= a then q = q + 1 end
    return q
  end
  return finite("div", a / b)
end)

define("mod", 2, 2, function(_, a, b)
  check_number("mod", 1, a); check_number("mod", 2, b)
  if b == 0 then raise("evaluation", "function 'mod' cannot divide by zero") end
  if mtype(a) == "integer" and mtype(b) == "integer" then
    if b == -1 then return 0 end
    return math.fmod(a, b)
  end
  return math.fmod(a + 0.0, b + 0.0)
end)

local function extreme(fname, pick, ...)
  local values = { ... }
  local n = select("#", ...)
  if n == 1 and is_array(values[1]) then
    values = values[1]
    n = #values
    if n == 0 then raise("argument", "function '" .. fname .. "' needs at least one number but got an empty array") end
  end
  local best
  for i = 1, n do
    local v = check_number(fname, i, values[i])
    if best == nil or pick(v, best) then best = v end
  end
  return best
end

define("max", 1, nil, function(_, ...) return extreme("max", function(x, y) return x > y end, ...) end)
define("min", 1, nil, function(_, ...) return extreme("min", function(x, y) return x < y end, ...) end)

define("rand", 2, 2, function(_, lo, hi)
  lo = check_integer("rand", 1, lo)
  hi = check_integer("rand", 2, hi)
  if lo > hi then raise("argument", format("function 'rand' expects min (%d) to be at most max (%d)", lo, hi)) end
  if lo == hi then return lo end
  return math.random(lo, hi - 1)
end)

define("range", 2, 2, function(_, start, count)
  start = check_integer("range", 1, start)
  count = check_integer("range", 2, count)
  if count < 0 then raise("argument", "function 'range' expects a count of 0 or more but got " .. count) end
  if count > 100000 then raise("argument", "function 'range' allows at most 100000 items but got " .. count) end
  if count > 0 and start > math.maxinteger - (count - 1) then int_overflow("range") end
  local t = array({})
  for i = 1, count do t[i] = start + i - 1 end
  return t
end)

-- ---------------------------------------------------------------- system accessors

local function lookup_in(source, name, what)
  if type(source) == "function" then
    local v = source(name)
    if v ~= nil then return v end
    -- A declared variable without a value reads as null; an activity must exist.
    if what == "variable" then return null end
    raise("evaluation", format("activity '%s' is not available here", name))
  end
  if type(source) == "table" then
    local v = V.property(source, name)
    if v == nil then raise("property", format("%s '%s' does not exist", what, name)) end
    return v
  end
  raise("evaluation", what .. "s are not available here")
end

define("pipeline", 0, 0, function(scope)
  local p = scope and scope.pipeline
  if p == nil then raise("evaluation", "pipeline() is not available here") end
  return p
end, { secrets = "pass", system = true })

define("activity", 1, 1, function(scope, name)
  name = check_string("activity", 1, name)
  return lookup_in(scope and scope.activity, name, "activity")
end, { secrets = "pass", system = true })

define("variables", 1, 1, function(scope, name)
  name = check_string("variables", 1, name)
  return lookup_in(scope and scope.variables, name, "variable")
end, { secrets = "pass", system = true })

local function scope_value(scope, field, fname)
  local v = scope and scope[field]
  if type(v) == "function" then v = v() end
  if v == nil then raise("evaluation", "the template function '" .. fname .. "' is not expected at this location") end
  return v
end

define("item", 0, 0, function(scope) return scope_value(scope, "item", "item") end,
  { secrets = "pass", system = true })
define("trigger", 0, 0, function(scope) return scope_value(scope, "trigger", "trigger") end,
  { secrets = "pass", system = true })
define("triggerBody", 0, 0, function(scope) return scope_value(scope, "triggerBody", "triggerBody") end,
  { secrets = "pass", system = true })
define("dataset", 0, 0, function(scope) return scope_value(scope, "dataset", "dataset") end,
  { secrets = "pass", system = true })
define("linkedService", 0, 0, function(scope) return scope_value(scope, "linkedService", "linkedService") end,
  { secrets = "pass", system = true })

return M
