---@meta lufa.server
--- A small HTTP/1.1 server on the event loop (host/server.c), under `lufa serve`. C answers malformed or
--- oversized requests itself (400, 408, 413, 414, 431, 501, 505) without waking Lua; one request is read per
--- connection, so answer with `Connection: close`. See docs/api/server.md.
---
--- Example:
--- ```lua
--- local lufa = require "lufa"
--- local server = require "lufa.server"
--- local srv = assert(server.listen("127.0.0.1", 0))
--- lufa.spawn(function()
---   local req, conn = srv:accept()
---   local body = "hello " .. req.target
---   conn:send("HTTP/1.1 200 OK\r\nContent-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body)
---   conn:close()
---   srv:close()
--- end)
--- local res = require("lufa.http").request { url = "http://127.0.0.1:" .. srv:port() .. "/x", timeout = 10,
---   no_proxy = true }
--- print(res.status, res.body)
--- ```
--- ```text output
--- 200	hello /x
--- ```

---@class lufa.server
local server = {}

---@class lufa.server.Request
---@field method string
---@field target string as sent, e.g. "/runs?status=Failed"
---@field version string e.g. "1.1"
---@field headers table<string, string> lower-case names; repeated fields joined with ", "
---@field body string
---@field peer string the client's address

--- Listens on a numeric IPv4 or IPv6 address (port 0: any free one) without blocking the loop; while it
--- listens the loop keeps running.
--- Errors: `nil, err` (kind "server", code "address", "in_use" or "listen").
---@param address string
---@param port integer
---@return lufa.server.listener|nil srv
---@return lufa.error? err
function server.listen(address, port) end

--- A listening server (`server.listen`).
---@class lufa.server.listener
local listener = {}

--- Waits, without blocking other tasks, for the next complete request on any connection; one task may wait
--- at a time.
---@async
---@return lufa.server.Request|nil request nil once the server is closed
---@return lufa.server.conn conn
function listener:accept() end

--- The port listened on.
---@nodiscard
---@return integer
function listener:port() end

--- Stops listening; connections not yet accepted are closed.
function listener:close() end

--- A client connection from `accept`.
---@class lufa.server.conn
local conn = {}

--- Sends bytes as they are (the status line and header fields too); waits while the socket's buffer is full.
--- Errors: `nil, err` (code "send") when the client has gone.
---@async
---@param bytes string
---@return true|nil ok
---@return lufa.error? err
function conn:send(bytes) end

--- Closes the connection.
function conn:close() end

--- The client's address.
---@nodiscard
---@return string
function conn:peer() end

return server
