---@meta lufa.systemd
--- Readiness notification for the service manager (host/systemd.c). See docs/api/systemd.md.
---
--- Example:
--- ```lua fragment
--- local systemd = require "lufa.systemd"
--- local sent, err = systemd.notify("READY=1\nSTATUS=scheduling 3 triggers")   -- false when not under systemd
--- if sent == nil then io.stderr:write("cannot notify the service manager: ", tostring(err), "\n") end
--- ```

---@class lufa.systemd
local systemd = {}

--- Sends `state` (lines of the sd_notify protocol: `READY=1`, `STOPPING=1`, `STATUS=...`) as one datagram to
--- the socket named by NOTIFY_SOCKET (a path, or an abstract socket written `@name`).
--- Errors: `nil, err` (kind "systemd", code "EINVAL" for a NOTIFY_SOCKET that is not a socket path, "send"
--- when the datagram cannot be sent).
---@param state string
---@return boolean|nil sent true, or false without NOTIFY_SOCKET (not under systemd)
---@return lufa.error? err
function systemd.notify(state) end

return systemd
