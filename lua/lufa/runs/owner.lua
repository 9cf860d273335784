--- Who executes a run: this process's identity, and whether a recorded owner is still alive.
-- An owner is `{host, pid, start, boot}`: the host name, the process id, the process's start time in clock
-- ticks since boot and the boot id, so a process id reused after the owner died (or after a reboot) is not
-- mistaken for the owner. Owners on other hosts are judged by their lease instead. The host is the
-- environment variable `LUFA_HOST_ID` when set (hosts of a fleet that share a host name, such as
-- containers, must each set their own), else the host name.
-- @module lufa.runs.owner
local M = {}

local function read(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Process id and start time from /proc/<pid>/stat (the command name may hold spaces and parentheses).
local function stat_of(pid)
  local s = read("/proc/" .. pid .. "/stat")
  if not s then return nil end
  local id, rest = s:match("^(%d+) %(.*%) (.*)$")
  if not id then return nil end
  local fields = {}
  for f in rest:gmatch("%S+") do fields[#fields + 1] = f end
  return tonumber(id), fields[20]  -- field 22 of the file: starttime
end

local me
--- This host's name in run records: `LUFA_HOST_ID`, else the host name.
function M.host_id()
  local id = os.getenv("LUFA_HOST_ID")
  if id and id ~= "" then return id end
  return ((read("/proc/sys/kernel/hostname") or "localhost"):gsub("%s+$", ""))
end

--- This process: `{host, pid, start, boot}`.
function M.self()
  if me then return me end
  local pid, start = stat_of("self")
  me = {host = M.host_id(), pid = pid or 0,
    start = start or "", boot = (read("/proc/sys/kernel/random/boot_id") or ""):gsub("%s+$", "")}
  return me
end

--- Whether `owner` (as recorded) is this very process.
function M.is_self(owner)
  local s = M.self()
  return owner ~= nil and owner.host == s.host and owner.pid == s.pid and owner.start == s.start
end

--- Whether the recorded owner is alive: "yes", "no", or "unknown" (another host: ask its lease).
function M.alive(owner)
  if type(owner) ~= "table" or not owner.pid then return "no" end
  local s = M.self()
  if owner.host ~= s.host then return "unknown" end
  if owner.boot ~= s.boot then return "no" end
  local _, start = stat_of(owner.pid)
  return start ~= nil and start == owner.start and "yes" or "no"
end

--- "pid 123 on host h" for messages.
function M.describe(owner)
  if type(owner) ~= "table" then return "no process" end
  return string.format("process %s on host %s", tostring(owner.pid), tostring(owner.host))
end

return M
