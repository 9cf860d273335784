--- lufa.term: what a terminal allows, decided in one place for every line lufa draws or colours.
-- A stream is redrawn (cursor moves, line clears) only when it is a terminal and TERM is not "dumb"; it is
-- coloured only then and when NO_COLOR is unset or empty (https://no-color.org).
--
--   local term = require "lufa.term"
--   local caps = term.caps(2)
--   io.stderr:write(term.paint(caps, "red", "failed"), "\n")
--
-- @module lufa.term
local lufa = require "lufa"

local M = {}

local COLORS = { red = 31, green = 32, yellow = 33, blue = 34, magenta = 35, cyan = 36, bold = 1, dim = 2 }

--- What the terminal on descriptor `fd` (default 2, standard error) allows: `{tty=, redraw=, color=}`.
-- `getenv` and `isatty` replace os.getenv and lufa.isatty (for tests).
function M.caps(fd, getenv, isatty)
  getenv = getenv or os.getenv
  local tty = (isatty or lufa.isatty)(fd or 2) and true or false
  local dumb = getenv("TERM") == "dumb"
  local no_color = (getenv("NO_COLOR") or "") ~= ""
  return { tty = tty, redraw = tty and not dumb, color = tty and not dumb and not no_color }
end

--- `text` in colour `name` (red, green, yellow, blue, magenta, cyan, bold, dim) when `caps.color`, else as is.
function M.paint(caps, name, text)
  if not caps.color then return text end
  local code = COLORS[name]
  if not code then error("unknown colour '" .. tostring(name) .. "'", 2) end
  return "\27[" .. code .. "m" .. text .. "\27[0m"
end

--- The sequence that moves the cursor up `n` lines ("" when it cannot be redrawn or n is 0).
function M.up(caps, n)
  if not caps.redraw or n <= 0 then return "" end
  return "\27[" .. n .. "A"
end

--- The sequence that clears the current line and returns to its start ("\r" when it cannot be redrawn).
function M.clear_line(caps)
  return caps.redraw and "\r\27[2K" or "\r"
end

return M
