--- `lufa serve [FACTORY...] [--store PATH] [--port N] [--bind ADDRESS] [--token T]`: the run history and
-- monitoring pages (lufa.serve) until SIGINT or SIGTERM; each FACTORY folder's triggers are listed too.
-- @module lufa.cli.serve
local lufa = require "lufa"
local serve = require "lufa.serve"
local view = require "lufa.cli.view"
local stdout, stderr = view.out, view.err

local M = {}

function M.serve(o, ctx)
  local port = 8470
  if o.port then
    port = math.tointeger(tonumber(o.port))
    if not port or port < 0 or port > 65535 then return ctx.die("--port expects a port number 0..65535, got '%s'", o.port) end
  end
  local bind = o.bind or "127.0.0.1"
  if o.token and #o.token < 16 then return ctx.die("--token must be at least 16 characters") end
  local store, serr = ctx.open_store(o, true)
  if not store then return ctx.die("%s", serr) end
  local factories = {}
  for i, f in ipairs(o) do
    local factory = ctx.load(f, o)
    if not factory then return 2 end
    factories[i] = factory.origin.factory
  end
  local app, err = serve.start{store = store, bind = bind, port = port, token = o.token, factories = factories,
    log = function(line) stderr("lufa serve: ", line, "\n") end}
  if not app then return ctx.die("%s", tostring(err)) end
  if app.token and not o.token then
    stderr("lufa serve: bound to ", bind, ", so every request needs the access token; open the address below once\n")
  end
  stdout("lufa serve: ", store.path, " at ", app.url, "\n")
  io.stdout:flush()
  lufa.on_interrupt(function(name)
    stderr("lufa serve: ", name, ": stopping\n")
    app:close()
    for _, handle in pairs(app.handles) do handle:cancel(name) end
  end)
  app.task:wait()
  for _, handle in pairs(app.handles) do handle:wait() end
  lufa.on_interrupt(nil)
  store:close()
  return 0
end

return M
