--- Starts and stops a throw-away PostgreSQL server for tests: initdb into a temporary folder, postgres on a
-- free loopback port with its unix socket in that folder, password authentication over TCP.
-- The binaries are Debian's (`postgresql`, /usr/lib/postgresql/VERSION/bin). As root (CI), the server runs
-- as the `postgres` user, which PostgreSQL requires.
--
--   local pg = require "tests.support.postgres"
--   local server = pg.start()
--   local url = server:database()          -- a fresh database: postgresql://lufa:PASSWORD@127.0.0.1:PORT/dbN
--   server:stop()
local lufa = require "lufa"
local util = require "tests.support.util"

local M = {}

local q = util.shell_quote

--- The folder of the newest installed PostgreSQL's binaries, or nil and why not.
function M.bin_dir()
  local p = io.popen("ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1")
  local dir = p:read("l")
  p:close()
  if not dir or dir == "" then
    return nil, "no PostgreSQL server under /usr/lib/postgresql/*/bin (scripts/deps installs Debian's postgresql)"
  end
  return dir
end

local function is_root()
  local p = io.popen("id -u")
  local id = p:read("l")
  p:close()
  return id == "0"
end

-- A shell command line that runs argv as the server's user.
local function as_server_user(cmd)
  if is_root() then return "runuser -u postgres -- " .. cmd end
  return cmd
end

local function run(cmd)
  local ok = os.execute(cmd)
  return ok
end

local function random_hex(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(n)
  f:close()
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local Server = {}
Server.__index = Server

--- Starts a server. @return a server {port, password, dir, url(db), database(), stop()}; raises when it
-- cannot (so a test that needs PostgreSQL fails rather than skips).
function M.start()
  local bin = assert(M.bin_dir())
  local dir = util.tempdir()
  local root = is_root()
  if root then assert(run("chown postgres " .. q(dir)), "cannot give " .. dir .. " to the postgres user") end
  local password = random_hex(12)
  local pwfile = dir .. "/pw"
  util.write_file(pwfile, password .. "\n")
  if root then run("chown postgres " .. q(pwfile)) end
  local log = dir .. "/initdb.log"
  if not run(as_server_user(string.format("%s/initdb -D %s -U lufa --pwfile=%s --auth-local=trust " ..
      "--auth-host=scram-sha-256 -E UTF8 --no-sync >%s 2>&1", bin, q(dir .. "/data"), q(pwfile), q(log)))) then
    error("initdb failed:\n" .. (util.read_file(log) or ""), 2)
  end
  os.remove(pwfile)
  local self = setmetatable({dir = dir, bin = bin, password = password, n = 0}, Server)
  -- a port that is free now may be taken before postgres binds it: then another one
  for _ = 1, 10 do
    local port = math.random(20000, 60000)
    local server_log = dir .. "/server.log"
    local opts = string.format("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off " ..
      "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", port, dir)
    if run(as_server_user(string.format("%s/pg_ctl -D %s -l %s -w -t 60 -o %s start >/dev/null 2>&1", bin,
        q(dir .. "/data"), q(server_log), q(opts)))) then
      self.port = port
      return self
    end
    local text = util.read_file(server_log) or ""
    if not text:find("in use", 1, true) then
      os.execute("rm -rf " .. q(dir))
      error("PostgreSQL did not start:\n" .. text, 2)
    end
  end
  os.execute("rm -rf " .. q(dir))
  error("PostgreSQL found no free port", 2)
end

--- The URL of database `db` on this server, with the password.
function Server:url(db)
  return string.format("postgresql://lufa:%s@127.0.0.1:%d/%s", self.password, self.port, db)
end

--- Creates a new empty database; @return its URL.
function Server:database()
  self.n = self.n + 1
  local name = "db" .. self.n
  local postgres = require "lufa.postgres"
  local conn = assert(postgres.connect{host = "127.0.0.1", port = self.port, user = "lufa", dbname = "postgres",
    password = self.password})
  conn:exec("CREATE DATABASE " .. name)  -- a name made here, not input: no parameter possible for it
  conn:close()
  return self:url(name), name
end

--- Stops the server (immediately: nothing in it is kept) and removes its folder.
function Server:stop()
  if not self.dir then return end
  run(as_server_user(string.format("%s/pg_ctl -D %s -m immediate -w stop >/dev/null 2>&1", self.bin,
    q(self.dir .. "/data"))))
  os.execute("rm -rf " .. q(self.dir))
  self.dir = nil
end

-- Ports drawn by processes started at the same moment should differ.
math.randomseed(math.floor(lufa.now() * 1e6) ~ util.own_pid())

return M
