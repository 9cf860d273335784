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

--- A new private (0700) temporary directory.
function util.tempdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -m 700 " .. util.shell_quote(p)), "cannot create " .. p)
  return p
end

--- The id of this lufa process (servers started by tests exit when it is gone).
function util.own_pid()
  return tonumber(util.read_file("/proc/self/stat"):match("^(%d+)"))
end

--- The lufa binary running this file, so child processes are the build under test.
function util.lufa_binary()
  local p = assert(io.popen("readlink /proc/" .. util.own_pid() .. "/exe"))
  local path = p:read("l")
  p:close()
  return path
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
