--- What a deployment would change: each resource of the template against what the factory in Azure
-- holds, as JSON paths with the old and new value. Secrets are compared by neither side (Azure never
-- returns them) and never shown.
-- @module lufa.publish.diff
local json = require "lufa.json"
local secret = require "lufa.secret"

local M = {}

M.MASK = "**********"
local MAX_VALUE = 160

local function is_object(v) return type(v) == "table" and v ~= json.null and json.type(v) == "object" end
local function is_array(v) return type(v) == "table" and v ~= json.null and json.type(v) == "array" end

local function show(v)
  if v == nil then return "(absent)" end
  if secret.is(v) then return M.MASK end
  local s = json.encode(v, {sort_keys = true})
  if #s > MAX_VALUE then s = s:sub(1, MAX_VALUE - 3) .. "..." end
  return s
end

-- A copy of `v` with the value at each `paths` entry ("typeProperties.apiKey", under properties) masked.
local function masked(v, paths)
  if type(v) ~= "table" then return v end
  local function copy(x)
    if type(x) ~= "table" or x == json.null or secret.is(x) then return x end
    local c = {}
    for k, y in pairs(x) do c[k] = copy(y) end
    return setmetatable(c, getmetatable(x))
  end
  local out = copy(v)
  for _, p in ipairs(paths) do
    local t = out
    local keys = {}
    for k in p:gmatch("[^.]+") do keys[#keys + 1] = k end
    for i = 1, #keys - 1 do
      t = type(t) == "table" and t[keys[i]] or nil
    end
    if type(t) == "table" and t[keys[#keys]] ~= nil then
      local leaf = t[keys[#keys]]
      if is_object(leaf) and leaf.value ~= nil then
        leaf.value = M.MASK
      else
        t[keys[#keys]] = M.MASK
      end
    end
  end
  return out
end

local function same(a, b)
  if secret.is(a) or secret.is(b) then return secret.is(a) and secret.is(b) end
  return json.encode(a, {sort_keys = true}) == json.encode(b, {sort_keys = true})
end

local function walk(old, new, path, out)
  if same(old, new) then return end
  if is_object(old) and is_object(new) then
    local keys, seen = {}, {}
    for k in pairs(old) do keys[#keys + 1] = k; seen[k] = true end
    for k in pairs(new) do if not seen[k] then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do walk(old[k], new[k], path .. "." .. k, out) end
  elseif is_array(old) and is_array(new) and #old == #new then
    for i = 1, #old do walk(old[i], new[i], string.format("%s[%d]", path, i - 1), out) end
  else
    out[#out + 1] = {path = path, old = old, new = new}
  end
end

--- The differences between the properties Azure holds and the properties to deploy.
-- @param remote the `properties` GET returned (nil when the resource does not exist)
-- @param desired the `properties` to PUT
-- @param secret_paths paths under properties whose values are secrets
-- @return list of `{path, old, new}` (empty when nothing changes); nil for a new resource
function M.properties(remote, desired, secret_paths)
  if remote == nil then return nil end
  local out = {}
  walk(masked(remote, secret_paths or {}), masked(desired, secret_paths or {}), "$.properties", out)
  return out
end

--- Text lines for one resource: "+ kind name (new)", "~ kind name" with one line per change, or
-- "= kind name (unchanged)".
function M.format(kind, name, changes)
  if changes == nil then return string.format("+ %s %s (new)\n", kind, name) end
  if #changes == 0 then return string.format("= %s %s (unchanged)\n", kind, name) end
  local lines = {string.format("~ %s %s (%d change(s))", kind, name, #changes)}
  for _, c in ipairs(changes) do
    lines[#lines + 1] = string.format("    %s: %s -> %s", c.path, show(c.old), show(c.new))
  end
  return table.concat(lines, "\n") .. "\n"
end

return M
