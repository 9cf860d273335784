--- lufa.inspect: values as readable text, for the prompt and for scripts.
-- Tables are shown nested and indented with their keys sorted (the array part first, in order), on one
-- line when they fit in `width`; deeper than `depth` a table is shown as `{…N}`; a table met again inside
-- itself as `<cycle>`. JSON values keep what lufa.json sees: `json.null`, and empty tables marked as
-- arrays or objects as `json.array{}` / `json.object{}`. Secrets are `<secret>`, and the whole text passes
-- lufa.redact, so no secret's bytes are printed even inside a string. Tasks show their status, HTTP
-- responses are summarised (status, size, time) with their body cut short.
-- @module lufa.repl.pretty
local json = require "lufa.json"
local redact = require "lufa.redact"
local secret = require "lufa.secret"

local M = {}

--- Defaults for `opts`: depth (levels of tables shown), width (of a one-line table), items (entries shown
-- per table), string (bytes shown of a string), indent.
M.defaults = { depth = 4, width = 96, items = 100, string = 2000, indent = "  " }

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or repeat return then
  true until while]]):gmatch("%a+") do KEYWORDS[w] = true end

local ESCAPES = { ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r", ['"'] = '\\"', ["\\"] = "\\\\" }

local function quote(s, limit)
  local more = #s - limit
  if more > 0 then s = s:sub(1, limit) end
  s = s:gsub('[%c"\\]', function(c) return ESCAPES[c] or string.format("\\%03d", c:byte()) end)
  if more > 0 then return string.format('"%s"…(%d more bytes)', s, more) end
  return '"' .. s .. '"'
end

local function is_identifier(k)
  return type(k) == "string" and k:find("^[%a_][%w_]*$") ~= nil and not KEYWORDS[k]
end

local TYPE_ORDER = { number = 1, string = 2, boolean = 3 }

local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return (TYPE_ORDER[ta] or 9) < (TYPE_ORDER[tb] or 9) end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function is_response(t)
  return math.type(rawget(t, "status")) == "integer" and type(rawget(t, "headers")) == "table"
    and (type(rawget(t, "body")) == "string" or rawget(t, "file") ~= nil) and type(rawget(t, "time")) == "number"
end

local function response_summary(t)
  local size = type(t.body) == "string" and #t.body or t.size or 0
  return string.format("<http response %d, %d bytes, %.0f ms> ", t.status, size, t.time * 1000)
end

local function scalar(v, opts)
  local tv = type(v)
  if tv == "string" then return quote(v, opts.string) end
  if v == json.null then return "json.null" end
  if tv == "function" then
    local info = debug.getinfo(v, "S")
    if info.what == "C" then return "<function builtin>" end
    return string.format("<function %s:%d>", info.short_src, info.linedefined)
  end
  if tv == "userdata" then
    if secret.is(v) then return "<secret>" end
    local mt = getmetatable(v)
    if type(mt) == "table" and mt.__name == "lufa.task" then
      return string.format("<task %s>", v:status())
    end
  end
  if tv == "number" and math.type(v) == "float" and v == math.floor(v) and v > -1e15 and v < 1e15 then
    return string.format("%.1f", v)
  end
  return tostring(v)
end

local render

-- `used`: the columns the line holds before this table (indentation and key), for the one-line test.
local function render_table(t, opts, level, ancestors, used)
  if ancestors[t] then return "<cycle>" end
  local mt = getmetatable(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  if n == 0 then
    if mt == json.array_mt then return "json.array{}" end
    if mt == json.object_mt or (type(mt) == "table" and getmetatable(mt) == json.object_mt) then return "json.object{}" end
    return "{}"
  end
  if level >= opts.depth then return string.format("{…%d}", n) end
  local prefix = is_response(t) and response_summary(t) or ""
  local body_limit = prefix ~= "" and math.min(opts.string, 160) or nil
  local seq = 0
  while rawget(t, seq + 1) ~= nil do seq = seq + 1 end
  local keys = {}
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= seq) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_less)
  ancestors[t] = true
  local parts, shown, multiline, total = {}, 0, false, 0
  local function add(text)
    shown = shown + 1
    parts[shown] = text
    total = total + #text + 2
    if text:find("\n", 1, true) then multiline = true end
  end
  for i = 1, seq do
    if shown >= opts.items then break end
    add(render(rawget(t, i), opts, level + 1, ancestors, #opts.indent * (level + 1)))
  end
  for _, k in ipairs(keys) do
    if shown >= opts.items then break end
    local v = rawget(t, k)
    local key = is_identifier(k) and k or "[" .. render(k, opts, opts.depth, ancestors) .. "]"
    local text
    if body_limit and k == "body" and type(v) == "string" then text = quote(v, body_limit)
    else text = render(v, opts, level + 1, ancestors, #opts.indent * (level + 1) + #key + 3) end
    add(key .. " = " .. text)
  end
  ancestors[t] = nil
  if n > shown then add(string.format("…(%d more)", n - shown)) end
  if not multiline and used + #prefix + total <= opts.width then
    return prefix .. "{" .. table.concat(parts, ", ") .. "}"
  end
  -- children are laid out from column 0; each level indents what it holds
  local pad = opts.indent
  for i, p in ipairs(parts) do parts[i] = pad .. p:gsub("\n", "\n" .. pad) end
  return prefix .. "{\n" .. table.concat(parts, ",\n") .. "\n}"
end

function render(v, opts, level, ancestors, used)
  if type(v) == "table" and v ~= json.null then return render_table(v, opts, level, ancestors, used or 0) end
  return scalar(v, opts)
end

local function options(opts)
  if opts == nil then return M.defaults end
  if type(opts) ~= "table" then error("bad argument #2 to 'inspect' (table of options expected)", 3) end
  local o = {}
  for k, d in pairs(M.defaults) do
    local v = opts[k]
    if v == nil then v = d end
    if type(v) ~= type(d) then
      error(string.format("bad option '%s' to 'inspect' (%s expected, got %s)", k, type(d), type(v)), 3)
    end
    o[k] = v
  end
  return o
end

--- The text of v.
-- @param v any value
-- @tparam[opt] table opts depth, width, items, string, indent (see `defaults`)
-- @treturn string
function M.inspect(v, opts)
  local o = options(opts)
  return (redact.text(render(v, o, 0, {})))
end

return M
