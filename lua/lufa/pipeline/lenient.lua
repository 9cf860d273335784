--- Lenient reading of ADF JSON, as ADF itself reads it.
-- Property names match without regard to letter case (exact match wins),
-- booleans may be written as "true"/"false", integers as numeric strings,
-- and enumeration values match in any case.
-- @module lufa.pipeline.lenient
local json = require "lufa.json"

local M = {}

--- Read property `name` of object `t` and the key it was found under: exact key first,
-- then any key equal ignoring case.
-- @param t a table (anything else gives nil)
-- @param name the property name
-- @return the value (nil when absent or JSON null) and the key actually used
function M.lookup(t, name)
  if type(t) ~= "table" or t == json.null then return nil end
  local v = t[name]
  if v ~= nil then
    if v == json.null then return nil, name end
    return v, name
  end
  local lower = name:lower()
  for k, x in pairs(t) do
    if type(k) == "string" and k:lower() == lower then
      if x == json.null then return nil, k end
      return x, k
    end
  end
  return nil
end

--- Read property `name` of object `t` (exactly one result, so it can end an argument list).
function M.get(t, name)
  return (M.lookup(t, name))
end

--- Follow a chain of property names leniently (`M.dig(t, "properties", "activities")`).
function M.dig(t, ...)
  for i = 1, select("#", ...) do
    t = M.get(t, (select(i, ...)))
    if t == nil then return nil end
  end
  return t
end

--- A boolean from `true`/`false` or the strings "true"/"false" (any case).
-- @return the boolean, or nil and a reason when `v` is not boolean-like
function M.bool(v)
  if type(v) == "boolean" then return v end
  if type(v) == "string" then
    local l = v:lower()
    if l == "true" then return true elseif l == "false" then return false end
  end
  return nil, "expected true or false"
end

--- An integer from a number with no fraction or a numeric string.
function M.int(v)
  if type(v) == "string" then v = tonumber((v:gsub("^%s+", ""):gsub("%s+$", ""))) end
  if type(v) == "number" then
    local i = math.tointeger(v)
    if i then return i end
  end
  return nil, "expected an integer"
end

--- A number (integer or float) from a number or numeric string.
function M.number(v)
  if type(v) == "string" then v = tonumber(v) end
  if type(v) == "number" then return v end
  return nil, "expected a number"
end

--- Match `v` against a list of enumeration values ignoring case.
-- @return the canonical spelling from `choices`, or nil
function M.enum(v, choices)
  if type(v) ~= "string" then return nil end
  local l = v:lower()
  for _, c in ipairs(choices) do
    if c:lower() == l then return c end
  end
  return nil
end

--- Parse a .NET TimeSpan `[d.]hh:mm:ss[.fffffff]` into seconds.
-- Fractions are accepted so that short timeouts can be written (`00:00:00.050`).
-- @return seconds (number) or nil and a reason
function M.timespan(v)
  if type(v) ~= "string" then return nil, "expected a string of the form d.hh:mm:ss" end
  local days, rest = v:match("^(%d+)%.(%d%d?:.*)$")
  if not days then days, rest = "0", v end
  local h, m, s, frac = rest:match("^(%d%d?):(%d%d):(%d%d)(%.?%d*)$")
  if not h then return nil, "expected d.hh:mm:ss (for example 0.12:00:00), got '" .. v .. "'" end
  h, m, s = tonumber(h), tonumber(m), tonumber(s)
  if h > 23 or m > 59 or s > 59 then
    return nil, "hours must be 0-23 and minutes and seconds 0-59 in '" .. v .. "'"
  end
  if frac == "." then return nil, "expected digits after the '.' in '" .. v .. "'" end
  local f = frac ~= "" and tonumber("0" .. frac) or 0
  return tonumber(days) * 86400 + h * 3600 + m * 60 + s + f
end

--- Whether `v` is a JSON array (marked, or a plain sequence).
function M.is_array(v)
  return type(v) == "table" and json.type(v) == "array"
end

--- Whether `v` is a JSON object (marked, or a plain table with string keys).
function M.is_object(v)
  return type(v) == "table" and v ~= json.null and json.type(v) == "object"
end

--- Iterate a JSON array (nil or a non-array gives no items).
function M.items(v)
  if type(v) ~= "table" or v == json.null or (next(v) ~= nil and not M.is_array(v)) then
    return function() return nil end
  end
  return ipairs(v)
end

return M
