--- Value model shared by the expression evaluator and its function library.
-- Values are lufa.json values (json.null, booleans, integers, floats, strings,
-- marked arrays and objects) plus lufa.secret strings.
-- @module lufa.expression.values

local json = require "lufa.json"
local secret = require "lufa.secret"
local codec = require "lufa.expression.codec"

local M = {}

-- The Lua type of a secret ("userdata" from the host); checked before secret.is on hot paths.
local SECRET_TYPE = type(secret.new(""))
M.SECRET_TYPE = SECRET_TYPE

local null = json.null
local json_type = json.type
local is_secret = secret.is
local mtype = math.type
local format, find, lower = string.format, string.find, string.lower

M.null = null

--- Raise an evaluation failure; the evaluator adds the expression and column.
-- @param code stable error code ("type", "evaluation", "argument", "property", "index")
-- @param message human text saying what was expected
function M.raise(code, message)
  error({ expression_failure = true, code = code, message = message }, 0)
end
local raise = M.raise

--- The longest string an expression may build (concat, replace, interpolation, encodings): a loop that
-- doubles a variable would otherwise exhaust memory before any message could be given.
M.MAX_STRING = 64 * 1024 * 1024

--- Raises unless a string of `n` bytes, built by `what`, is within M.MAX_STRING.
function M.check_size(what, n)
  if n > M.MAX_STRING then
    raise("argument", format("%s would build a string of %.1f MB; expression strings may be at most %d MB",
      what, n / 1048576, M.MAX_STRING // 1048576))
  end
end

--- The ADF name of a value's type, as used in error messages.
function M.kind(v)
  local t = type(v)
  if t == "string" then return "string" end
  if t == "number" then return mtype(v) == "integer" and "integer" or "float" end
  if t == "boolean" then return "boolean" end
  if v == null or v == nil then return "null" end
  if t == SECRET_TYPE and is_secret(v) then return "secret" end
  local jt = json_type(v)
  if jt == "array" then return "array" end
  if jt == "object" then return "object" end
  return t
end
local kind = M.kind

local article = { integer = "an integer", array = "an array", object = "an object", null = "null",
  secret = "a SecureString", float = "a float", string = "a string", boolean = "a boolean" }

--- "an integer", "a string", … for messages.
function M.a(v)
  local k = kind(v)
  return article[k] or ("a " .. k)
end

--- Format a float the way .NET prints a double: shortest text that reads back
-- the same, switching to E notation below 1e-5 and from 1e15.
function M.format_float(x)
  if x ~= x then return "NaN" end
  if x == math.huge then return "Infinity" end
  if x == -math.huge then return "-Infinity" end
  if x == 0 then return (1 / x < 0) and "-0" or "0" end
  local digits
  for precision = 1, 17 do
    digits = format("%." .. precision .. "e", x)
    if tonumber(digits) == x then break end
  end
  -- digits looks like -d.ddde+XX
  local sign, int, frac, exp = digits:match("^(-?)(%d)%.?(%d*)e([-+]%d+)$")
  frac = frac:gsub("0+$", "")
  local e = tonumber(exp)
  local mantissa = int .. frac
  if e >= 15 or e < -4 then
    local m = int .. (frac ~= "" and ("." .. frac) or "")
    return format("%s%sE%s%02d", sign, m, e < 0 and "-" or "+", math.abs(e))
  end
  if e < 0 then
    return sign .. "0." .. string.rep("0", -e - 1) .. mantissa
  end
  if #mantissa <= e + 1 then
    return sign .. mantissa .. string.rep("0", e + 1 - #mantissa)
  end
  return sign .. mantissa:sub(1, e + 1) .. "." .. mantissa:sub(e + 2)
end
local format_float = M.format_float

M.XML_CONTENT_TYPE = "application/xml;charset=utf-8"
M.BINARY_CONTENT_TYPE = "application/octet-stream"

--- The content type of a content value, or nil: ADF carries XML and binary data as an object with
-- exactly `$content-type` and `$content` (the bytes in base64; a lufa.secret when derived from one).
function M.content_type(v)
  if type(v) ~= "table" or v == null or json_type(v) ~= "object" then return nil end
  local ct, content = v["$content-type"], v["$content"]
  if type(ct) ~= "string" then return nil end
  if type(content) ~= "string" and not (type(content) == SECRET_TYPE and is_secret(content)) then return nil end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n ~= 2 then return nil end
  return ct
end

--- True when `v` is a content value holding a secret.
function M.content_is_secret(v)
  return M.content_type(v) ~= nil and type(v["$content"]) == SECRET_TYPE
end

--- The bytes of a content value (a secret's exposed: callers re-wrap what they derive).
function M.content_bytes(v)
  local content = v["$content"]
  if type(content) ~= "string" then content = secret.expose(content) end
  return (codec.base64_decode(content)) or ""
end

--- A content value holding `bytes` (default type: binary).
function M.new_content(bytes, content_type)
  return json.object({ ["$content-type"] = content_type or M.BINARY_CONTENT_TYPE,
    ["$content"] = codec.base64_encode(bytes) })
end

--- True when `v` is an XML value (a content value of type application/xml…).
function M.is_xml(v)
  local ct = M.content_type(v)
  return ct ~= nil and lower(ct):sub(1, 15) == "application/xml"
end

--- An XML value holding `text`.
function M.new_xml(text)
  return M.new_content(text, M.XML_CONTENT_TYPE)
end

--- The XML text of an XML value.
function M.xml_text(v)
  return M.content_bytes(v)
end

--- Text form of a value (interpolation, concat, string(), join).
-- Secrets must be exposed by the caller first; this never reveals one.
-- A content value (XML, binary) reads as its bytes, as in ADF; one holding a secret reads as the
-- secret's marker (callers that build text from secrets expose them first, see `text_piece`).
function M.to_text(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    if mtype(v) == "integer" then return format("%d", v) end
    return format_float(v)
  end
  if t == "boolean" then return v and "True" or "False" end
  if v == null or v == nil then return "" end
  if is_secret(v) then return tostring(v) end
  if M.content_type(v) then
    if M.content_is_secret(v) then return tostring(v["$content"]) end
    return M.content_bytes(v)
  end
  return json.encode(v)
end

--- Text of one part of a concatenation, and whether it came from a secret (exposed here; the
-- caller wraps the whole text back into a secret).
function M.text_piece(v)
  if type(v) == SECRET_TYPE and is_secret(v) then return secret.expose(v), true end
  if M.content_is_secret(v) then return M.content_bytes(v), true end
  return M.to_text(v), false
end

--- True when `v` is an array (marked, or a plain 1..n table).
function M.is_array(v)
  return type(v) == "table" and v ~= null and json_type(v) == "array"
end

--- True when `v` is an object.
function M.is_object(v)
  return type(v) == "table" and v ~= null and json_type(v) == "object"
end

function M.new_array(t) return json.array(t or {}) end
function M.new_object(t) return json.object(t or {}) end

--- Deep equality with ADF's loosening: 1 == 1.0, true == 1, false == 0.
function M.equals(a, b)
  if a == b then return true end
  local ta, tb = type(a), type(b)
  if ta == SECRET_TYPE and is_secret(a) then a = secret.expose(a); ta = "string" end
  if tb == SECRET_TYPE and is_secret(b) then b = secret.expose(b); tb = "string" end
  if ta == "string" or tb == "string" then return a == b end
  if ta == "boolean" and tb == "number" then return (a and 1 or 0) == b end
  if ta == "number" and tb == "boolean" then return a == (b and 1 or 0) end
  if ta ~= "table" or tb ~= "table" or a == null or b == null then return false end
  local ka, kb = json_type(a), json_type(b)
  if ka ~= kb then
    -- An empty unmarked table reads as an object; let it match an empty array.
    if next(a) == nil and next(b) == nil then return true end
    return false
  end
  if ka == "array" then
    if #a ~= #b then return false end
    for i = 1, #a do
      if not M.equals(a[i], b[i]) then return false end
    end
    return true
  end
  for k, v in pairs(a) do
    local w = b[k]
    if w == nil or not M.equals(v, w) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

--- Look up a property: exact name first, then ignoring letter case.
-- @return the value, or nil when absent
function M.property(obj, name)
  local v = obj[name]
  if v ~= nil then return v end
  if type(name) ~= "string" then return nil end
  local lname = lower(name)
  for k, w in pairs(obj) do
    if type(k) == "string" and lower(k) == lname then return w end
  end
  return nil
end

--- Names of an object's properties, sorted, for "available properties are" messages.
function M.property_names(obj)
  local names = {}
  for k in pairs(obj) do
    if type(k) == "string" then names[#names + 1] = k end
  end
  table.sort(names)
  return table.concat(names, ", ")
end

--- Require a string argument (secrets are exposed by the caller).
function M.check_string(fname, position, v)
  if type(v) ~= "string" then
    raise("type", format("function '%s' expects a string as argument %d but got %s", fname, position, M.a(v)))
  end
  return v
end

--- Require an integer argument (an integral float is accepted).
function M.check_integer(fname, position, v)
  if mtype(v) == "integer" then return v end
  if mtype(v) == "float" and v == math.floor(v) and math.tointeger(v) then return math.tointeger(v) end
  raise("type", format("function '%s' expects an integer as argument %d but got %s", fname, position, M.a(v)))
end

--- Require a number argument.
function M.check_number(fname, position, v)
  if type(v) ~= "number" then
    raise("type", format("function '%s' expects a number as argument %d but got %s", fname, position, M.a(v)))
  end
  return v
end

--- Require a boolean argument.
function M.check_boolean(fname, position, v)
  if type(v) ~= "boolean" then
    raise("type", format("function '%s' expects a boolean as argument %d but got %s", fname, position, M.a(v)))
  end
  return v
end

--- Characters of a UTF-8 string (code points), as a list of strings.
-- ADF counts characters, not bytes; plain ASCII takes the fast path in callers.
function M.chars(s)
  local list = {}
  if not find(s, "[\128-\255]") then
    for i = 1, #s do list[i] = s:sub(i, i) end
    return list
  end
  for _, c in utf8.codes(s, true) do list[#list + 1] = utf8.char(c) end
  return list
end

--- Number of characters in a string.
function M.char_length(s)
  if not find(s, "[\128-\255]") then return #s end
  return utf8.len(s, 1, -1, true) or #s
end

return M
