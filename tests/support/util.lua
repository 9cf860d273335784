--- Small helpers shared by the specs and the test support modules.
local lufa = require "lufa"

local util = {}

--- Quotes a string for /bin/sh.
function util.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- The whole file, or nil when it cannot be read.
function util.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("a")
  f:close()
  return data
end

function util.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

--- Loops with lufa.sleep until pred() holds; the limit is a safety net against hanging, not an assertion.
function util.wait_until(pred, limit)
  local deadline = lufa.now() + (limit or 10)
  while not pred() do
    if lufa.now() > deadline then error("condition not reached in " .. (limit or 10) .. " s", 2) end
    lufa.sleep(0.005)
  end
end

return util
