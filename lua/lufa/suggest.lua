--- "Did you mean" hints for names in factories and expressions: the known name one edit away
-- (an insertion, deletion, substitution or swap of neighbours, letter case ignored) from a misspelt
-- one. The distance is lufa.options's; the threshold is tighter, since these are names, not options.
-- @module lufa.suggest
local options = require "lufa.options"

local M = {}

--- True when a and b differ by exactly one edit (letter case ignored).
function M.one_edit(a, b)
  return options.distance(a:lower(), b:lower()) == 1
end

--- The candidate one edit away from `name`, or nil.
-- @param name the unknown name
-- @param candidates a list of names (or of tables with a `name`), or a table whose values have a `name`
--   field or whose keys are names
function M.closest(name, candidates)
  if type(name) ~= "string" then return nil end
  local list = {}
  if #candidates > 0 then
    list = candidates
  else
    for k, v in pairs(candidates) do
      list[#list + 1] = type(v) == "table" and v.name or (type(k) == "string" and k) or nil
    end
    table.sort(list)
  end
  for _, c in ipairs(list) do
    if type(c) == "table" then c = c.name end
    if type(c) == "string" and M.one_edit(name, c) then return c end
  end
  return nil
end

--- " (did you mean 'x'?)" or "".
function M.hint(name, candidates)
  local c = M.closest(name, candidates)
  if c then return " (did you mean '" .. c .. "'?)" end
  return ""
end

return M
