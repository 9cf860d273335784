--- Drives a program through a real pseudo-terminal with tmux (a private tmux server per terminal, so no
-- one else's sessions are touched and no user configuration is read).
--
--   local terminal = require "tests.support.terminal"
--   local term = terminal.start(lufa_bin, {env = {XDG_STATE_HOME = dir}})
--   term:type("1 + 1") term:keys("Enter")
--   term:wait_for("\n2\n")
--   term:stop()
--
-- When the program ends the pane shows "[exit N]" and stays, so its last screen can still be read.
local lufa = require "lufa"
local util = require "tests.support.util"

local terminal = {}

local Terminal = {}
Terminal.__index = Terminal

local count = 0

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

--- Whether tmux is installed (scripts/deps installs it).
function terminal.available()
  return (run("command -v tmux >/dev/null"))
end

--- Starts `command` (a shell command line) in a new terminal. opts: env (table), width, height.
function terminal.start(command, opts)
  opts = opts or {}
  count = count + 1
  local self = setmetatable({ socket = string.format("lufa-test-%d-%d", util.own_pid(), count) }, Terminal)
  local env = { "TERM=xterm-256color" }
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. util.shell_quote(v) end
  local inner = string.format("env %s %s; echo \"[exit $?]\"; exec sleep 600", table.concat(env, " "), command)
  self:tmux(string.format("new-session -d -s main -x %d -y %d %s", opts.width or 100, opts.height or 40,
    util.shell_quote(inner)))
  return self
end

function Terminal:tmux(args)
  local ok, out = run(string.format("tmux -L %s -f /dev/null %s", self.socket, args))
  if not ok then error("tmux " .. args .. " failed: " .. out, 3) end
  return out
end

--- Types text literally.
function Terminal:type(text)
  self:tmux("send-keys -t main -l " .. util.shell_quote(text))
end

--- Presses keys by tmux's names: "Enter", "Tab", "Up", "Left", "C-c", "C-d", ...
function Terminal:keys(...)
  local names = {}
  for i, k in ipairs({ ... }) do names[i] = util.shell_quote(k) end
  self:tmux("send-keys -t main " .. table.concat(names, " "))
end

--- The screen and its scrollback, as text.
function Terminal:screen()
  return self:tmux("capture-pane -p -J -S -200 -t main")
end

--- Waits until the screen contains `text` (plain) and returns the screen; the limit is a safety net
-- against hanging (the failure shows the screen), not an assertion about speed.
function Terminal:wait_for(text, limit)
  local deadline = lufa.now() + (limit or 15)
  while true do
    local s = self:screen()
    if s:find(text, 1, true) then return s end
    if lufa.now() > deadline then
      error(string.format("%q did not appear on the terminal; it shows:\n%s", text, s), 2)
    end
    lufa.sleep(0.05)
  end
end

--- Copies everything the program writes from now on, escape codes included, to the file at path.
function Terminal:record(path)
  self:tmux("pipe-pane -o -t main " .. util.shell_quote("cat >> " .. util.shell_quote(path)))
end

--- Ends the program and the terminal.
function Terminal:stop()
  run(string.format("tmux -L %s kill-server", self.socket))
end

return terminal
