--- Starts and stops tests/support/httpd.mjs for specs: a local HTTP(S) server on a free loopback port.
-- Run specs from the repository root; `require "tests.support.server"` finds this file there.
--
--   local server = require "tests.support.server"
--   local srv = server.start()            -- or server.start{tls = true}
--   local res = http.request{url = srv.url .. "/echo"}
--   srv:stop()
--
-- The server watches this process and exits when it is gone, so a crashed spec leaves nothing behind.
local lufa = require "lufa"
local http = require "lufa.http"

local server = {}

local ok_json, json = pcall(require, "lufa.json")
if not ok_json then json = require "cjson" end

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local HTTPD = here .. "/httpd.mjs"

local util = require "tests.support.util"
local shell_quote = util.shell_quote

local read_file = util.read_file
server.own_pid = util.own_pid

--- Decodes a JSON body from the test server.
function server.decode(text)
  local v, err = json.decode(text)
  if v == nil then error("test server sent invalid JSON: " .. tostring(err) .. ": " .. tostring(text), 2) end
  return v
end

local Server = {}
Server.__index = Server

--- Starts a server. opts.tls: serve HTTPS with a CA made now (srv.ca_file); with opts.self_signed too, a
-- single self-signed certificate instead (srv.ca_file is that certificate).
-- opts.timeout: seconds to wait for it to listen (default 20, a safety net only).
-- @return a server object {url, port, pid, ca_file, tls}
function server.start(opts)
  opts = opts or {}
  local base = os.tmpname()  -- a fresh private name; the server writes BASE.port, logs to BASE.log
  local port_file, log_file = base .. ".port", base .. ".log"
  local cmd = string.format("%s %s --port-file %s --parent-pid %d%s >%s 2>&1 </dev/null &",
    os.getenv("NODE") or "node", shell_quote(HTTPD), shell_quote(port_file), server.own_pid(),
    (opts.tls and (opts.self_signed and " --tls --self-signed" or " --tls") or "") ..
      (opts.max_tls and (" --max-tls " .. shell_quote(opts.max_tls)) or ""), shell_quote(log_file))
  if not os.execute(cmd) then error("cannot start the test server: " .. cmd, 2) end
  local deadline = lufa.now() + (opts.timeout or 20)
  local info
  while true do
    local text = read_file(port_file)
    if text and text:find("\n") then
      info = server.decode(text)
      break
    end
    if lufa.now() > deadline then
      local log = read_file(log_file) or ""
      os.remove(base)
      error("the test server did not start within " .. (opts.timeout or 20) .. " s; its output:\n" .. log, 2)
    end
    lufa.sleep(0.02)
  end
  os.remove(port_file)
  local srv = setmetatable({
    url = info.url, port = info.port, pid = info.pid, tls = info.tls,
    ca_file = info.ca_file ~= json.null and info.ca_file or nil,
    base = base, log_file = log_file,
  }, Server)
  return srv
end

--- Request options for path on this server (ca_file set for TLS), merged with extra.
function Server:opts(path, extra)
  local o = { url = self.url .. path, ca_file = self.ca_file }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

--- GET path and decode its JSON body; raises when the request fails.
function Server:json(path, extra)
  local res, err = http.request(self:opts(path, extra))
  if not res then error("test server request " .. path .. " failed: " .. tostring(err), 2) end
  if res.status ~= 200 then error("test server " .. path .. " answered " .. res.status .. ": " .. res.body, 2) end
  return server.decode(res.body)
end

--- The server's counters: {requests, connections, in_flight, max_in_flight, groups}.
function Server:stats(group)
  return self:json(group and ("/stats?group=" .. group) or "/stats")
end

--- What the server wrote to stdout/stderr so far.
function Server:log()
  return read_file(self.log_file) or ""
end

--- Stops the server (SIGTERM) and removes its files. Safe to call twice.
function Server:stop()
  if self.pid then
    os.execute("kill " .. math.tointeger(self.pid) .. " 2>/dev/null")
    self.pid = nil
  end
  os.remove(self.log_file)
  os.remove(self.base)
end

return server
