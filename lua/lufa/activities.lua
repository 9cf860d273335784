--- The activity-type registry: maps ADF activity `type` names to modules.
-- A module is a table with `run(ctx, activity)` and optionally `validate(activity, report)`,
-- `input(ctx, activity)` and `scopes(activity)` (see docs/extending.md).
-- Lookup order for a type name: types registered with `register` (exact name, then ignoring
-- case), modules found in user folders added with `add_folder`, then the module
-- `lufa.activities.<Type>` on the Lua path (built-ins and later additions such as
-- AzureMLBatchExecution). Registries can be layered: `new(parent)` makes one whose own
-- registrations shadow the parent's, e.g. for a single factory or a test.
-- @module lufa.activities

local Registry = {}
Registry.__index = Registry

local M = {}

--- The built-in types shipped with lufa (each is `lufa.activities.<Type>`).
M.BUILTIN = {
  "Wait", "SetVariable", "AppendVariable", "IfCondition", "Switch", "ForEach", "Until",
  "Filter", "Fail", "ExecutePipeline", "WebActivity",
}

local function check_module(type_name, mod)
  if type(mod) ~= "table" or type(mod.run) ~= "function" then
    error(string.format("activity type '%s': module must be a table with a run(ctx, activity) function",
      tostring(type_name)), 3)
  end
end

--- A new registry; lookups it cannot answer go to `parent` (default: the process-wide one).
function M.new(parent)
  return setmetatable({types = {}, lower = {}, folders = {}, cache = {}, parent = parent or M.root}, Registry)
end

--- Register (or replace) the module for an activity type.
-- @param type_name the ADF `type`, e.g. "AzureMLUpdateResource"
-- @param mod a module table, or the name of a module to `require`
function Registry:register(type_name, mod)
  if type(type_name) ~= "string" or type_name == "" then
    error("activity type name must be a non-empty string", 2)
  end
  if type(mod) == "string" then mod = require(mod) end
  check_module(type_name, mod)
  self.types[type_name] = mod
  self.lower[type_name:lower()] = type_name
  return mod
end

--- Remove a registration (the type then resolves as if never registered here).
function Registry:unregister(type_name)
  local canonical = self.lower[type_name:lower()]
  if canonical then
    self.types[canonical] = nil
    self.lower[type_name:lower()] = nil
  end
end

--- Add a folder whose `<Type>.lua` files define activity types (user extensions).
function Registry:add_folder(dir)
  self.folders[#self.folders + 1] = dir
  self.cache = {}
end

local function load_from_folder(dir, type_name)
  local path = dir .. "/" .. type_name .. ".lua"
  local f = io.open(path, "r")
  if not f then return nil end
  f:close()
  local chunk, err = loadfile(path)
  if not chunk then error(string.format("activity module %s: %s", path, err), 0) end
  local mod = chunk(type_name)
  check_module(type_name, mod)
  return mod
end

local function load_builtin(type_name)
  if not type_name:match("^[%w_]+$") then return nil end
  local name = "lufa.activities." .. type_name
  local ok, mod = pcall(require, name)
  if ok then
    check_module(type_name, mod)
    return mod
  end
  -- Only "module not found" means unknown; a broken module must say why.
  if type(mod) == "string" and mod:find("module '" .. name .. "' not found", 1, true) then
    return nil
  end
  error(mod, 0)
end

--- The module for an activity type, or nil when no module provides it.
-- @return module, canonical type name
function Registry:get(type_name)
  if type(type_name) ~= "string" then return nil end
  local mod = self.types[type_name]
  if mod then return mod, type_name end
  local canonical = self.lower[type_name:lower()]
  if canonical then return self.types[canonical], canonical end
  local cached = self.cache[type_name]
  if cached then return cached, type_name end
  for _, dir in ipairs(self.folders) do
    mod = load_from_folder(dir, type_name)
    if mod then
      self.cache[type_name] = mod
      return mod, type_name
    end
  end
  if self.parent then return self.parent:get(type_name) end
  return nil
end

--- The module lufa ships for a type (ignoring registrations), for wrappers that extend it.
function Registry.builtin(_, type_name)
  return load_builtin(type_name)
end

-- The root registry: registrations made through the module functions go here.
local root = M.new(nil)
local root_get = root.get
function root:get(type_name)
  local mod, canonical = root_get(self, type_name)
  if mod then return mod, canonical end
  mod = load_builtin(type_name)
  if mod then return mod, type_name end
  -- Built-ins are found by exact file name; also accept any letter case.
  if type(type_name) == "string" then
    for _, b in ipairs(M.BUILTIN) do
      if b:lower() == type_name:lower() then return load_builtin(b), b end
    end
  end
  return nil
end

M.root = root

--- Register a type in the process-wide registry (`require("lufa.activities").register(t, m)`).
function M.register(type_name, mod) return root:register(type_name, mod) end
--- Remove a process-wide registration.
function M.unregister(type_name) return root:unregister(type_name) end
--- Add a user folder of activity modules to the process-wide registry.
function M.add_folder(dir) return root:add_folder(dir) end
--- Look a type up in the process-wide registry.
function M.get(type_name) return root:get(type_name) end
--- The module lufa itself ships for a type (to wrap a built-in).
function M.builtin(type_name) return load_builtin(type_name) end

return M
