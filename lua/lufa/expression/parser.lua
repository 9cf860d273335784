--- Parser for ADF expression strings.
-- Turns a JSON string value into a description of what it is: a constant, a
-- single `@` expression, or a template with `@{…}` interpolations. Columns in
-- errors and nodes are 1-based positions in the original string.
-- @module lufa.expression.parser

local json = require "lufa.json"

local M = {}

local find, sub, byte, lower = string.find, string.sub, string.byte, string.lower

local QUOTE, LPAREN, RPAREN, COMMA, DOT, LBRACKET, RBRACKET, QUESTION, RBRACE =
  byte"'", byte"(", byte")", byte",", byte".", byte"[", byte"]", byte"?", byte"}"

local keywords = { ["true"] = true, ["false"] = false }

--- How deep calls, indexes and property accesses may nest. Hostile or broken text must get a syntax
-- error, not exhaust the stack of the parser or of the evaluator (which recurses as deep as the tree).
M.MAX_DEPTH = 100

local depth = 0  -- how many parse_expression calls are open (reset by M.parse)

-- A parse failure travels as a table so that pcall can tell it apart from bugs.
local function fail(column, message)
  error({ parse_error = true, column = column, message = message }, 0)
end

local function skip_space(text, pos)
  local _, e = find(text, "^%s*", pos)
  return e + 1
end

local function describe_char(text, pos)
  if pos > #text then return "the end of the text" end
  return "'" .. sub(text, pos, pos) .. "'"
end

local parse_expression

local function parse_string(text, pos)
  -- pos is at the opening quote; '' inside the literal is one quote.
  local start = pos
  local pieces = {}
  pos = pos + 1
  while true do
    local q = find(text, "'", pos, true)
    if not q then fail(start, "unterminated string literal (a literal starts with ' and ends with ')") end
    pieces[#pieces + 1] = sub(text, pos, q - 1)
    if byte(text, q + 1) == QUOTE then
      pieces[#pieces + 1] = "'"
      pos = q + 2
    else
      return { t = "lit", value = table.concat(pieces), col = start }, q + 1
    end
  end
end

local function parse_number(text, pos)
  -- A float may start with its point (`.3`, `-.5`), as in ADF's reference (`sub(10.3, .3)`).
  local s, e = find(text, "^[-+]?%d+", pos)
  if not s then s, e = find(text, "^[-+]?", pos) end
  local is_float = false
  local s2, e2 = find(text, "^%.%d+", e + 1)
  if s2 then e = e2; is_float = true end
  s2, e2 = find(text, "^[eE][-+]?%d+", e + 1)
  if s2 then e = e2; is_float = true end
  local literal = sub(text, pos, e)
  local value
  if is_float then
    value = tonumber(literal) + 0.0
  else
    -- Integers beyond 64 bits become floats rather than wrapping.
    value = math.tointeger(tonumber(literal)) or tonumber(literal) + 0.0
  end
  if find(text, "^[%a_]", e + 1) then
    fail(e + 1, "unexpected " .. describe_char(text, e + 1) .. " after the number " .. literal)
  end
  if value == math.huge or value == -math.huge then
    fail(pos, "the number " .. literal .. " is beyond the range of a double")
  end
  return { t = "lit", value = value, col = pos }, e + 1
end

local function parse_arguments(text, pos, call)
  -- pos is just after '('.
  local args = call.args
  pos = skip_space(text, pos)
  if byte(text, pos) == RPAREN then return pos + 1 end
  while true do
    local node
    node, pos = parse_expression(text, pos)
    args[#args + 1] = node
    pos = skip_space(text, pos)
    local c = byte(text, pos)
    if c == RPAREN then return pos + 1 end
    if c ~= COMMA then
      fail(pos, "expected ',' or ')' in the arguments of '" .. call.display .. "' but found " .. describe_char(text, pos))
    end
    pos = skip_space(text, pos + 1)
  end
end

local function parse_primary(text, pos, null_value)
  pos = skip_space(text, pos)
  local c = byte(text, pos)
  if c == nil then fail(pos, "expected an expression but found the end of the text") end
  if c == QUOTE then return parse_string(text, pos) end
  if find(text, "^[-+]?%.?%d", pos) then return parse_number(text, pos) end
  local s, e = find(text, "^[%a_][%w_]*", pos)
  if not s then fail(pos, "expected an expression but found " .. describe_char(text, pos)) end
  local name = sub(text, s, e)
  local after = skip_space(text, e + 1)
  if byte(text, after) == LPAREN then
    local call = { t = "call", name = lower(name), display = name, args = {}, col = s }
    return call, parse_arguments(text, after + 1, call)
  end
  local lname = lower(name)
  if keywords[lname] ~= nil then return { t = "lit", value = keywords[lname], col = s }, e + 1 end
  if lname == "null" then return { t = "lit", value = null_value, col = s }, e + 1 end
  fail(s, "unknown identifier '" .. name .. "' (expected a function call such as " .. name ..
    "(…), a quoted string, a number, true, false or null)")
end

local function too_deep(pos)
  fail(pos, "expression nested deeper than " .. M.MAX_DEPTH ..
    " levels (function calls, [ ] indexes and . properties, counted together)")
end

local function parse_accessors(text, pos, node)
  local chain = 0
  while true do
    local p = skip_space(text, pos)
    local c = byte(text, p)
    local safe = false
    local at = p
    if c == QUESTION then
      local n = byte(text, p + 1)
      if n ~= DOT and n ~= LBRACKET then
        fail(p, "expected '.' or '[' after '?' but found " .. describe_char(text, p + 1))
      end
      safe = true
      p = p + 1
      c = n
    end
    if (c == DOT or c == LBRACKET) then
      chain = chain + 1
      if depth + chain > M.MAX_DEPTH then too_deep(p) end
    end
    if c == DOT then
      local q = skip_space(text, p + 1)
      local s, e = find(text, "^[%a_][%w_]*", q)
      if not s then fail(q, "expected a property name after '.' but found " .. describe_char(text, q)) end
      node = { t = "get", obj = node, key = { t = "lit", value = sub(text, s, e), col = s }, safe = safe, col = s }
      pos = e + 1
    elseif c == LBRACKET then
      local key
      key, p = parse_expression(text, p + 1)
      p = skip_space(text, p)
      if byte(text, p) ~= RBRACKET then
        fail(p, "expected ']' to close the index opened at column " .. at .. " but found " .. describe_char(text, p))
      end
      node = { t = "get", obj = node, key = key, safe = safe, col = at, bracket = true }
      pos = p + 1
    else
      return node, pos
    end
  end
end

function parse_expression(text, pos)
  depth = depth + 1
  if depth > M.MAX_DEPTH then too_deep(skip_space(text, pos)) end
  local node
  node, pos = parse_primary(text, pos, json.null)
  node, pos = parse_accessors(text, pos, node)
  depth = depth - 1
  return node, pos
end

--- Parse one expression that must span `text` from `pos` to the end.
local function parse_whole(text, pos)
  local node, p = parse_expression(text, pos)
  p = skip_space(text, p)
  if p <= #text then
    fail(p, "unexpected " .. describe_char(text, p) .. " after the end of the expression")
  end
  return node
end

--- Parse a template: literal text with `@{expr}` parts.
local function parse_template(text)
  local parts = {}
  local literal = {}
  local pos = 1
  while true do
    local s = find(text, "@", pos, true)
    if not s then
      literal[#literal + 1] = sub(text, pos)
      break
    end
    if sub(text, s, s + 2) == "@@{" then
      -- '@@{' writes a literal '@{'.
      literal[#literal + 1] = sub(text, pos, s - 1) .. "@{"
      pos = s + 3
    elseif sub(text, s, s + 1) == "@{" then
      literal[#literal + 1] = sub(text, pos, s - 1)
      local chunk = table.concat(literal)
      if chunk ~= "" then parts[#parts + 1] = chunk end
      literal = {}
      local node, p = parse_expression(text, s + 2)
      p = skip_space(text, p)
      if byte(text, p) ~= RBRACE then
        fail(p, "expected '}' to close the interpolation opened at column " .. s .. " but found " ..
          describe_char(text, p))
      end
      parts[#parts + 1] = node
      pos = p + 1
    else
      literal[#literal + 1] = sub(text, pos, s)
      pos = s + 1
    end
  end
  local chunk = table.concat(literal)
  if chunk ~= "" then parts[#parts + 1] = chunk end
  return parts
end

--- Parse a JSON string value.
-- @param text the string as found in the pipeline JSON
-- @return a table `{kind = "constant", value = s}`, `{kind = "expression", node = ast}` or
--   `{kind = "template", parts = {string | ast, ...}}`; or nil and `{column =, message =}`
function M.parse(text)
  depth = 0
  local ok, result = pcall(function()
    if byte(text, 1) == 64 then -- '@'
      if byte(text, 2) == 64 then
        -- A leading '@@' stands for a literal '@'; the rest is plain text.
        return { kind = "constant", value = sub(text, 2) }
      end
      if byte(text, 2) ~= 123 then -- '{'
        return { kind = "expression", node = parse_whole(text, 2) }
      end
    end
    if not find(text, "@", 1, true) then return { kind = "constant", value = text } end
    local parts = parse_template(text)
    if #parts == 0 then return { kind = "constant", value = "" } end
    if #parts == 1 and type(parts[1]) == "string" then return { kind = "constant", value = parts[1] } end
    return { kind = "template", parts = parts }
  end)
  if ok then return result end
  if type(result) == "table" and result.parse_error then
    return nil, { column = result.column, message = result.message }
  end
  error(result, 0)
end

return M
