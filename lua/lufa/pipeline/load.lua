--- Loading ADF resources: a factory folder in ADF's git layout, single files,
-- Lua tables, and override files.
-- @module lufa.pipeline.load
local fs = require "lufa.fs"
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"
local linked = require "lufa.linked"

local M = {}

--- Resource kinds, keyed by their folder name in ADF's git layout.
M.KINDS = {"pipeline", "linkedService", "dataset", "trigger"}
local KIND_BY_LOWER = {}
for _, k in ipairs(M.KINDS) do KIND_BY_LOWER[k:lower()] = k end
-- Plural spellings accepted in override files and factory tables.
for _, k in ipairs(M.KINDS) do KIND_BY_LOWER[k:lower() .. "s"] = k end

local TRIGGER_TYPES = {
  scheduletrigger = true, tumblingwindowtrigger = true, blobeventstrigger = true,
  customeventstrigger = true, blobtrigger = true, reruntumblingwindowtrigger = true,
}

--- The canonical kind for a folder or key name (any case, singular or plural), or nil.
function M.kind(name)
  return type(name) == "string" and KIND_BY_LOWER[name:lower()] or nil
end

--- Guess a resource's kind from its content (for single files).
function M.guess_kind(resource)
  local props = L.get(resource, "properties")
  if type(props) ~= "table" then return nil end
  if L.get(props, "activities") ~= nil then return "pipeline" end
  local t = L.get(props, "type")
  if type(t) == "string" and TRIGGER_TYPES[t:lower()] then return "trigger" end
  if L.get(props, "linkedServiceName") ~= nil then return "dataset" end
  if L.get(props, "typeProperties") ~= nil or type(t) == "string" then return "linkedService" end
  return nil
end

-- Every entry, hidden ones included, sorted by bytes; nil and a lufa.error when the folder cannot be read.
local list_dir = fs.list

local is_dir = fs.is_dir
M.is_dir = is_dir

local function problem(list, file, path, message, severity)
  list[#list + 1] = {severity = severity or "error", file = file, path = path or "$", message = message}
end

--- Add one resource to a factory, recording duplicates for validation.
-- @param factory the factory (see lufa.pipeline)
-- @param kind canonical kind
-- @param resource the JSON table `{name=, properties=}`
-- @param file the file it came from (for messages)
-- @param problems list to append problems to
function M.add(factory, kind, resource, file, problems)
  local name = L.get(resource, "name")
  if type(name) ~= "string" or name == "" then
    problem(problems, file, "$.name", "a " .. kind .. " needs a \"name\" string")
    return
  end
  if type(L.get(resource, "properties")) ~= "table" then
    problem(problems, file, "$.properties", "a " .. kind .. " needs a \"properties\" object")
    return
  end
  local entry = {name = name, kind = kind, file = file, resource = linked.protect(resource)}
  local byname = factory.resources[kind]
  local existing = byname[name:lower()]
  if existing then
    local same = existing.name == name
    problem(problems, file, "$.name", string.format(
      "duplicate %s name '%s' (also in %s)%s", kind, name, existing.file or "?",
      same and "" or "; names that differ only by letter case are the same name"))
    return
  end
  byname[name:lower()] = entry
  local order = factory.order[kind]
  order[#order + 1] = entry
end

--- The largest factory file read (bytes). ADF resources are small; a bigger file is a mistake (or hostile),
-- refused before it is read rather than decoded into memory.
M.MAX_FILE_BYTES = 64 * 1024 * 1024

local function read_json(path, problems)
  local st = fs.stat(path)
  if st and st.size > M.MAX_FILE_BYTES then
    problems[#problems + 1] = {severity = "error", file = path, path = "$", message = string.format(
      "the file is %.1f MB; a factory file may be at most %d MB (lufa.pipeline.load.MAX_FILE_BYTES)",
      st.size / 1048576, M.MAX_FILE_BYTES // 1048576)}
    return nil
  end
  local value, err = json.decode_file(path)
  if value == nil then
    -- The decoder's message starts with the file and position, which the problem carries already.
    local message = err and err.message or ("cannot read " .. path)
    if message:sub(1, #path + 2) == path .. ": " then message = message:sub(#path + 3) end
    message = message:gsub("^line %d+, column %d+: ", "")
    problems[#problems + 1] = {severity = "error", file = path, path = "$",
      line = err and err.line, column = err and err.column, message = message}
  end
  return value
end

local function add_factory_file(factory, value, file, problems)
  local props = L.get(value, "properties")
  local gp = L.get(props, "globalParameters")
  if type(gp) == "table" then
    for k, spec in pairs(gp) do
      factory.global_parameters[k] = linked.protect(L.get(spec, "value"))
    end
  end
  local name = L.get(value, "name")
  if type(name) == "string" then factory.name = name end
  factory.files[#factory.files + 1] = file
end

--- Load a resource file (one resource, or an array of resources) into the factory.
function M.load_file(factory, path, kind, problems)
  local value = read_json(path, problems)
  if value == nil then return end
  local list = L.is_array(value) and value or {value}
  for i, resource in ipairs(list) do
    local k = kind or M.guess_kind(resource)
    if not k then
      problem(problems, path, #list > 1 and string.format("$[%d]", i - 1) or "$",
        "cannot tell what kind of resource this is (pipeline, linked service, dataset or trigger)")
    else
      M.add(factory, k, resource, path, problems)
    end
  end
end

--- Load an ADF git-layout folder (pipeline/, linkedService/, dataset/, trigger/, factory/).
function M.load_dir(factory, dir, problems)
  local entries, err = list_dir(dir)
  if not entries then
    problem(problems, dir, "$", "cannot read the folder " .. dir .. " (" .. (err.code or "?") .. ")")
    return
  end
  local found = false
  for _, sub in ipairs(entries) do
    local kind = M.kind(sub)
    local path = dir .. "/" .. sub
    if (kind or sub:lower() == "factory") and is_dir(path) then
      found = true
      for _, fname in ipairs(list_dir(path) or {}) do
        if fname:lower():match("%.json$") then
          if kind then
            M.load_file(factory, path .. "/" .. fname, kind, problems)
          else
            local v = read_json(path .. "/" .. fname, problems)
            if v ~= nil then add_factory_file(factory, v, path .. "/" .. fname, problems) end
          end
        end
      end
    end
  end
  if not found then
    problem(problems, dir, "$", "no pipeline/, linkedService/, dataset/ or trigger/ folder in " .. dir)
  end
end

-- Arrays of named objects (activities, parameters lists) merge element by element, matched by name.
local function named_list(v)
  if not L.is_array(v) or #v == 0 then return false end
  for _, x in ipairs(v) do
    if not L.is_object(x) or type(L.get(x, "name")) ~= "string" then return false end
  end
  return true
end

local merge

local function merge_named(base, patch)
  local out, index = {}, {}
  for i, x in ipairs(base) do
    out[i] = x
    index[L.get(x, "name"):lower()] = i
  end
  for _, x in ipairs(patch) do
    local i = index[L.get(x, "name"):lower()]
    if i then
      local merged = merge(out[i], x)
      local _, key = L.lookup(merged, "name")
      merged[key] = L.get(out[i], "name")  -- the factory's spelling of the name stays
      out[i] = merged
    else
      out[#out + 1] = linked.protect(x)
    end
  end
  return setmetatable(out, getmetatable(base))
end

function merge(base, patch)
  if named_list(base) and named_list(patch) then return merge_named(base, patch) end
  if not L.is_object(patch) or not L.is_object(base) then return linked.protect(patch) end
  local out = {}
  for k, v in pairs(base) do out[k] = v end
  for k, v in pairs(patch) do
    local _, existing_key = L.lookup(base, k)
    local key = existing_key or k
    out[key] = merge(base[key], v)
  end
  return setmetatable(out, getmetatable(base))
end
M.merge = merge

--- Replaces `${NAME}` in every string of an override with the environment variable NAME, so one override
-- file serves endpoints chosen at run time (e.g. the local stand-ins' ports). `$${` keeps a literal `${`.
-- @return the substituted value; problems are added for unset variables
local function substitute(value, file, path, problems, getenv)
  if type(value) == "string" then
    return (value:gsub("(%$?)%${([%w_]+)}", function(escape, name)
      if escape == "$" then return "${" .. name .. "}" end
      local v = getenv(name)
      if v == nil then
        problem(problems, file, path, string.format("environment variable %s is not set (used as ${%s})", name, name))
        return ""
      end
      return v
    end))
  end
  if type(value) ~= "table" or value == json.null then return value end
  local out = {}
  for k, v in pairs(value) do
    out[k] = substitute(v, file, path .. (type(k) == "number" and ("[" .. (k - 1) .. "]") or ("." .. k)), problems, getenv)
  end
  return setmetatable(out, getmetatable(value))
end
M.substitute = substitute

--- Apply an override: `{ "linkedServices": { "<name>": { partial resource } }, … }`.
-- Objects are merged key by key (names matched ignoring case), arrays of named objects (such as
-- activities) element by element by name, anything else replaces. `${NAME}` in strings is replaced with
-- the environment variable NAME.
-- @param factory the factory
-- @param value decoded override JSON
-- @param file override file name for messages
function M.apply_override(factory, value, file, problems)
  if not L.is_object(value) then
    problem(problems, file, "$", "an override file must hold a JSON object")
    return
  end
  value = substitute(value, file, "$", problems, os.getenv)
  for key, byname in pairs(value) do
    local kind = M.kind(key)
    if key:lower() == "globalparameters" and L.is_object(byname) then
      for k, v in pairs(byname) do factory.global_parameters[k] = linked.protect(v) end
    elseif not kind then
      problem(problems, file, "$." .. key, "unknown section '" .. key ..
        "' (expected pipelines, linkedServices, datasets, triggers or globalParameters)")
    elseif not L.is_object(byname) then
      problem(problems, file, "$." .. key, "expected an object mapping names to partial resources")
    else
      for name, patch in pairs(byname) do
        local entry = factory:find(kind, name)
        local props = L.get(patch, "properties")
        if not entry and L.is_object(props) and type(L.get(props, "type")) == "string" and kind ~= "pipeline" then
          -- A complete resource (properties with a type) is added: an environment's own Key Vault, say.
          local resource = {}
          for k, v in pairs(patch) do resource[k] = v end
          resource.name = name
          M.add(factory, kind, resource, file, problems)
        elseif not entry then
          problem(problems, file, "$." .. key .. "." .. name,
            string.format("override names %s '%s', which the factory does not have (an override adds a " ..
              "resource only when it gives its whole definition, with properties.type)", kind, name))
        else
          entry.resource = merge(entry.resource, patch)
          entry.overridden_by = file
        end
      end
    end
  end
end

--- Add resources given as Lua tables: `{pipelines = {...}, linkedServices = {...}, …}`
-- (lists of resources, or maps name → properties) or one pipeline resource.
function M.load_table(factory, t, problems)
  if L.get(t, "properties") ~= nil or L.get(t, "activities") ~= nil then
    local resource = t
    if L.get(t, "properties") == nil then
      resource = {name = t.name, properties = t}
    end
    M.add(factory, M.guess_kind(resource) or "pipeline", resource, "<table>", problems)
    return
  end
  for key, list in pairs(t) do
    local kind = M.kind(key)
    if key == "globalParameters" then
      for k, v in pairs(list) do factory.global_parameters[k] = linked.protect(v) end
    elseif key == "name" then
      factory.name = list
    elseif not kind then
      problem(problems, "<table>", "$." .. tostring(key), "unknown resource kind '" .. tostring(key) .. "'")
    elseif L.is_array(list) then
      for _, r in ipairs(list) do M.add(factory, kind, r, "<table>", problems) end
    else
      for name, props in pairs(list) do
        local r = L.get(props, "properties") and props or {name = name, properties = props}
        if r.name == nil then r.name = name end
        M.add(factory, kind, r, "<table>", problems)
      end
    end
  end
end

return M
