--- XML support for the expression language: xml(), xpath() and json() of XML text.
-- A small non-validating parser (elements, attributes, text, CDATA, comments,
-- processing instructions, the five predefined entities and character references)
-- and an XPath 1.0 subset (see docs/expressions.md).
-- @module lufa.expression.xml

local json = require "lufa.json"
local V = require "lufa.expression.values"
local F = require "lufa.expression.functions"

local raise = V.raise
local format, find, sub, lower = string.format, string.find, string.sub, string.lower

local M = {}

-- ---------------------------------------------------------------- parsing

local entities = { lt = "<", gt = ">", amp = "&", quot = '"', apos = "'" }

--- How deep elements may nest (as in lufa.core.xml): serialising and json() recurse once per level.
M.MAX_DEPTH = 256

local function unescape(text)
  return (text:gsub("&(#?x?)(%w+);", function(kind, body)
    if kind == "" then
      local e = entities[body]
      if not e then raise("argument", "unknown XML entity '&" .. body .. ";'") end
      return e
    end
    local code = kind == "#x" and tonumber(body, 16) or (kind == "#" and tonumber(body))
    -- only the characters XML allows (no NUL, no surrogate halves, nothing past U+10FFFF)
    if not (code and (code == 9 or code == 10 or code == 13 or (code >= 0x20 and code <= 0xD7FF) or
        (code >= 0xE000 and code <= 0xFFFD) or (code >= 0x10000 and code <= 0x10FFFF))) then
      raise("argument", "bad XML character reference '&" .. kind .. body .. ";'")
    end
    return utf8.char(code)
  end))
end

--- Parse XML text into a tree of `{type = "root"|"element"|"text"|"attribute", …}` nodes.
function M.parse(text)
  local root = { type = "root", children = {}, order = 0 }
  local stack = { root }
  local order = 0
  local function add(node)
    local parent = stack[#stack]
    order = order + 1
    node.parent, node.order = parent, order
    parent.children[#parent.children + 1] = node
    return node
  end
  local pos = 1
  local n = #text
  while pos <= n do
    local lt = find(text, "<", pos, true)
    local chunk = sub(text, pos, (lt or n + 1) - 1)
    if chunk ~= "" then
      if #stack == 1 then
        if find(chunk, "%S") then raise("argument", "XML has text outside the root element") end
      else
        add({ type = "text", value = unescape(chunk) })
      end
    end
    if not lt then break end
    if sub(text, lt, lt + 3) == "<!--" then
      local e = find(text, "-->", lt + 4, true)
      if not e then raise("argument", "XML comment is not closed") end
      pos = e + 3
    elseif sub(text, lt, lt + 8) == "<![CDATA[" then
      local e = find(text, "]]>", lt + 9, true)
      if not e then raise("argument", "XML CDATA section is not closed") end
      add({ type = "text", value = sub(text, lt + 9, e - 1) })
      pos = e + 3
    elseif sub(text, lt, lt + 1) == "<?" then
      local e = find(text, "?>", lt + 2, true)
      if not e then raise("argument", "XML processing instruction is not closed") end
      local target, body = sub(text, lt + 2, e - 1):match("^([%w_:%-%.]+)%s*(.-)%s*$")
      if #stack == 1 and target == "xml" then root.declaration = body end
      pos = e + 2
    elseif sub(text, lt, lt + 1) == "<!" then
      local e = find(text, ">", lt + 2, true)
      if not e then raise("argument", "XML declaration is not closed") end
      pos = e + 1
    elseif sub(text, lt, lt + 1) == "</" then
      local name, e = text:match("^</%s*([^%s>]+)%s*>()", lt)
      if not name then raise("argument", "bad XML closing tag at character " .. lt) end
      local open = stack[#stack]
      if #stack == 1 or open.name ~= name then
        raise("argument", format("XML closing tag </%s> does not match <%s>", name, tostring(open.name)))
      end
      stack[#stack] = nil
      pos = e
    else
      local name, e = text:match("^<([%a_:][%w_:%-%.]*)()", lt)
      if not name then raise("argument", "bad XML tag at character " .. lt) end
      if #stack == 1 and root.element then raise("argument", "XML has more than one root element") end
      if #stack > M.MAX_DEPTH then
        raise("argument", format("XML elements nested deeper than %d levels (at character %d)", M.MAX_DEPTH, lt))
      end
      local el = add({ type = "element", name = name, attrs = {}, children = {} })
      if #stack == 1 then root.element = el end
      pos = e
      while true do
        local s2, e2, aname, quote = find(text, "^%s+([%a_:][%w_:%-%.]*)%s*=%s*(['\"])", pos)
        if not s2 then break end
        local close = find(text, quote, e2 + 1, true)
        if not close then raise("argument", "XML attribute '" .. aname .. "' is not closed") end
        order = order + 1
        el.attrs[#el.attrs + 1] = { type = "attribute", name = aname, value = unescape(sub(text, e2 + 1, close - 1)),
          parent = el, order = order }
        pos = close + 1
      end
      local s3, e3, slash = find(text, "^%s*(/?)>", pos)
      if not s3 then raise("argument", "bad XML tag <" .. name .. "> at character " .. lt) end
      pos = e3 + 1
      if slash == "" then stack[#stack + 1] = el end
    end
  end
  if #stack > 1 then raise("argument", "XML element <" .. stack[#stack].name .. "> is not closed") end
  if not root.element then raise("argument", "XML text has no root element") end
  M.resolve_namespaces(root.element, { xml = "http://www.w3.org/XML/1998/namespace" })
  return root
end

local function split_name(name)
  local prefix, local_part = name:match("^([^:]+):(.+)$")
  if prefix then return prefix, local_part end
  return "", name
end
M.split_name = split_name

--- Give every element and attribute its namespace URI (`uri`) and local name,
-- following the xmlns declarations in scope; xmlns attributes are marked.
function M.resolve_namespaces(el, inherited)
  local scope = inherited
  for _, a in ipairs(el.attrs) do
    if a.name == "xmlns" or a.name:sub(1, 6) == "xmlns:" then
      if scope == inherited then scope = setmetatable({}, { __index = inherited }) end
      a.xmlns = true
      scope[a.name == "xmlns" and "" or a.name:sub(7)] = a.value
    end
  end
  el.ns_scope = scope
  local prefix, local_part = split_name(el.name)
  el.prefix, el.local_name = prefix, local_part
  el.uri = scope[prefix] or ""
  if prefix ~= "" and scope[prefix] == nil then
    raise("argument", format("XML element <%s> uses the undeclared namespace prefix '%s'", el.name, prefix))
  end
  for _, a in ipairs(el.attrs) do
    local ap, al = split_name(a.name)
    a.prefix, a.local_name = ap, al
    if a.xmlns then a.uri = "http://www.w3.org/2000/xmlns/"
    elseif ap == "" then a.uri = ""
    else a.uri = scope[ap] or "" end
  end
  for _, c in ipairs(el.children) do
    if c.type == "element" then M.resolve_namespaces(c, scope) end
  end
end

-- ---------------------------------------------------------------- serialising

local function escape_text(s) return (s:gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;")) end
local function escape_attr(s) return (s:gsub("&", "&amp;"):gsub("<", "&lt;"):gsub('"', "&quot;")) end

local function serialize(node, out)
  if node.type == "text" then out[#out + 1] = escape_text(node.value) return end
  if node.type == "attribute" then out[#out + 1] = escape_attr(node.value) return end
  if node.type == "root" then
    for _, c in ipairs(node.children) do serialize(c, out) end
    return
  end
  out[#out + 1] = "<" .. node.name
  for _, a in ipairs(node.attrs) do out[#out + 1] = format(' %s="%s"', a.name, escape_attr(a.value)) end
  if #node.children == 0 then out[#out + 1] = " />" return end
  out[#out + 1] = ">"
  for _, c in ipairs(node.children) do serialize(c, out) end
  out[#out + 1] = "</" .. node.name .. ">"
end

--- XML text of a node.
function M.serialize(node)
  local out = {}
  serialize(node, out)
  return table.concat(out)
end

-- Prefixes an element's subtree uses (element and attribute names), in first-use order.
local function used_prefixes(el, seen, list)
  if not seen[el.prefix] then seen[el.prefix] = true; list[#list + 1] = el.prefix end
  for _, a in ipairs(el.attrs) do
    if not a.xmlns and a.prefix ~= "" and not seen[a.prefix] then seen[a.prefix] = true; list[#list + 1] = a.prefix end
  end
  for _, c in ipairs(el.children) do
    if c.type == "element" then used_prefixes(c, seen, list) end
  end
  return list
end

--- XML text of an element taken out of its document: namespaces it uses that
-- were declared on an ancestor are declared on it (as .NET's OuterXml of a
-- selected node does: `<location xmlns="https://contoso.com">Paris</location>`).
function M.serialize_detached(el)
  if not el.ns_scope then return M.serialize(el) end
  local own = {}
  for _, a in ipairs(el.attrs) do
    if a.xmlns then own[a.name == "xmlns" and "" or a.name:sub(7)] = true end
  end
  local extra = {}
  for _, prefix in ipairs(used_prefixes(el, {}, {})) do
    local uri = el.ns_scope[prefix]
    if not own[prefix] and uri and uri ~= "" and prefix ~= "xml" then
      extra[#extra + 1] = { type = "attribute", name = prefix == "" and "xmlns" or ("xmlns:" .. prefix), value = uri }
    end
  end
  if #extra == 0 then return M.serialize(el) end
  local copy = {}
  for k, v in pairs(el) do copy[k] = v end
  copy.attrs = {}
  for _, a in ipairs(extra) do copy.attrs[#copy.attrs + 1] = a end
  for _, a in ipairs(el.attrs) do copy.attrs[#copy.attrs + 1] = a end
  return M.serialize(copy)
end

-- ---------------------------------------------------------------- JSON -> XML

local function scalar_text(v)
  if type(v) == "boolean" then return v and "true" or "false" end
  return V.to_text(v)
end

-- Members in the order of the JSON text they came from (as ADF writes them); keys added later sorted.
local ordered_keys = json.keys

local function json_to_element(name, value, out)
  if V.is_array(value) then
    for _, v in ipairs(value) do json_to_element(name, v, out) end
    return
  end
  out[#out + 1] = "<" .. name
  if V.is_object(value) then
    local keys = ordered_keys(value)
    for _, k in ipairs(keys) do
      if sub(k, 1, 1) == "@" then out[#out + 1] = format(' %s="%s"', sub(k, 2), escape_attr(scalar_text(value[k]))) end
    end
    local body = {}
    for _, k in ipairs(keys) do
      if k == "#text" then body[#body + 1] = escape_text(scalar_text(value[k]))
      elseif k == "#cdata-section" then body[#body + 1] = "<![CDATA[" .. scalar_text(value[k]) .. "]]>"
      elseif sub(k, 1, 1) ~= "@" then json_to_element(k, value[k], body) end
    end
    if #body == 0 then out[#out + 1] = " />" return end
    out[#out + 1] = ">" .. table.concat(body) .. "</" .. name .. ">"
    return
  end
  if value == json.null then out[#out + 1] = " />" return end
  out[#out + 1] = ">" .. escape_text(scalar_text(value)) .. "</" .. name .. ">"
end

--- XML text from a JSON object (or JSON text) with a single root property.
function M.from_json(value)
  if type(value) == "string" then
    local decoded, err = json.decode(value)
    if decoded == nil then raise("argument", "function 'xml' expects JSON text: " .. tostring(err and err.message)) end
    value = decoded
  end
  if not V.is_object(value) then
    raise("type", "function 'xml' expects an object with one root property but got " .. V.a(value))
  end
  local root, count, decl = nil, 0, nil
  for k, v in pairs(value) do
    if k == "?xml" then decl = v else root = k; count = count + 1 end
  end
  if count ~= 1 or V.is_array(value[root]) then
    raise("argument", "function 'xml' expects an object with exactly one root property that is not an array")
  end
  local out = {}
  if V.is_object(decl) then
    local parts = {}
    for _, k in ipairs(ordered_keys(decl)) do
      parts[#parts + 1] = format('%s="%s"', sub(k, 2), escape_attr(scalar_text(decl[k])))
    end
    out[1] = "<?xml " .. table.concat(parts, " ") .. "?>"
  end
  json_to_element(root, value[root], out)
  return table.concat(out)
end

-- ---------------------------------------------------------------- XML -> JSON

local function element_to_json(el)
  local obj = json.object({})
  local has_attr, has_child = false, false
  for _, a in ipairs(el.attrs) do obj["@" .. a.name] = a.value; has_attr = true end
  local texts = {}
  for _, c in ipairs(el.children) do
    if c.type == "text" then
      if find(c.value, "%S") then texts[#texts + 1] = c.value end
    else
      has_child = true
      local v = element_to_json(c)
      local existing = obj[c.name]
      if existing == nil then obj[c.name] = v
      elseif V.is_array(existing) and existing.repeated then existing[#existing + 1] = v
      else
        local list = json.array({ existing, v })
        list.repeated = true
        obj[c.name] = list
      end
    end
  end
  for _, v in pairs(obj) do if type(v) == "table" then v.repeated = nil end end
  local text = table.concat(texts)
  if not has_attr and not has_child then
    if #texts == 0 then return json.null end
    return text
  end
  if #texts > 0 then obj["#text"] = text end
  return obj
end

--- Convert XML text to a JSON value (root element name as the single property).
function M.to_json(text)
  local root = M.parse(text)
  local result = json.object({})
  if root.declaration then
    local decl = json.object({})
    for k, v in root.declaration:gmatch("([%w_:%-]+)%s*=%s*[\"']([^\"']*)[\"']") do decl["@" .. k] = v end
    result["?xml"] = decl
  end
  result[root.element.name] = element_to_json(root.element)
  return result
end

-- ---------------------------------------------------------------- XPath subset

local function tokenize(expr)
  local tokens = {}
  local pos, n = 1, #expr
  while pos <= n do
    local s, e = find(expr, "^%s+", pos)
    if s then pos = e + 1 end
    if pos > n then break end
    local c = sub(expr, pos, pos)
    local two = sub(expr, pos, pos + 1)
    if two == "//" or two == ".." or two == "!=" or two == "<=" or two == ">=" or two == "::" then
      tokens[#tokens + 1] = { t = two }; pos = pos + 2
    elseif find("/[]()@,|.*=<>+-", c, 1, true) and not (c == "." and find(expr, "^%.%d", pos)) then
      tokens[#tokens + 1] = { t = c }; pos = pos + 1
    elseif c == "'" or c == '"' then
      local close = find(expr, c, pos + 1, true)
      if not close then raise("argument", "XPath '" .. expr .. "' has an unclosed string") end
      tokens[#tokens + 1] = { t = "str", v = sub(expr, pos + 1, close - 1) }; pos = close + 1
    else
      local num = expr:match("^%d*%.?%d+", pos)
      if num then
        tokens[#tokens + 1] = { t = "num", v = tonumber(num) }; pos = pos + #num
      else
        local name = expr:match("^[%a_][%w_%-%.]*:?[%w_%-%.]*", pos)
        if not name or name == "" then
          raise("argument", format("XPath '%s' has an unexpected '%s' at character %d", expr, c, pos))
        end
        if sub(name, -1) == ":" then name = sub(name, 1, -2) end
        tokens[#tokens + 1] = { t = "name", v = name }; pos = pos + #name
      end
    end
  end
  tokens[#tokens + 1] = { t = "eof" }
  return tokens
end

local function string_value(node)
  if node.type == "text" or node.type == "attribute" then return node.value end
  local parts = {}
  local function walk(x)
    for _, c in ipairs(x.children) do
      if c.type == "text" then parts[#parts + 1] = c.value else walk(c) end
    end
  end
  walk(node)
  return table.concat(parts)
end

local function to_string(v)
  if type(v) == "table" then return v[1] and string_value(v[1]) or "" end
  if type(v) == "number" then
    if v == math.floor(v) and math.abs(v) < 2^53 then return format("%d", v) end
    return V.format_float(v)
  end
  if type(v) == "boolean" then return v and "true" or "false" end
  return v
end

local function to_number(v)
  if type(v) == "number" then return v end
  if type(v) == "boolean" then return v and 1 or 0 end
  return tonumber((to_string(v):match("^%s*(.-)%s*$"))) or (0 / 0)
end

local function to_boolean(v)
  if type(v) == "table" then return #v > 0 end
  if type(v) == "number" then return v ~= 0 and v == v end
  if type(v) == "string" then return v ~= "" end
  return v
end

local function local_name(name) return (name:gsub("^.*:", "")) end

local function sort_unique(nodes)
  local seen, out = {}, {}
  for _, x in ipairs(nodes) do
    if not seen[x] then seen[x] = true; out[#out + 1] = x end
  end
  table.sort(out, function(a, b) return a.order < b.order end)
  return out
end

local function descendants_or_self(node, out)
  out[#out + 1] = node
  if node.children then
    for _, c in ipairs(node.children) do descendants_or_self(c, out) end
  end
  return out
end

local function root_of(node)
  while node.parent do node = node.parent end
  return node
end

local Parser = {}
Parser.__index = Parser

function Parser:peek(k) return self.tokens[self.i + (k or 0)] end
function Parser:next() local t = self.tokens[self.i]; self.i = self.i + 1; return t end
function Parser:expect(t)
  local tok = self:next()
  if tok.t ~= t then raise("argument", format("XPath '%s': expected '%s'", self.text, t)) end
  return tok
end

local compare_ops = { ["="] = true, ["!="] = true, ["<"] = true, ["<="] = true, [">"] = true, [">="] = true }

local function compare(op, a, b)
  local function cmp(x, y)
    if op == "=" or op == "!=" then
      local eq
      if type(x) == "boolean" or type(y) == "boolean" then eq = to_boolean(x) == to_boolean(y)
      elseif type(x) == "number" or type(y) == "number" then eq = to_number(x) == to_number(y)
      else eq = to_string(x) == to_string(y) end
      if op == "=" then return eq end
      return not eq
    end
    local nx, ny = to_number(x), to_number(y)
    if op == "<" then return nx < ny elseif op == "<=" then return nx <= ny
    elseif op == ">" then return nx > ny else return nx >= ny end
  end
  -- Node-sets compare by any member (XPath's existential rule).
  if type(a) == "table" then
    for _, x in ipairs(a) do if compare(op, string_value(x), b) then return true end end
    return false
  end
  if type(b) == "table" then
    for _, y in ipairs(b) do if compare(op, a, string_value(y)) then return true end end
    return false
  end
  return cmp(a, b)
end

-- Each parse method returns a function(ctx) where ctx = {node =, position =, size =}.
function Parser:expr() return self:or_expr() end

function Parser:or_expr()
  local left = self:and_expr()
  while self:peek().t == "name" and self:peek().v == "or" do
    self:next()
    local l, r = left, self:and_expr()
    left = function(ctx) return to_boolean(l(ctx)) or to_boolean(r(ctx)) end
  end
  return left
end

function Parser:and_expr()
  local left = self:compare_expr()
  while self:peek().t == "name" and self:peek().v == "and" do
    self:next()
    local l, r = left, self:compare_expr()
    left = function(ctx) return to_boolean(l(ctx)) and to_boolean(r(ctx)) end
  end
  return left
end

function Parser:compare_expr()
  local left = self:additive()
  while compare_ops[self:peek().t] do
    local op = self:next().t
    local l, r = left, self:additive()
    left = function(ctx) return compare(op, l(ctx), r(ctx)) end
  end
  return left
end

function Parser:additive()
  local left = self:union()
  while self:peek().t == "+" or self:peek().t == "-" do
    local op = self:next().t
    local l, r = left, self:union()
    left = function(ctx)
      local a, b = to_number(l(ctx)), to_number(r(ctx))
      if op == "+" then return a + b end
      return a - b
    end
  end
  return left
end

function Parser:union()
  local left = self:path()
  while self:peek().t == "|" do
    self:next()
    local l, r = left, self:path()
    left = function(ctx)
      local a, b = l(ctx), r(ctx)
      if type(a) ~= "table" or type(b) ~= "table" then raise("argument", "XPath '|' joins node-sets only") end
      local all = {}
      for _, x in ipairs(a) do all[#all + 1] = x end
      for _, x in ipairs(b) do all[#all + 1] = x end
      return sort_unique(all)
    end
  end
  return left
end

local node_types = { text = true, node = true, comment = true }

function Parser:is_step_start()
  local t = self:peek()
  if t.t == "." or t.t == ".." or t.t == "@" or t.t == "*" then return true end
  if t.t == "name" then
    local nxt = self:peek(1)
    if nxt.t == "(" then return node_types[t.v] == true end
    return true
  end
  return false
end

function Parser:predicates()
  local preds = {}
  while self:peek().t == "[" do
    self:next()
    preds[#preds + 1] = self:expr()
    self:expect("]")
  end
  return preds
end

local function apply_predicates(nodes, preds)
  for _, pred in ipairs(preds) do
    local kept = {}
    local size = #nodes
    for i, node in ipairs(nodes) do
      local v = pred({ node = node, position = i, size = size })
      if type(v) == "number" then
        if v == i then kept[#kept + 1] = node end
      elseif to_boolean(v) then
        kept[#kept + 1] = node
      end
    end
    nodes = kept
  end
  return nodes
end

function Parser:step()
  local t = self:peek()
  if t.t == "." then self:next() return function(node) return { node } end end
  if t.t == ".." then self:next() return function(node) return { node.parent } end end
  local axis = "child"
  if t.t == "@" then self:next(); axis = "attribute"
  elseif t.t == "name" and self:peek(1).t == "::" then
    axis = self:next().v; self:next()
  end
  local test
  local tok = self:next()
  if tok.t == "*" then
    test = function(n) return n.type == (axis == "attribute" and "attribute" or "element") and not n.xmlns end
  elseif tok.t == "name" and self:peek().t == "(" and node_types[tok.v] then
    self:next(); self:expect(")")
    if tok.v == "text" then test = function(n) return n.type == "text" end
    elseif tok.v == "node" then test = function() return true end
    else test = function() return false end end
  elseif tok.t == "name" then
    local name = tok.v
    local prefix = name:match("^([^:]+):")
    if prefix then
      raise("argument", format("XPath '%s': the namespace prefix '%s' is not bound (xpath() binds no prefixes; " ..
        "match with *[local-name()='…' and namespace-uri()='…'])", self.text, prefix))
    end
    -- An unprefixed name test matches names in no namespace only (XPath 1.0).
    local want = axis == "attribute" and "attribute" or "element"
    test = function(n)
      return n.type == want and not n.xmlns and (n.local_name or n.name) == name and (n.uri or "") == ""
    end
  else
    raise("argument", format("XPath '%s': expected a node name", self.text))
  end
  local preds = self:predicates()
  return function(node)
    local candidates = {}
    if axis == "child" then candidates = node.children or {}
    elseif axis == "attribute" then candidates = node.attrs or {}
    elseif axis == "self" then candidates = { node }
    elseif axis == "parent" then candidates = { node.parent }
    elseif axis == "descendant" then
      candidates = descendants_or_self(node, {}); table.remove(candidates, 1)
    elseif axis == "descendant-or-self" then candidates = descendants_or_self(node, {})
    elseif axis == "ancestor" or axis == "ancestor-or-self" then
      local x = axis == "ancestor" and node.parent or node
      while x do candidates[#candidates + 1] = x; x = x.parent end
    elseif axis == "following-sibling" or axis == "preceding-sibling" then
      local siblings = node.parent and node.type ~= "attribute" and node.parent.children or {}
      for _, c in ipairs(siblings) do
        if (axis == "following-sibling" and c.order > node.order) or
            (axis == "preceding-sibling" and c.order < node.order) then
          candidates[#candidates + 1] = c
        end
      end
    else raise("argument", format("XPath '%s': the axis '%s' is not supported", self.text, axis)) end
    local matched = {}
    for _, c in ipairs(candidates) do if c and test(c) then matched[#matched + 1] = c end end
    return apply_predicates(matched, preds)
  end
end

local function run_steps(start_nodes, steps)
  local nodes = start_nodes
  for _, st in ipairs(steps) do
    local out = {}
    for _, node in ipairs(nodes) do
      if st == "descend" then
        descendants_or_self(node, out)
      else
        for _, x in ipairs(st(node)) do out[#out + 1] = x end
      end
    end
    nodes = sort_unique(out)
  end
  return nodes
end

function Parser:relative_steps(steps)
  steps[#steps + 1] = self:step()
  while self:peek().t == "/" or self:peek().t == "//" do
    if self:next().t == "//" then steps[#steps + 1] = "descend" end
    steps[#steps + 1] = self:step()
  end
  return steps
end

function Parser:path()
  local t = self:peek()
  if t.t == "/" or t.t == "//" then
    self:next()
    local steps = {}
    if t.t == "//" then steps[1] = "descend" end
    if t.t == "//" or self:is_step_start() then self:relative_steps(steps) end
    return function(ctx) return run_steps({ root_of(ctx.node) }, steps) end
  end
  if self:is_step_start() then
    local steps = self:relative_steps({})
    return function(ctx) return run_steps({ ctx.node }, steps) end
  end
  local primary = self:primary()
  local preds = self:predicates()
  if #preds == 0 and self:peek().t ~= "/" and self:peek().t ~= "//" then return primary end
  local steps = {}
  while self:peek().t == "/" or self:peek().t == "//" do
    if self:next().t == "//" then steps[#steps + 1] = "descend" end
    steps[#steps + 1] = self:step()
  end
  return function(ctx)
    local v = primary(ctx)
    if type(v) ~= "table" then raise("argument", "XPath: only node-sets can be followed by a path") end
    return run_steps(apply_predicates(v, preds), steps)
  end
end

-- The argument of a function that takes a node-set (XPath 1.0 has no conversion to one).
local function node_set(fname, a)
  if type(a) ~= "table" then raise("argument", "XPath: " .. fname .. "() expects a node-set") end
  return a
end

-- The node a name function reads: the first of its node-set argument, or the context node.
local function named_node(fname, ctx, a)
  if a == nil then return ctx.node end
  return node_set(fname, a)[1]
end

local xpath_functions = {
  ["count"] = function(_, a) return #node_set("count", a) end,
  ["sum"] = function(_, a)
    local s = 0
    for _, n in ipairs(node_set("sum", a)) do s = s + to_number(string_value(n)) end
    return s
  end,
  ["string"] = function(ctx, a) if a == nil then return string_value(ctx.node) end return to_string(a) end,
  ["number"] = function(ctx, a) if a == nil then return to_number(string_value(ctx.node)) end return to_number(a) end,
  ["boolean"] = function(_, a) return to_boolean(a) end,
  ["not"] = function(_, a) return not to_boolean(a) end,
  ["true"] = function() return true end,
  ["false"] = function() return false end,
  ["name"] = function(ctx, a)
    local n = named_node("name", ctx, a)
    return n and n.name or ""
  end,
  ["local-name"] = function(ctx, a)
    local n = named_node("local-name", ctx, a)
    return n and (n.local_name or (n.name and local_name(n.name))) or ""
  end,
  ["namespace-uri"] = function(ctx, a)
    local n = named_node("namespace-uri", ctx, a)
    return n and n.uri or ""
  end,
  ["substring"] = function(_, a, start, len)
    -- XPath positions are 1-based and rounded; characters, not bytes.
    local chars = V.chars(to_string(a))
    local first = math.floor(to_number(start) + 0.5)
    local last = len == nil and math.huge or first + math.floor(to_number(len) + 0.5)
    local out = {}
    for i = 1, #chars do
      if i >= first and i < last then out[#out + 1] = chars[i] end
    end
    return table.concat(out)
  end,
  ["substring-before"] = function(_, a, b)
    local s, p = to_string(a), to_string(b)
    local at = find(s, p, 1, true)
    return at and sub(s, 1, at - 1) or ""
  end,
  ["substring-after"] = function(_, a, b)
    local s, p = to_string(a), to_string(b)
    local at, e = find(s, p, 1, true)
    return at and sub(s, e + 1) or ""
  end,
  ["translate"] = function(_, a, from, to)
    local map = {}
    local f, t = V.chars(to_string(from)), V.chars(to_string(to))
    for i, c in ipairs(f) do if map[c] == nil then map[c] = t[i] or false end end
    local out = {}
    for _, c in ipairs(V.chars(to_string(a))) do
      local m = map[c]
      if m == nil then out[#out + 1] = c elseif m then out[#out + 1] = m end
    end
    return table.concat(out)
  end,
  ["position"] = function(ctx) return ctx.position end,
  ["last"] = function(ctx) return ctx.size end,
  ["concat"] = function(_, ...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = to_string((select(i, ...))) end
    return table.concat(parts)
  end,
  ["contains"] = function(_, a, b) return find(to_string(a), to_string(b), 1, true) ~= nil end,
  ["starts-with"] = function(_, a, b) local s, p = to_string(a), to_string(b) return sub(s, 1, #p) == p end,
  ["string-length"] = function(ctx, a) return utf8.len(a == nil and string_value(ctx.node) or to_string(a)) end,
  ["normalize-space"] = function(ctx, a)
    local s = a == nil and string_value(ctx.node) or to_string(a)
    return (s:gsub("%s+", " "):match("^ ?(.-) ?$"))
  end,
  ["floor"] = function(_, a) return math.floor(to_number(a)) end,
  ["ceiling"] = function(_, a) return math.ceil(to_number(a)) end,
  ["round"] = function(_, a) return math.floor(to_number(a) + 0.5) end,
}

function Parser:primary()
  local t = self:next()
  if t.t == "str" then return function() return t.v end end
  if t.t == "num" then return function() return t.v end end
  if t.t == "-" then
    local inner = self:primary()
    return function(ctx) return -to_number(inner(ctx)) end
  end
  if t.t == "(" then
    local e = self:expr()
    self:expect(")")
    return e
  end
  if t.t == "name" and self:peek().t == "(" then
    local fn = xpath_functions[t.v]
    if not fn then raise("argument", format("XPath '%s': the function '%s' is not supported", self.text, t.v)) end
    self:next()
    local args = {}
    if self:peek().t ~= ")" then
      args[1] = self:expr()
      while self:peek().t == "," do self:next(); args[#args + 1] = self:expr() end
    end
    self:expect(")")
    return function(ctx)
      local values = {}
      for i, a in ipairs(args) do values[i] = a(ctx) end
      return fn(ctx, table.unpack(values, 1, #args))
    end
  end
  raise("argument", format("XPath '%s': unexpected '%s'", self.text, t.v or t.t))
end

--- Compile an XPath expression into `function(node) → node-set | string | number | boolean`.
function M.compile_xpath(text)
  local p = setmetatable({ tokens = tokenize(text), i = 1, text = text }, Parser)
  local e = p:expr()
  if p:peek().t ~= "eof" then
    raise("argument", format("XPath '%s': unexpected '%s'", text, p:peek().v or p:peek().t))
  end
  return function(node) return e({ node = node, position = 1, size = 1 }) end
end

local function node_result(node)
  if node.type == "element" then return V.new_xml(M.serialize_detached(node)) end
  if node.type == "root" then return V.new_xml(M.serialize_detached(node.element)) end
  return node.value
end

--- Evaluate XPath against XML text. A node-set comes back as an array (also for
-- one node or none): elements as XML values, attributes and text nodes as their
-- text; XPath strings, numbers and booleans come back as they are.
function M.xpath(xml_text, path)
  local root = M.parse(xml_text)
  local result = M.compile_xpath(path)(root)
  if type(result) == "table" then
    local list = json.array({})
    for i, node in ipairs(result) do list[i] = node_result(node) end
    return list
  end
  if type(result) == "number" then
    if result ~= result or result == math.huge or result == -math.huge then
      raise("evaluation", "XPath '" .. path .. "' did not produce a finite number")
    end
    return math.tointeger(result) or result
  end
  return result
end

--- ADF's xml(): XML text (checked to be well formed) or a JSON object with one
-- root property (or its JSON text) becomes an XML value; an XML value passes.
function M.value(v)
  if V.is_xml(v) then return v end
  if type(v) == "string" then
    local text = v:match("^%s*(.-)%s*$")
    if sub(text, 1, 1) == "<" then
      M.parse(text)
      return V.new_xml(text)
    end
  end
  return V.new_xml(M.from_json(v))
end

--- The XML text of an xml()/xpath() argument: an XML value or XML text.
function M.text_of(fname, v)
  if V.is_xml(v) then return V.xml_text(v) end
  if type(v) == "string" then return v end
  raise("type", format("function '%s' expects XML (the result of xml()) or XML text as argument 1 but got %s",
    fname, V.a(v)))
end

F.define("xml", 1, 1, function(_, v) return M.value(v) end)

F.define("xpath", 2, 2, function(_, x, path)
  x = M.text_of("xpath", x)
  path = V.check_string("xpath", 2, path)
  return M.xpath(x, path)
end)

return M
