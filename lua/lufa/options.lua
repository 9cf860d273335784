--- Option tables that cannot be misspelt: a key lufa does not know is an error naming the nearest known
-- one, never silently ignored (`timout = 5` would otherwise mean "no timeout").
--
--   options.check(opts, {"url", "timeout"}, "lufa.http.request")
--   --> error: lufa.http.request: unknown option 'timout' (did you mean 'timeout'?)
--
-- @module lufa.options
local M = {}

--- The edit distance between two strings (insertions, deletions, substitutions, adjacent swaps).
function M.distance(a, b)
  local la, lb = #a, #b
  local prev2, prev, cur = nil, {}, nil
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur = {[0] = i}
    local ca = a:byte(i)
    for j = 1, lb do
      local cb = b:byte(j)
      local cost = ca == cb and 0 or 1
      local d = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if prev2 and i > 1 and j > 1 and ca == b:byte(j - 1) and a:byte(i - 1) == cb then
        d = math.min(d, prev2[j - 2] + 1)
      end
      cur[j] = d
    end
    prev2, prev = prev, cur
  end
  return prev[lb]
end

--- The known word nearest to `word` (ignoring case), if it is near enough to be a slip of the keyboard.
function M.nearest(word, known)
  local best, best_d
  local w = tostring(word):lower()
  for _, k in ipairs(known) do
    local d = M.distance(w, k:lower())
    if d < (best_d or math.huge) then best, best_d = k, d end
  end
  if best and best_d <= math.max(1, math.min(3, #w // 3)) then return best end
  return nil
end

local function sorted_list(known)
  local list = {}
  for k, v in pairs(known) do list[#list + 1] = type(k) == "number" and v or k end
  table.sort(list)
  return list
end

--- Raises an error (at `level`, default: the caller's caller) when `opts` holds a key not in `known`
-- (a list or a set of names).
function M.check(opts, known, what, level)
  local set = {}
  local list = sorted_list(known)
  for _, k in ipairs(list) do set[k] = true end
  for k in pairs(opts) do
    if not set[k] then
      local msg
      if type(k) ~= "string" then
        msg = string.format("%s: options are named, got a %s key (%s)", what, type(k), tostring(k))
      else
        local near = M.nearest(k, list)
        msg = string.format("%s: unknown option '%s' (%s)", what, k,
          near and ("did you mean '" .. near .. "'?") or ("known options: " .. table.concat(list, ", ")))
      end
      error(msg, (level or 2) + 1)
    end
  end
  return opts
end

return M
