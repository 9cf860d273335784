--- "Did you mean" hints: the known name one edit away from a misspelt one.
-- @module lufa.suggest

local M = {}

-- True when a and b (already lower case) differ by one insertion, deletion,
-- substitution or swap of neighbouring characters.
local function one_edit(a, b)
  if a == b then return false end
  local la, lb = #a, #b
  if math.abs(la - lb) > 1 then return false end
  if la == lb then
    local first
    for i = 1, la do
      if a:byte(i) ~= b:byte(i) then
        if not first then first = i
        elseif i == first + 1 and a:byte(first) == b:byte(i) and a:byte(i) == b:byte(first) and
            a:sub(i + 1) == b:sub(i + 1) then
          return true
        else
          -- Two substitutions, unless they form the swap checked above.
          return false
        end
      end
    end
    return true
  end
  if la > lb then a, b, la, lb = b, a, lb, la end
  -- b is a with one character inserted.
  local i = 1
  while i <= la and a:byte(i) == b:byte(i) do i = i + 1 end
  return a:sub(i) == b:sub(i + 1)
end
M.one_edit = one_edit

--- The candidate one edit away from `name` (letter case ignored), or nil.
-- @param name the unknown name
-- @param candidates a list of names, or a table whose values have a `name` field or whose keys are names
function M.closest(name, candidates)
  if type(name) ~= "string" then return nil end
  local want = name:lower()
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
    if type(c) == "string" and one_edit(want, c:lower()) then return c end
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
