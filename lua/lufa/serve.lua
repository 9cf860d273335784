--- `lufa serve`: run history and monitoring pages over a run store, on the event loop.
--   local app = serve.start{store = store, bind = "127.0.0.1", port = 0}   -- app.port, app.url, app:close()
-- Bound off loopback, a token is required (opts.token, else one is generated; app.url carries it); a token
-- given is required on loopback too.
-- @module lufa.serve
local lufa = require "lufa"
local options = require "lufa.options"
local server = require "lufa.server"
local actions = require "lufa.serve.actions"
local api = require "lufa.serve.api"
local assets = require "lufa.serve.assets"
local auth = require "lufa.serve.auth"
local http = require "lufa.serve.http"
local pages = require "lufa.serve.pages"
local router = require "lufa.serve.router"
local sse = require "lufa.serve.sse"

local M = {}

local App = {}
App.__index = App

--- Whether `address` is a loopback address (127.0.0.0/8 or ::1).
function M.is_loopback(address)
  return address == "::1" or address:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

local function run_page(app, req, id, notice)
  return pages.run(app, req, id, notice) or pages.not_found(app, "no run '" .. id .. "' in " .. app.store.path)
end

local function routes()
  local r = router.new()
  r:add("GET", "/", function() return http.redirect("/runs") end)
  r:add("GET", "/runs", pages.runs)
  r:add("GET", "/runs/([%w%-]+)", run_page)
  r:add("GET", "/runs/([%w%-]+)/events", function(app, req, id) return {stream = function(conn) sse.stream(app, conn, id) end} end)
  r:add("POST", "/runs/([%w%-]+)/cancel", function(app, req, id)
    local said, err = actions.cancel(app, id)
    local res = run_page(app, req, id, said or err)
    return res
  end)
  r:add("POST", "/runs/([%w%-]+)/rerun", function(app, req, id)
    local params = {}
    for k, v in pairs(req.form) do
      local name = k:match("^param%.(.+)$")
      if name and v ~= "" then params[name] = v end
    end
    local new_id, err = actions.rerun(app, id, {from_failure = req.form.from_failure == "1", parameters = params})
    if not new_id then
      local res = run_page(app, req, id, "rerun refused: " .. tostring(err))
      res.status = 409
      return res
    end
    return http.redirect("/runs/" .. new_id)
  end)
  r:add("GET", "/triggers", pages.triggers)
  r:add("POST", "/triggers/(start)", function(app, req, action)
    actions.trigger(app, req.form.scope, req.form.name, action)
    return http.redirect("/triggers")
  end)
  r:add("POST", "/triggers/(stop)", function(app, req, action)
    actions.trigger(app, req.form.scope, req.form.name, action)
    return http.redirect("/triggers")
  end)
  r:add("GET", "/assets/([%w%.%-]+)", function(_, _, name)
    if not assets.types[name] then return nil end
    return {status = 200, headers = {["Content-Type"] = assets.types[name], ["Cache-Control"] = "max-age=300"},
      body = assets[name]}
  end)
  r:add("GET", "/api/session", api.session)
  r:add("GET", "/api/runs", api.runs)
  r:add("GET", "/api/runs/([%w%-]+)", api.run)
  r:add("POST", "/api/runs/([%w%-]+)/cancel", api.cancel)
  r:add("POST", "/api/runs/([%w%-]+)/rerun", api.rerun)
  r:add("GET", "/api/triggers", api.triggers)
  r:add("POST", "/api/triggers/(start)", api.trigger)
  r:add("POST", "/api/triggers/(stop)", api.trigger)
  return r
end

function App:respond(req)
  http.prepare(req)
  local refused = auth.check(self, req)
  if refused then return refused end
  local handler, caps = self.router:find(req.method, req.path)
  if not handler then
    if caps == 405 then return http.text(405, "method not allowed") end
    if req.path:match("^/api/") then return api.problem(404, "no such resource") end
    return pages.not_found(self, "nothing at " .. req.path)
  end
  return handler(self, req, table.unpack(caps)) or pages.not_found(self, "nothing at " .. req.path)
end

function App:handle(req, conn)
  local ok, res = xpcall(self.respond, debug.traceback, self, req)
  if not ok then
    if self.log then self.log("request failed: " .. req.method .. " " .. req.target .. ": " .. tostring(res)) end
    res = http.text(500, "internal error: " .. tostring(res):match("^[^\n]*"))
  end
  if res.stream then return res.stream(conn) end
  if req.method == "HEAD" then res.body = "" end
  http.respond(conn, res)
end

--- Stops accepting; streams end at their next poll. Runs started from the pages go on (the caller waits).
function App:close()
  if self.closed then return end
  self.closed = true
  self.server:close()
end

--- Starts serving `opts.store` on `opts.bind` (default 127.0.0.1) port `opts.port` (0: any free one).
-- opts: `token` (required off loopback; generated when nil), `factories` (folders whose triggers to show),
-- `log` (function(line)).
-- @return app, or nil and a lufa.error
function M.start(opts)
  options.check(opts, { "store", "bind", "port", "token", "factories", "log" }, "serve.start", 2)
  local bind = opts.bind or "127.0.0.1"
  local srv, err = server.listen(bind, opts.port or 0)
  if not srv then return nil, err end
  local app = setmetatable({store = opts.store, server = srv, port = srv:port(), bind = bind,
    factories = opts.factories or {}, log = opts.log, handles = {}, streams = 0,
    csrf = auth.random_token(), router = routes()}, App)
  -- a token given is always required; off loopback one is required anyway
  app.token = opts.token or (not M.is_loopback(bind) and auth.random_token() or nil)
  local host = bind:find(":", 1, true) and ("[" .. bind .. "]") or bind
  if bind == "0.0.0.0" then host = "127.0.0.1" end
  if bind == "::" then host = "[::1]" end
  app.url = string.format("http://%s:%d/", host, app.port) .. (app.token and ("?token=" .. app.token) or "")
  app.task = lufa.spawn(function()
    while true do
      local req, conn = srv:accept()
      if not req then break end
      lufa.spawn(App.handle, app, req, conn)
    end
  end)
  return app
end

return M
