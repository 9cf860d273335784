--- The environment a plugin's code runs in (host/plugin.c builds one per load and reload).
--
-- Each plugin has its own Lua state, so what it changes cannot reach another plugin; this module decides
-- what the plugin's code can reach inside its own state. It runs as trusted code with the full standard
-- library; the environment it returns holds only curated globals, copies of the libraries (so the plugin
-- cannot change what lufa's own modules call) and a `require` limited to:
--   * the lufa modules allowed (shallow copies, without the functions that would block, take over the
--     process or read files: lufa.run, lufa.on_interrupt, lufa.json.decode_file); a module the host adds
--     to the list is given whole, with whatever it can reach,
--   * the capabilities the host granted: `lufa.http` to the listed hosts, `lufa.fs` confined to a folder,
--   * .lua files in the plugin's own folder, loaded as text into the same environment.
-- @module lufa.plugin.sandbox
local M = {}

local DEFAULT_MODULES = { "lufa", "lufa.json", "lufa.error", "lufa.redact" }
-- What the default modules hold beyond a plugin's reach: the loop's driver, signal handlers, file reading.
local WITHHELD = { lufa = { run = true, on_interrupt = true }, ["lufa.json"] = { decode_file = true } }
local BASE = { "assert", "error", "ipairs", "next", "pairs", "print", "rawequal", "rawget", "rawlen",
  "rawset", "select", "tonumber", "tostring", "type", "_VERSION" }
local LIBRARIES = { "string", "table", "math", "utf8", "coroutine" }
local OS = { "clock", "date", "difftime", "time" }
-- Request options a plugin may set: no file on either side, no redirects (they could leave the allowed hosts).
local HTTP_OPTIONS = { method = true, url = true, headers = true, body = true, timeout = true,
  connect_timeout = true, low_speed_time = true, max_body = true, tls_verify = true, body_parts = true }

local real_require, real_load, real_getmetatable, real_setmetatable = require, load, getmetatable, setmetatable

local function copy(t, withheld)
  local c = {}
  for k, v in pairs(t) do
    if not (withheld and withheld[k]) then c[k] = v end
  end
  return c
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list or {}) do s[v] = true end
  return s
end

--- The host part of an http(s) URL, lowercased, or nil.
function M.url_host(url)
  if type(url) ~= "string" then return nil end
  local scheme, authority = url:match("^(%a[%w+.-]*)://([^/?#]*)")
  if not scheme or not (scheme:lower() == "http" or scheme:lower() == "https") then return nil end
  authority = authority:gsub("^.*@", "")
  local host = authority:match("^%[([^%]]*)%]") or authority:gsub(":%d*$", "")
  if host == "" then return nil end
  return host:lower()
end

-- `lufa.http` for a plugin: every request is checked against the allowed hosts before it is sent.
local function http_capability(profile)
  local http = real_require "lufa.http"
  local hosts = {}
  for _, h in ipairs(profile.http_hosts) do hosts[h:lower()] = true end
  local max_body = profile.memory_limit
  local function checked(opts, level)
    if type(opts) ~= "table" then
      error("bad argument #1 to 'request' (table expected, got " .. type(opts) .. ")", level)
    end
    local clean = {}
    for k, v in pairs(opts) do
      if not HTTP_OPTIONS[k] then
        error(("request option '%s' is not available to plugin '%s'"):format(tostring(k), profile.name), level)
      end
      clean[k] = v
    end
    local host = M.url_host(opts.url)
    if not host then
      error(("bad request url %q: an http:// or https:// URL expected"):format(tostring(opts.url)), level)
    end
    if not hosts[host] then
      error(("plugin '%s' may not reach host '%s'"):format(profile.name, host), level)
    end
    if max_body and (clean.max_body == nil or clean.max_body > max_body) then clean.max_body = max_body end
    return clean
  end
  local m = copy(http)
  m.defaults = nil
  function m.request(opts) return http.request(checked(opts, 3)) end
  function m.request_with_retry(opts, policy) return http.request_with_retry(checked(opts, 3), policy) end
  return m
end

-- `lufa.fs` for a plugin: paths are relative to the data folder and may not climb out of it.
local function fs_capability(profile)
  local fs = real_require "lufa.fs"
  local root = profile.data_dir:gsub("/+$", "")
  local function inside(path)
    if type(path) ~= "string" then
      error("bad path (string expected, got " .. type(path) .. ")", 3)
    end
    if path:sub(1, 1) == "/" or path:find("%z") then
      error(("path '%s' must be relative to the plugin's data folder"):format(path), 3)
    end
    for part in path:gmatch("[^/]+") do
      if part == ".." then error(("path '%s' may not leave the plugin's data folder"):format(path), 3) end
    end
    local full = (path == "" or path == ".") and root or root .. "/" .. path
    -- Symbolic links already in the folder must not lead out of it: what exists of the path is resolved
    -- (a link that resolves to nothing, which a write would follow, is refused outright) and must stay
    -- below the resolved folder. The plugin itself can make no link.
    local real_root = fs.realpath(root)
    if real_root then
      local probe = full
      while #probe >= #root do
        local resolved = fs.realpath(probe)
        if resolved then
          if resolved ~= real_root and resolved:sub(1, #real_root + 1) ~= real_root .. "/" then
            error(("path '%s' leads out of the plugin's data folder (through a symbolic link)"):format(path), 3)
          end
          break
        end
        if fs.lstat(probe) then
          error(("path '%s' leads out of the plugin's data folder (through a symbolic link)"):format(path), 3)
        end
        probe = probe:match("^(.*)/[^/]*$") or ""
      end
    end
    return full
  end
  local m = {}
  for _, name in ipairs { "list", "stat", "lstat", "is_dir", "is_file", "mkdir", "remove", "read_file",
    "write_file" } do
    local f = fs[name]
    m[name] = function(path, ...) return f(inside(path), ...) end
  end
  function m.rename(from, to) return fs.rename(inside(from), inside(to)) end
  return m
end

--- A new environment for a plugin.
-- @tparam table profile `name`, `folder` (where its own modules live, or nil), `modules` (extra lufa modules
--   allowed), `http_hosts` (nil: no HTTP), `data_dir` (nil: no fs), `memory_limit` (bytes), and from
--   host/plugin.c the versions of `pcall`, `xpcall`, `coroutine_resume`, `coroutine_wrap` and
--   `coroutine_close` that respect a stop
-- @treturn table the environment, whose globals the plugin's chunk sees
function M.new(profile)
  local env = {}
  for _, name in ipairs(BASE) do env[name] = _G[name] end
  for _, name in ipairs(LIBRARIES) do env[name] = copy(_G[name]) end
  env.string.dump = nil
  env.pcall, env.xpcall = profile.pcall, profile.xpcall
  env.coroutine.resume = profile.coroutine_resume
  env.coroutine.wrap = profile.coroutine_wrap
  env.coroutine.close = profile.coroutine_close
  env.os = {}
  for _, name in ipairs(OS) do env.os[name] = os[name] end
  env._G = env

  --- Metatables of tables only: the string metatable (shared by every string) stays out of reach.
  function env.getmetatable(v)
    if type(v) ~= "table" then return nil end
    return real_getmetatable(v)
  end

  --- No finalizers: Lua runs __gc with hooks off, where no budget could stop it.
  function env.setmetatable(t, mt)
    if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
      error("__gc metamethods are not available to plugins", 2)
    end
    return real_setmetatable(t, mt)
  end

  --- Text chunks only; they run in this environment unless given another.
  function env.load(chunk, name, mode, chunk_env)
    if mode ~= nil and mode ~= "t" then
      error(("load mode '%s' is not available to plugins (text chunks only)"):format(tostring(mode)), 2)
    end
    return real_load(chunk, name, "t", chunk_env or env)
  end

  function env.collectgarbage(opt, ...)
    if opt == "count" then return collectgarbage("count") end
    error(("collectgarbage('%s') is not available to plugins"):format(tostring(opt or "collect")), 2)
  end

  local allowed = set_of(DEFAULT_MODULES)
  for _, name in ipairs(profile.modules or {}) do allowed[name] = true end
  local capabilities = {}
  if profile.http_hosts then capabilities["lufa.http"] = http_capability end
  if profile.data_dir then capabilities["lufa.fs"] = fs_capability end
  local loaded = {}

  local function from_folder(name)
    if not profile.folder then return nil end
    if not name:match("^[%w_][%w_.-]*$") or name:find("%.%.") or name:find("%.$") then
      error(("bad module name '%s' (letters, digits, '_', '-' and '.' between them expected)"):format(name), 3)
    end
    local path = profile.folder .. "/" .. name:gsub("%.", "/") .. ".lua"
    local f = io.open(path, "rb")
    if not f then return nil end
    local source = f:read("a")
    f:close()
    local chunk, err = real_load(source, "@" .. path, "t", env)
    if not chunk then error(err, 0) end
    local m = chunk(name, path)
    if m == nil then return true end  -- like require: a module that returns nothing is loaded all the same
    return m
  end

  function env.require(name)
    if type(name) ~= "string" then
      error("bad argument #1 to 'require' (string expected, got " .. type(name) .. ")", 2)
    end
    local m = loaded[name]
    if m ~= nil then return m end
    if capabilities[name] then
      m = capabilities[name](profile)
    elseif allowed[name] then
      m = real_require(name)
      if type(m) == "table" then m = copy(m, WITHHELD[name]) end
    elseif name ~= "lufa" and name:sub(1, 5) ~= "lufa." then  -- lufa's names never come from the folder
      m = from_folder(name)
    end
    if m == nil then
      error(("module '%s' is not available to plugin '%s'"):format(name, profile.name), 2)
    end
    loaded[name] = m
    return m
  end
  return env
end

return M
