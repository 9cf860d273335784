--- The prompt's session: what each line means. The terminal side (host/repl.c) reads lines, keeps the
-- history and turns the loop; it calls these methods:
--   session:submit(line)   → "done" | "more" (an unfinished chunk: read another line) | "failed" | "quit"
--   session:prompt()       → the prompt to show ("> ", or ">> " inside an unfinished chunk)
--   session:reset()        drop an unfinished chunk (Ctrl-C at the prompt)
--   session:complete(text) → word length, candidates (see lufa.repl.complete)
--   session:remember(line) → whether the line may go to the history file (see lufa.repl.history)
--   session:notices()      → lines about tasks started at the prompt that ended since, or nil
--   session:exit_warning() → what to say on Ctrl-D while tasks run, or nil
-- As lua.c does, a line is tried as an expression first (`return LINE`), `=expr` is accepted, a chunk that
-- ends too early continues on the next line, and every result is printed (with lufa.inspect).
-- @module lufa.repl
local lufa = require "lufa"
local redact = require "lufa.redact"
local pretty = require "lufa.repl.pretty"
local complete = require "lufa.repl.complete"
local history = require "lufa.repl.history"
local commands = require "lufa.repl.commands"

local M = {}

local Session = {}
Session.__index = Session

local CHUNK_NAME = "=stdin"

-- Compiles the pending text: nil, "incomplete" when more lines may finish it; nil, message on an error.
local function compile(text, env)
  if text:sub(1, 1) == "=" then text = "return " .. text:sub(2) end
  local f = load("return " .. text, CHUNK_NAME, "t", env)
  if f then return f end
  local err
  f, err = load(text, CHUNK_NAME, "t", env)
  if f then return f end
  if err:sub(-#"<eof>") == "<eof>" then return nil, "incomplete" end
  return nil, err
end

-- A traceback that stops where the prompt's own frames begin.
local function traceback(err)
  if type(err) ~= "string" then
    local ok, s = pcall(tostring, err)
    err = ok and s or "(error object is a " .. type(err) .. " value)"
  end
  -- after Ctrl-C the terminal has echoed ^C on the chunk's line
  if err:find("interrupted$") then err = "\n" .. err end
  local tb = debug.traceback(err, 2)
  local cut = tb:find("\n%s*%[C%]: in function 'xpcall'")
  if cut then tb = tb:sub(1, cut - 1) end
  -- an error raised by the Ctrl-C hook shows this handler as a frame of its own
  local here = debug.getinfo(1, "S").short_src
  local lines = {}
  for line in tb:gmatch("[^\n]*") do
    if not line:find(here, 1, true) then lines[#lines + 1] = line end
  end
  return table.concat(lines, "\n")
end

local function out(s)
  io.stdout:write(redact.text(s), "\n")
  io.stdout:flush()
end

local function err_out(s)
  io.stderr:write(redact.text(s), "\n")
  io.stderr:flush()
end

--- A new session. opts: `interactive` (stdin is a terminal), `editing` (libedit draws the line), `env`
-- (globals; default _G).
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({
    interactive = opts.interactive, editing = opts.editing, env = opts.env or _G,
    buffer = nil, tasks = {}, task_count = 0, in_chunk = false, chunks = 0,
  }, Session)
  self:track_spawns()
  M.expose_lufa(self.env)
  return self
end

--- At the prompt `lufa` is a global, and its submodules are fields loaded on first use (`lufa.blob`).
function M.expose_lufa(env)
  if rawget(env, "lufa") == nil then rawset(env, "lufa", lufa) end
  if getmetatable(lufa) == nil then
    setmetatable(lufa, { __index = function(_, name)
      if type(name) ~= "string" or not name:find("^[%a_][%w_]*$") then return nil end
      local ok, m = pcall(require, "lufa." .. name)
      if ok then return m end
      -- a module that exists but fails to load says why; a missing one is just a missing field
      if not tostring(m):find("module 'lufa." .. name .. "' not found", 1, true) then error(m, 2) end
    end })
  end
end

-- Whether the function calling lufa.spawn (level 3 from here) is a chunk typed at the prompt; when the
-- chunk's `return lufa.spawn(...)` was a tail call, the chunk's frame is gone and xpcall called spawn.
local function called_from_prompt()
  if debug.getinfo(2, "t").istailcall then return debug.getinfo(3, "f").func == xpcall end
  local caller = debug.getinfo(3, "S")
  return caller ~= nil and caller.source == CHUNK_NAME
end

-- Tasks spawned by code typed at the prompt (not by the libraries it calls) are numbered, listed by .tasks
-- and announced when they end.
function Session:track_spawns()
  local spawn = lufa.spawn
  local session = self
  lufa.spawn = function(...)
    local t = spawn(...)
    if session.in_chunk and called_from_prompt() then
      session.task_count = session.task_count + 1
      session.tasks[#session.tasks + 1] = { task = t, number = session.task_count, chunk = session.chunks }
    end
    return t
  end
end

function Session:prompt()
  if not self.interactive then return "" end
  return self.buffer and ">> " or "> "
end

function Session:reset()
  self.buffer = nil
end

--- Prints values as the prompt shows results: each with lufa.inspect, tab-separated when they fit a line.
function Session:print_results(res)
  local parts, multiline = {}, false
  for i = 1, res.n do
    parts[i] = pretty.inspect(res[i])
    if parts[i]:find("\n", 1, true) then multiline = true end
  end
  out(table.concat(parts, multiline and "\n" or "\t"))
end

-- Runs f protected; prints its results or its error. Returns ok.
function Session:run(f, ...)
  self.in_chunk = true
  self.chunks = self.chunks + 1
  local res = table.pack(xpcall(f, traceback, ...))
  self.in_chunk = false
  -- a task that ended while the chunk that started it ran needs no notice
  self:notices(self.chunks)
  if not res[1] then
    err_out(res[2])
    return false
  end
  if res.n > 1 then self:print_results(table.pack(table.unpack(res, 2, res.n))) end
  return true
end

--- One line of input.
function Session:submit(line)
  if self.buffer == nil then
    local name, rest = line:match("^%s*%.(%a+)%s*(.-)%s*$")
    if name then return commands.run(self, name, rest) end
  end
  local text = self.buffer and self.buffer .. "\n" .. line or line
  if text:find("^%s*$") then return "done" end
  local f, err = compile(text, self.env)
  if err == "incomplete" then
    self.buffer = text
    return "more"
  end
  self.buffer = nil
  if not f then
    err_out(err)
    return "failed"
  end
  return self:run(f) and "done" or "failed"
end

--- Compiles and runs a chunk of text as a line would be (used by .load and .time).
function Session:compile(text, name)
  if text:sub(1, 1) == "=" then text = "return " .. text:sub(2) end
  local f = load("return " .. text, name or CHUNK_NAME, "t", self.env)
  if f then return f end
  return load(text, name or CHUNK_NAME, "t", self.env)
end

function Session:complete(text)
  return complete.complete(text, self.env)
end

function Session:remember(line)
  return history.keep(line)
end

--- The tasks started at the prompt that are not finished, oldest first: {number, task, status}.
function Session:running_tasks()
  local list = {}
  for _, e in ipairs(self.tasks) do
    local status = e.task:status()
    if status ~= "done" and status ~= "failed" and status ~= "cancelled" then
      list[#list + 1] = { number = e.number, task = e.task, status = status }
    end
  end
  return list
end

-- `quiet_chunk`: forget, without a notice, the ended tasks that chunk started.
function Session:notices(quiet_chunk)
  local lines, keep = {}, {}
  for _, e in ipairs(self.tasks) do
    local status = e.task:status()
    if status == "done" or status == "failed" or status == "cancelled" then
      if e.chunk ~= quiet_chunk then lines[#lines + 1] = string.format("[task %d %s]", e.number, status) end
    else
      keep[#keep + 1] = e
    end
  end
  self.tasks = keep
  if not self.interactive or #lines == 0 then return nil end
  return table.concat(lines, "\n") .. "\n"
end

function Session:exit_warning()
  local n = lufa.tasks()
  if n == 0 then return nil end
  local lines = { string.format("%d task%s still running; Ctrl-D again leaves and cancels them:", n,
    n == 1 and " is" or "s are") }
  local mine = self:running_tasks()
  for _, e in ipairs(mine) do lines[#lines + 1] = string.format("  task %d  %s", e.number, e.status) end
  if n > #mine then lines[#lines + 1] = string.format("  (%d started by library code)", n - #mine) end
  return table.concat(lines, "\n")
end

M.Session = Session

return M
