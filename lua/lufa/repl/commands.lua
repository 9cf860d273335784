--- The prompt's commands: a line starting with `.` and a name.
-- @module lufa.repl.commands
local lufa = require "lufa"
local expression = require "lufa.expression"
local pretty = require "lufa.repl.pretty"

local M = {}

local HELP = [[
  .help            this text
  .load FILE       run a Lua file here (its globals stay)
  .time CODE       run CODE (or an expression) and print wall and CPU time
  .tasks           the tasks started at the prompt that are still running
  .expr @EXPR      evaluate an ADF expression; the global `scope` (if a table) is its scope, e.g.
                   scope = {pipeline = {parameters = {n = 3}}, variables = {}}
  .quit            leave (Ctrl-D also does)
Keys: Tab completes, Up/Down recall history, Ctrl-R searches it, Ctrl-C drops the line or interrupts
the running code, Ctrl-D on an empty line leaves. lufa.inspect(v [, opts]) prints as the prompt does.]]

local function say(s)
  io.stdout:write(s, "\n")
  io.stdout:flush()
end

local function complain(s)
  io.stderr:write(s, "\n")
  io.stderr:flush()
  return "failed"
end

local handlers = {}

function handlers.help()
  say(HELP)
  return "done"
end

function handlers.quit()
  return "quit"
end

handlers.exit = handlers.quit

function handlers.load(session, arg)
  if arg == "" then return complain(".load needs a file name") end
  local f, err = loadfile(arg, "t", session.env)
  if not f then return complain(err) end
  return session:run(f) and "done" or "failed"
end

function handlers.time(session, arg)
  if arg == "" then return complain(".time needs code to run") end
  local f, err = session:compile(arg)
  if not f then return complain(err) end
  local wall, cpu = lufa.now(), os.clock()
  local ok = session:run(f)
  say(string.format("wall %.3f s, cpu %.3f s", lufa.now() - wall, os.clock() - cpu))
  return ok and "done" or "failed"
end

function handlers.tasks(session)
  local list = session:running_tasks()
  for _, e in ipairs(list) do say(string.format("  task %d  %s", e.number, e.status)) end
  local others = lufa.tasks() - #list
  if others > 0 then say(string.format("  (%d more started by library code)", others)) end
  if lufa.tasks() == 0 then say("  no task is running") end
  return "done"
end

function handlers.expr(session, arg)
  if arg == "" then return complain(".expr needs an expression such as @concat('a', 'b')") end
  local scope = rawget(session.env, "scope")
  if type(scope) ~= "table" then scope = {} end
  return session:run(function()
    return expression.evaluate(arg, scope)
  end) and "done" or "failed"
end

--- Runs the command `name` with the rest of the line; returns the session status.
function M.run(session, name, arg)
  local h = handlers[name]
  if not h then return complain(string.format("unknown command .%s (.help lists them)", name)) end
  return h(session, arg)
end

M.help = HELP
M.inspect = pretty.inspect

return M
