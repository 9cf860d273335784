--- Tab completion for the prompt: what the word before the cursor may become.
-- Globals and keywords; fields after `.` (`string.fo` → `format`, `res.he` → `headers`, a factory's
-- `f.pipelines.`); methods after `:` (the value's fields and its metatable's `__index` tables, the string
-- library for strings); module names inside `require "…`; pipeline names inside `factory:run("…`
-- (also :start and :plan); activity names after `activityName = "` or `from = "` in a call of
-- factory:activity_runs or :rerun. Values are read with rawget and `__index`
-- tables only: completing never runs the user's code.
-- @module lufa.repl.complete
local fs = require "lufa.fs"

local M = {}

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or repeat return then
  true until while]]):gmatch("%a+") do KEYWORDS[#KEYWORDS + 1] = w end

local MAX_HOPS = 16  -- __index chains longer than this are not followed

-- The tables a value's fields come from: itself (if a table), then its __index tables.
local function sources(v)
  local list = {}
  if type(v) == "string" then return { string } end
  if type(v) == "table" then list[1] = v end
  local cur = v
  for _ = 1, MAX_HOPS do
    local mt = getmetatable(cur)
    local index = type(mt) == "table" and rawget(mt, "__index")
    if type(index) ~= "table" then break end
    list[#list + 1] = index
    cur = index
  end
  return list
end

-- The name v is loaded under, when it is a module.
local function module_name(v)
  if type(v) ~= "table" then return nil end
  for name, m in pairs(package.loaded) do
    if m == v and type(name) == "string" then return name end
  end
end

local function field(v, name)
  for _, t in ipairs(sources(v)) do
    local f = rawget(t, name)
    if f ~= nil then return f end
  end
  -- lufa's own submodules (lufa.blob): loading one runs lufa's code only, never the user's
  local mod = module_name(v)
  if mod == "lufa" or (mod and mod:find("^lufa%.")) then
    local sub = mod .. "." .. name
    if package.loaded[sub] then return package.loaded[sub] end
    if package.searchpath(sub, package.path) or package.preload[sub] then
      local ok, m = pcall(require, sub)
      if ok then return m end
    end
  end
end

local function add_keys(found, v, prefix, only_functions)
  for _, t in ipairs(sources(v)) do
    for k, x in next, t do
      if type(k) == "string" and k:find("^[%a_][%w_]*$") and k:sub(1, #prefix) == prefix
          and (not only_functions or type(x) == "function") then
        found[k] = true
      end
    end
  end
end

local function sorted(found)
  local list = {}
  for k in pairs(found) do list[#list + 1] = k end
  table.sort(list)
  return list
end

-- Module names under every package.path folder (and package.preload) that start with prefix.
local function module_names(prefix)
  local found = {}
  for name in pairs(package.preload) do
    if name:sub(1, #prefix) == prefix then found[name] = true end
  end
  local parent, last = prefix:match("^(.-)%.?([%w_]*)$")
  local sub = parent:gsub("%.", "/")
  for template in package.path:gmatch("[^;]+") do
    local dir = template:match("^(.*/)%?%.lua$")
    if dir then
      local ok, names = pcall(fs.list, dir .. sub)
      if ok and type(names) == "table" then
        for _, n in ipairs(names) do
          local base = n:match("^([%w_]+)%.lua$") or (not n:find("%.") and n)
          if base and base ~= "init" and base:sub(1, #last) == last then
            found[(parent ~= "" and parent .. "." or "") .. base] = true
          end
        end
      end
    end
  end
  return sorted(found)
end

-- The names of a factory's pipelines (the value lufa.pipeline.load_factory returns), or nil.
local function pipeline_names(v)
  local order = type(v) == "table" and rawget(v, "order")
  local list = type(order) == "table" and rawget(order, "pipeline")
  if type(list) ~= "table" then return nil end
  local names = {}
  for _, e in ipairs(list) do
    if type(e) == "table" and type(rawget(e, "name")) == "string" then names[#names + 1] = e.name end
  end
  return names
end

-- Activity names anywhere in a factory's pipelines (inside ForEach, IfCondition, Switch, Until too).
local function activity_names(v)
  local order = type(v) == "table" and rawget(v, "order")
  local list = type(order) == "table" and rawget(order, "pipeline")
  if type(list) ~= "table" then return nil end
  local names = {}
  local function walk(t, depth)
    if type(t) ~= "table" or depth > 12 then return end
    for k, x in next, t do
      if type(k) == "string" and k:find("[Aa]ctivities$") and type(x) == "table" then
        for _, a in ipairs(x) do
          if type(a) == "table" and type(rawget(a, "name")) == "string" then names[a.name] = true end
          walk(a, depth + 1)
        end
      elseif type(x) == "table" then
        walk(x, depth + 1)
      end
    end
  end
  for _, e in ipairs(list) do walk(type(e) == "table" and rawget(e, "resource"), 0) end
  return names
end

local PIPELINE_METHODS = { run = true, start = true, plan = true }
local ACTIVITY_METHODS = { activity_runs = true, rerun = true }

-- Inside the first string argument of factory:run / :start / :plan: the factory's pipeline names.
local function complete_pipeline(text, env)
  local path, method, word = text:match("([%a_][%w_%.]*):([%a_]+)%s*%(%s*[\"']([^\"']*)$")
  if not path or not PIPELINE_METHODS[method] then return nil end
  local v = env
  for name in path:gmatch("[^.]+") do
    v = field(v, name)
    if v == nil then return nil end
  end
  local names = pipeline_names(v)
  if not names then return nil end
  local found = {}
  for _, n in ipairs(names) do
    if n:sub(1, #word) == word then found[n] = true end
  end
  return #word, sorted(found)
end

-- Inside `activityName = "…` or `from = "…` in a call of factory:activity_runs / :rerun: activity names.
local function complete_activity(text, env)
  local word = text:match("[%w_]+%s*=%s*[\"']([^\"']*)$")
  local key = text:match("([%w_]+)%s*=%s*[\"'][^\"']*$")
  if not word or (key ~= "activityName" and key ~= "from") then return nil end
  local path, method
  for p, m in text:gmatch("([%a_][%w_%.]*):([%a_]+)%s*%(") do path, method = p, m end
  if not path or not ACTIVITY_METHODS[method] then return nil end
  local v = env
  for name in path:gmatch("[^.]+") do
    v = field(v, name)
    if v == nil then return nil end
  end
  local names = activity_names(v)
  if not names then return nil end
  local found = {}
  for n in pairs(names) do
    if n:sub(1, #word) == word then found[n] = true end
  end
  return #word, sorted(found)
end

--- Candidates for the word that ends `text` (the line up to the cursor).
-- @tparam string text
-- @tparam[opt] table env where globals are looked up (default _G)
-- @treturn integer the length in bytes of the word the candidates replace
-- @treturn {string,...} candidates, sorted
function M.complete(text, env)
  env = env or _G
  local req = text:match("require%s*%(?%s*[\"']([%w_%.]*)$")
  if req then return #req, module_names(req) end
  local n, names = complete_pipeline(text, env)
  if n then return n, names end
  n, names = complete_activity(text, env)
  if n then return n, names end
  local path = text:match("[%a_][%w_%.:]*$")
  if path == nil or text:sub(-#path - 1, -#path - 1):find("[%w_]") then return 0, {} end
  local base, sep, word = path:match("^(.-)([%.:]?)([%w_]*)$")
  local found = {}
  if sep == "" then
    add_keys(found, env, word)
    for _, k in ipairs(KEYWORDS) do
      if k:sub(1, #word) == word then found[k] = true end
    end
    return #word, sorted(found)
  end
  if base == "" or base:find(":") or base:find("%.%.") then return #word, {} end
  local v = env
  for name in base:gmatch("[^.]+") do
    v = field(v, name)
    if v == nil then return #word, {} end
  end
  add_keys(found, v, word, sep == ":")
  local mod = sep == "." and module_name(v)
  if mod then
    for _, sub in ipairs(module_names(mod .. "." .. word)) do
      local last = sub:match("([%w_]+)$")
      if sub == mod .. "." .. last then found[last] = true end
    end
  end
  return #word, sorted(found)
end

M.module_names = module_names

return M
