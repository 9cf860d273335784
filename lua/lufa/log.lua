--- lufa.log: the one logger of lufa's modules and commands. Levels error < warn < info < debug < trace;
--- the level comes from `LUFA_LOG` (default "warn") or `lufa.log.configure`, the CLI's `-v` (info), `-vv`
--- (debug: each HTTP request with its timing), `-vvv` (trace: their headers too) and `-q` (error). Lines go
--- to standard error as text (`lufa: [debug] ...`) or, with `--log-format json` / `LUFA_LOG_FORMAT=json`,
--- as one JSON object per line for machines. Every line passes lufa.redact: a secret cannot be logged.
---
--- Example:
--- ```lua
--- local log = require "lufa.log"
--- local secret = require "lufa.secret"
--- log.configure { level = "info", sink = print }
--- log.info("submitted batch job %s with key %s", "job-1", secret("0123456789abcdef"))
--- if log.enabled("debug") then log.debug("not written at level %s", log.level()) end
--- ```
--- ```text output
--- lufa: [info] submitted batch job job-1 with key <redacted>
--- ```
local redact = require "lufa.redact"
local options = require "lufa.options"

---@alias lufa.log.level "error"|"warn"|"info"|"debug"|"trace"

---@class lufa.log.Options
---@field level? lufa.log.level
---@field format? "text"|"json"
---@field sink? fun(line: string) where lines go (default: standard error)

---@class lufa.log
---@field LEVELS table<lufa.log.level, integer> the levels and their order, error = 1 … trace = 5
---@field error fun(fmt: any, ...: any) writes a line at level error (`fmt` and the rest as for string.format)
---@field warn fun(fmt: any, ...: any) writes a line at level warn
---@field info fun(fmt: any, ...: any) writes a line at level info
---@field debug fun(fmt: any, ...: any) writes a line at level debug
---@field trace fun(fmt: any, ...: any) writes a line at level trace
local M = {}

local LEVELS = {error = 1, warn = 2, info = 3, debug = 4, trace = 5}
M.LEVELS = LEVELS

local current, format, sink = LEVELS.warn, "text", nil

--- Sets `level` (a name), `format` ("text" or "json") and/or `sink` (function(line); default stderr).
--- Errors: raises on a name it does not know, saying which are known.
---@param opts lufa.log.Options
function M.configure(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'lufa.log.configure' (table expected, got " .. type(opts) .. ")", 2)
  end
  options.check(opts, { "level", "format", "sink" }, "lufa.log.configure", 2)
  if opts.level ~= nil then
    local n = LEVELS[tostring(opts.level):lower()]
    if not n then error("unknown log level '" .. tostring(opts.level) .. "' (known: error, warn, info, debug, trace)", 2) end
    current = n
  end
  if opts.format ~= nil then
    if opts.format ~= "text" and opts.format ~= "json" then
      error("unknown log format '" .. tostring(opts.format) .. "' (known: text, json)", 2)
    end
    format = opts.format
  end
  if opts.sink ~= nil then sink = opts.sink end
end

--- The level in force, as a name.
---@nodiscard
---@return lufa.log.level level
function M.level()
  for name, n in pairs(LEVELS) do if n == current then return name end end
end

--- Whether lines of `level` are written (to skip building costly messages).
---@nodiscard
---@param level lufa.log.level
---@return boolean
function M.enabled(level) return (LEVELS[level] or 0) <= current end

local function write(level, fmt, ...)
  if LEVELS[level] > current then return end
  local msg = redact.text(select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt))
  local line
  if format == "json" then
    local t = require("lufa").time()
    line = require("lufa.json").encode({time = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) ..
      string.format(".%03dZ", math.floor((t % 1) * 1000)), level = level, msg = msg}, {sort_keys = true})
  else
    line = "lufa: [" .. level .. "] " .. msg
  end
  if sink then sink(line) else io.stderr:write(line, "\n") end
end

for name in pairs(LEVELS) do
  M[name] = function(fmt, ...) return write(name, fmt, ...) end
end

-- The environment's choice, read once; a bad value is reported, not fatal.
do
  local env_level, env_format = os.getenv("LUFA_LOG"), os.getenv("LUFA_LOG_FORMAT")
  local ok, err = pcall(M.configure, {level = env_level ~= "" and env_level or nil,
    format = env_format ~= "" and env_format or nil})
  if not ok then io.stderr:write("lufa: LUFA_LOG/LUFA_LOG_FORMAT: ", (tostring(err):gsub("^[^:]*:%d+: ", "")), "\n") end
end

return M
