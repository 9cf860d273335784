--- ADF expression language: compile once, evaluate many times.
--
-- A JSON string value from a pipeline is one of: a plain constant, an `@`
-- expression (whose value keeps its JSON type), or a template with `@{…}`
-- interpolations (whose value is always a string). See docs/expressions.md.
-- @module lufa.expression

local json = require "lufa.json"
local secret = require "lufa.secret"
local E = require "lufa.error"
local V = require "lufa.expression.values"
local parser = require "lufa.expression.parser"
local suggest = require "lufa.suggest"
local functions = require "lufa.expression.functions"
require "lufa.expression.datetime"
require "lufa.expression.xml"

local M = {}

local null = json.null
local is_secret, expose = secret.is, secret.expose
local json_type = json.type
local format = string.format
local to_text = V.to_text
local SECRET_TYPE = V.SECRET_TYPE

local MAX_SHOWN = 200

local function shown(text)
  if #text > MAX_SHOWN then return text:sub(1, MAX_SHOWN) .. "…" end
  return text
end

local function syntax_error(text, column, message)
  return E.new {
    kind = "expression", code = "syntax", column = column, expression = text,
    message = format("syntax error in expression '%s' at column %d: %s", shown(text), column, message),
  }
end

-- ---------------------------------------------------------------- compile-time checks

local function check_calls(node, text)
  if node.t == "call" then
    local spec = functions.lookup(node.name)
    if not spec then
      local names = {}
      for _, f in pairs(functions.registry) do names[#names + 1] = f.name end
      table.sort(names)
      return node.col, format("unknown function '%s'%s", node.display, suggest.hint(node.display, names))
    end
    local n = #node.args
    if n < spec.min or (spec.max and n > spec.max) then
      local expected
      if spec.max == spec.min then
        expected = format("%d argument%s", spec.min, spec.min == 1 and "" or "s")
      elseif spec.max == nil then
        expected = format("at least %d argument%s", spec.min, spec.min == 1 and "" or "s")
      else
        expected = format("%d to %d arguments", spec.min, spec.max)
      end
      return node.col, format("function '%s' takes %s but was given %d", spec.name, expected, n)
    end
    for _, arg in ipairs(node.args) do
      local col, msg = check_calls(arg, text)
      if col then return col, msg end
    end
  elseif node.t == "get" then
    local col, msg = check_calls(node.obj, text)
    if col then return col, msg end
    return check_calls(node.key, text)
  end
end

-- ---------------------------------------------------------------- evaluation

-- Wrap strings of a result computed from exposed secrets back into secrets (of a content value,
-- only its content: its type stays readable).
local function taint(v)
  if type(v) == "string" then return secret.new(v) end
  if V.content_type(v) then
    local copy = setmetatable({}, getmetatable(v))
    copy["$content-type"], copy["$content"] = v["$content-type"], taint(v["$content"])
    return copy
  end
  if type(v) == "table" and v ~= null then
    local copy = setmetatable({}, getmetatable(v))
    for k, x in pairs(v) do copy[k] = taint(x) end
    return copy
  end
  return v
end

-- A secret, or a content value (XML, binary) made from one.
local function holds_secret(a)
  return (type(a) == SECRET_TYPE and is_secret(a)) or V.content_is_secret(a)
end

local function call_with_secrets(spec, scope, args, n)
  local plain = {}
  for i = 1, n do
    local a = args[i]
    if type(a) == SECRET_TYPE and is_secret(a) then plain[i] = expose(a)
    elseif V.content_is_secret(a) then plain[i] = V.new_content(V.content_bytes(a), a["$content-type"])
    else plain[i] = a end
  end
  local ok, result = pcall(spec.fn, scope, table.unpack(plain, 1, n))
  if not ok then
    -- The message could quote the secret's bytes; keep only the code.
    local code = type(result) == "table" and result.code or "evaluation"
    V.raise(code, format("function '%s' failed on a SecureString argument", spec.name))
  end
  return taint(result)
end

local function has_secret(args, n)
  for i = 1, n do
    if holds_secret(args[i]) then return true end
  end
  return false
end

local compile_node

local function compile_call(node, env)
  local spec = functions.lookup(node.name)
  local fn = spec.fn
  local col = node.col
  local argc = #node.args
  local argfns = {}
  for i, arg in ipairs(node.args) do argfns[i] = compile_node(arg, env) end

  if spec.lazy then
    return function(scope)
      local thunks = {}
      for i = 1, argc do
        local f = argfns[i]
        thunks[i] = function()
          local v = f(scope)
          env.col = col
          return v
        end
      end
      env.col = col
      return fn(scope, table.unpack(thunks, 1, argc))
    end
  end

  local pass = spec.secrets == "pass"
  if argc == 0 then
    return function(scope)
      env.col = col
      return fn(scope)
    end
  elseif argc == 1 then
    local f1 = argfns[1]
    return function(scope)
      local a = f1(scope)
      env.col = col
      if not pass and holds_secret(a) then return call_with_secrets(spec, scope, { a }, 1) end
      return fn(scope, a)
    end
  elseif argc == 2 then
    local f1, f2 = argfns[1], argfns[2]
    return function(scope)
      local a, b = f1(scope), f2(scope)
      env.col = col
      if not pass and (holds_secret(a) or holds_secret(b)) then
        return call_with_secrets(spec, scope, { a, b }, 2)
      end
      return fn(scope, a, b)
    end
  end
  return function(scope)
    local args = {}
    for i = 1, argc do args[i] = argfns[i](scope) end
    env.col = col
    if not pass and has_secret(args, argc) then return call_with_secrets(spec, scope, args, argc) end
    return fn(scope, table.unpack(args, 1, argc))
  end
end

local function describe_key(key)
  if type(key) == "string" then return "property '" .. key .. "'" end
  return "index " .. to_text(key)
end

local function compile_get(node, env)
  -- Once a '?' appears in a chain, a null or a missing member further along yields null.
  local obj = compile_node(node.obj, env)
  local tolerant = node.safe or (node.obj.t == "get" and node.obj.tolerant) or false
  node.tolerant = tolerant
  local col = node.col
  local key_constant = node.key.t == "lit"
  local key_value = node.key.value
  local keyfn = not key_constant and compile_node(node.key, env) or nil

  return function(scope)
    local o = obj(scope)
    local key = key_value
    if not key_constant then key = keyfn(scope) end
    env.col = col
    local t = type(o)
    if t == "table" and o ~= null then
      if type(key) == "number" then
        local jt = json_type(o)
        if jt == "array" or (jt == "object" and next(o) == nil) then
          local i = math.tointeger(key)
          local v = nil
          if i and i >= 0 then v = o[i + 1] end
          if v ~= nil then return v end
          if tolerant then return null end
          V.raise("index", format("index %s is outside the array of length %d", to_text(key), #o))
        end
        key = to_text(key)
      elseif type(key) ~= "string" then
        if type(key) == SECRET_TYPE and is_secret(key) then key = expose(key)
        else V.raise("type", "a property name or index must be a string or an integer but got " .. V.a(key)) end
      end
      if json_type(o) == "array" then
        if tolerant then return null end
        V.raise("type", format("cannot select property '%s' of an array (use an integer index)", key))
      end
      local v = V.property(o, key)
      if v ~= nil then return v end
      if tolerant then return null end
      V.raise("property", format("property '%s' doesn't exist, available properties are '%s'",
        key, V.property_names(o)))
    end
    if tolerant and (o == null or o == nil) then return null end
    if o == null or o == nil then
      V.raise("property", format("cannot select %s of null (use '?.' to allow null)", describe_key(key)))
    end
    V.raise("type", format("cannot select %s of %s", describe_key(key), V.a(o)))
  end
end

function compile_node(node, env)
  if node.t == "lit" then
    local v = node.value
    return function() return v end
  elseif node.t == "call" then
    return compile_call(node, env)
  end
  return compile_get(node, env)
end

local function render_parts(fns, n, scope)
  local any_secret = false
  local pieces, size = {}, 0
  for i = 1, n do
    local f = fns[i]
    local v
    if type(f) == "string" then v = f else v = f(scope) end
    local text, from_secret = V.text_piece(v)
    pieces[i] = text
    size = size + #text
    if from_secret then any_secret = true end
  end
  V.check_size("string interpolation", size)
  local text = table.concat(pieces, "", 1, n)
  if any_secret then return secret.new(text) end
  return text
end

-- ---------------------------------------------------------------- compiled objects

local Compiled = {}
Compiled.__index = Compiled
Compiled.__name = "lufa.expression.compiled"

local function evaluation_error(self, failure)
  if E.is(failure) then
    -- Expression errors raised by the scope (e.g. an activity that has not run)
    -- gain the expression and column; other kinds pass through untouched.
    if failure.kind == "expression" and failure.expression == nil then
      local column = self.env.col or 1
      failure.expression, failure.column = self.text, column
      failure.message = format("expression '%s' cannot be evaluated at column %d: %s", shown(self.text), column,
        tostring(failure.message))
    end
    return failure
  end
  local code, message = "evaluation", nil
  if type(failure) == "table" and failure.expression_failure then
    code, message = failure.code, failure.message
  else
    message = tostring(failure)
  end
  local column = self.env.col or 1
  return E.new {
    kind = "expression", code = code, column = column, expression = self.text,
    message = format("expression '%s' cannot be evaluated at column %d: %s", shown(self.text), column, message),
  }
end

--- Evaluate a compiled expression.
-- @param scope the evaluation scope (see docs/expressions.md)
-- @return the value; raises a lufa.error (kind "expression") on failure
function Compiled:eval(scope)
  if self.kind == "constant" then return self.value end
  local ok, v = pcall(self.run, scope)
  if ok then
    if v == nil then return null end
    return v
  end
  error(evaluation_error(self, v), 0)
end

--- Evaluate without raising: the value, or nil and the same lufa.error `eval` would raise
-- (the return convention of `compile`, for callers that branch rather than unwind).
-- @param scope the evaluation scope
-- @return value, or nil and a lufa.error (kind "expression")
function Compiled:try_eval(scope)
  local ok, v = pcall(self.eval, self, scope)
  if ok then return v end
  return nil, v
end

--- The activity and variable names this expression refers to by literal name.
function Compiled:references()
  return self.refs
end

local function collect_refs(node, refs)
  if node.t == "call" then
    local first = node.args[1]
    if first and first.t == "lit" and type(first.value) == "string" then
      if node.name == "activity" then
        refs[#refs + 1] = { kind = "activity", name = first.value, column = first.col }
      elseif node.name == "variables" then
        refs[#refs + 1] = { kind = "variable", name = first.value, column = first.col }
      end
    end
    for _, arg in ipairs(node.args) do collect_refs(arg, refs) end
  elseif node.t == "get" then
    -- pipeline().parameters.x / pipeline().parameters['x'] with a literal name.
    local obj, key = node.obj, node.key
    if key.t == "lit" and type(key.value) == "string" and obj.t == "get" and obj.key.t == "lit" and
        type(obj.key.value) == "string" and obj.key.value:lower() == "parameters" and
        obj.obj.t == "call" and obj.obj.name == "pipeline" then
      refs[#refs + 1] = { kind = "parameter", name = key.value, column = key.col or node.col }
    end
    collect_refs(node.obj, refs)
    collect_refs(node.key, refs)
  end
end

--- Compile a JSON string value.
-- @param text the string (plain text, `@expression`, or a template with `@{…}`)
-- @return a compiled object with `:eval(scope)`, or nil and a lufa.error
--   (kind "expression", code "syntax", fields `column`, `expression`)
function M.compile(text)
  if type(text) ~= "string" then
    error("lufa.expression.compile expects a string but got " .. type(text), 2)
  end
  local parsed, perr = parser.parse(text)
  if not parsed then return nil, syntax_error(text, perr.column, perr.message) end
  local self = setmetatable({ text = text, kind = parsed.kind, refs = {}, env = {} }, Compiled)
  if parsed.kind == "constant" then
    self.value = parsed.value
    return self
  end
  local nodes = parsed.kind == "expression" and { parsed.node } or parsed.parts
  for _, node in ipairs(nodes) do
    if type(node) == "table" then
      local col, msg = check_calls(node, text)
      if col then return nil, syntax_error(text, col, msg) end
      collect_refs(node, self.refs)
    end
  end
  local env = self.env
  if parsed.kind == "expression" then
    self.run = compile_node(parsed.node, env)
  else
    local fns = {}
    for i, part in ipairs(parsed.parts) do
      fns[i] = type(part) == "string" and part or compile_node(part, env)
    end
    local n = #fns
    self.run = function(scope) return render_parts(fns, n, scope) end
  end
  return self
end

-- ---------------------------------------------------------------- values

local cache = {}
local cache_size = 0
local CACHE_LIMIT = 20000

--- Compile with a cache (shared by evaluate); raises the syntax error.
function M.compile_cached(text)
  local c = cache[text]
  if c then return c end
  local err
  c, err = M.compile(text)
  if not c then error(err, 0) end
  if cache_size >= CACHE_LIMIT then cache, cache_size = {}, 0 end
  cache[text] = c
  cache_size = cache_size + 1
  return c
end

local function expression_object(t)
  -- ADF's dynamic-content form: {"value": "@…", "type": "Expression"}.
  if getmetatable(t) == json.array_mt then return nil end
  local typ, value, count = nil, nil, 0
  for k, v in pairs(t) do
    count = count + 1
    if type(k) ~= "string" then return nil end
    local lk = k:lower()
    if lk == "type" then typ = v
    elseif lk == "value" or lk == "content" then value = v
    else return nil end
  end
  if count == 2 and type(typ) == "string" and typ:lower() == "expression" and value ~= nil then
    return value
  end
  return nil
end
M.expression_object = expression_object

local function evaluate(value, scope)
  local t = type(value)
  if t == "string" then
    if not value:find("@", 1, true) then return value end
    return M.compile_cached(value):eval(scope)
  end
  if t ~= "table" or value == null then return value end
  local inner = expression_object(value)
  if inner ~= nil then
    if type(inner) == "string" then return M.compile_cached(inner):eval(scope) end
    return evaluate(inner, scope)
  end
  local copy = setmetatable({}, getmetatable(value))
  for k, v in pairs(value) do copy[k] = evaluate(v, scope) end
  return copy
end

--- Deep-evaluate a JSON value: every string is compiled (cached) and evaluated;
-- arrays and objects are copied with their json marking; other values are unchanged.
-- Accepts the `{value = "@…", type = "Expression"}` form.
-- @param value any JSON value
-- @param scope the evaluation scope
-- @return the evaluated copy; raises a lufa.error on a syntax or evaluation error
function M.evaluate(value, scope)
  return evaluate(value, scope)
end

local function child_path(path, key)
  if type(key) == "number" then return format("%s[%d]", path, key - 1) end
  if type(key) == "string" and key:find("^[%a_][%w_]*$") then return path .. "." .. key end
  return format("%s['%s']", path, tostring(key):gsub("'", "\\'"))
end

local function ordered_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  return keys
end

local function walk_strings(value, path, visit)
  local t = type(value)
  if t == "string" then
    if value:find("@", 1, true) then visit(value, path) end
  elseif t == "table" and value ~= null then
    local keys = ordered_keys(value)
    local is_arr = json_type(value) == "array"
    for _, k in ipairs(keys) do
      walk_strings(value[k], child_path(path, is_arr and k or tostring(k)), visit)
    end
  end
end

--- Find every expression problem in a JSON value.
-- @param value any JSON value (strings anywhere inside are checked)
-- @param path the JSON path of `value` (default "$")
-- @return a list of `{path =, column =, message =, expression =}` (empty when all is well)
function M.check(value, path)
  local problems = {}
  walk_strings(value, path or "$", function(text, p)
    local _, err = M.compile(text)
    if err then
      problems[#problems + 1] = { path = p, column = err.column, message = err.message, expression = text }
    end
  end)
  return problems
end

--- Names referenced by `activity('…')`, `variables('…')` and `pipeline().parameters.…` with
-- literal names.
-- @param value any JSON value
-- @param path the JSON path of `value` (default "$")
-- @return `{activities = {names…}, variables = {names…}, parameters = {names…},
--   sites = {{kind = "activity"|"variable"|"parameter", name =, path =, column =}…}}`;
--   names appear once each, in order of first use; strings that do not compile are skipped
function M.references(value, path)
  local result = { activities = {}, variables = {}, parameters = {}, sites = {} }
  local seen = { activity = {}, variable = {}, parameter = {} }
  local lists = { activity = result.activities, variable = result.variables, parameter = result.parameters }
  walk_strings(value, path or "$", function(text, p)
    local c = M.compile(text)
    if not c then return end
    for _, r in ipairs(c.refs) do
      result.sites[#result.sites + 1] = { kind = r.kind, name = r.name, path = p, column = r.column }
      if not seen[r.kind][r.name] then
        seen[r.kind][r.name] = true
        local list = lists[r.kind]
        list[#list + 1] = r.name
      end
    end
  end)
  return result
end

--- True when a string is an expression or a template (not a plain constant).
function M.is_dynamic(text)
  if type(text) ~= "string" or not text:find("@", 1, true) then return false end
  local c = M.compile(text)
  return c == nil or c.kind ~= "constant"
end

--- Add or replace a function (names match ignoring case).
-- @param name the function's name
-- @param min fewest arguments
-- @param max most arguments (nil for no limit)
-- @param fn `function(scope, ...)` returning a JSON value; raise with `lufa.error` or `error(msg)`
function M.define(name, min, max, fn)
  cache, cache_size = {}, 0
  return functions.define(name, min, max, fn)
end

--- Names of all functions, sorted.
function M.function_names()
  local names = {}
  for _, spec in pairs(functions.registry) do names[#names + 1] = spec.name end
  table.sort(names, function(a, b) return a:lower() < b:lower() end)
  return names
end

return M
