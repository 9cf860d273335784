--- lufa.progress: the progress of a transfer, told to a function or drawn as a bar on standard error.
-- A transfer made of parts (blocks, ranges) reports each part's bytes; the tracker adds them up, never
-- goes backwards (a retried part starts again from 0) and tells its sink at most `interval` apart, plus
-- always at the start and at each part's end (the last call has `done == total`). The sink is a function
-- `(done, total, rate)` (rate in bytes per second since the start), or `true` for a bar: name, size,
-- percent, rate and time left, redrawn in place on a terminal, plain and narrow with TERM=dumb, and nothing
-- at all when standard error is no terminal, CI is set or the log level is "error" (`-q`).
--
--   local progress = require "lufa.progress"
--   local t = progress.tracker(true, { name = "model.bin", total = size })
--   local report = t:part(1)          -- a function(done) for lufa.http's `progress` option
--   ...
--   t:complete(1, bytes); t:finish()
--
-- @module lufa.progress
local lufa = require "lufa"
local term = require "lufa.term"

local M = {}

--- Seconds between two calls of a sink at most.
M.interval = 0.1

--- Whether a bar may be drawn: standard error is a terminal, CI is unset or empty and not `-q`.
function M.enabled(caps, getenv)
  getenv = getenv or os.getenv
  caps = caps or term.caps(2, getenv)
  if not caps.tty or (getenv("CI") or "") ~= "" then return false end
  return require("lufa.log").level() ~= "error"
end

local UNITS = { "B", "KiB", "MiB", "GiB", "TiB" }

--- "12.3 MiB" for a number of bytes.
function M.bytes(n)
  local u = 1
  while n >= 1024 and u < #UNITS do n, u = n / 1024, u + 1 end
  return u == 1 and string.format("%d B", math.floor(n)) or string.format("%.1f %s", n, UNITS[u])
end

local function clock(seconds)
  seconds = math.floor(seconds + 0.5)
  if seconds >= 3600 then
    return string.format("%d:%02d:%02d", seconds // 3600, seconds % 3600 // 60, seconds % 60)
  end
  return string.format("%d:%02d", seconds // 60, seconds % 60)
end

--- One line of a bar: `name [####....] 45% 12.3 MiB/27.0 MiB 3.4 MiB/s ETA 0:05`; `narrow` leaves out the
-- graph (for TERM=dumb).
function M.line(name, done, total, rate, narrow)
  local parts = { name }
  local known = total and total > 0
  local fraction = known and math.min(1, done / total) or (total == 0 and 1 or nil)
  if fraction and not narrow then
    local width = 20
    local full = math.floor(fraction * width + 0.5)
    parts[#parts + 1] = "[" .. string.rep("#", full) .. string.rep(".", width - full) .. "]"
  end
  if fraction then parts[#parts + 1] = string.format("%3d%%", math.floor(fraction * 100)) end
  parts[#parts + 1] = total and (M.bytes(done) .. "/" .. M.bytes(total)) or M.bytes(done)
  if rate and rate > 0 then
    parts[#parts + 1] = M.bytes(rate) .. "/s"
    if known and done < total then parts[#parts + 1] = "ETA " .. clock((total - done) / rate) end
  end
  return table.concat(parts, " ")
end

--- A bar drawing on `opts.stream` (default io.stderr) as `opts.caps` (default term.caps(2)) allows:
-- `bar(done, total, rate)` draws, `bar.finish()` ends the line.
function M.bar(name, opts)
  opts = opts or {}
  local stream, caps = opts.stream or io.stderr, opts.caps or term.caps(2)
  local drawn = 0
  local self = {}
  function self.draw(done, total, rate)
    local line = M.line(name, done, total, rate, not caps.redraw)
    if caps.redraw then
      stream:write(term.clear_line(caps), line)
    else  -- TERM=dumb: a carriage return and spaces over the longer line before, no escapes
      stream:write("\r", line, string.rep(" ", math.max(0, drawn - #line)))
    end
    stream:flush()
    drawn = #line
  end
  function self.finish()
    if drawn > 0 then stream:write("\n") stream:flush() end
    drawn = 0
  end
  return self
end

--- Lets `fn(tracker, ended)` see every transfer that starts from now on (each time its sink would be told,
-- and once more with `ended` true): the CLI's live view draws them itself. `tracker.name`, `.done`, `.total`
-- and `.rate` say where each is; a `progress = true` transfer draws no bar of its own meanwhile. nil stops it.
function M.observe(fn) M.observer = fn end

local Tracker = {}
Tracker.__index = Tracker

--- A tracker for one transfer. `sink`: a function(done, total, rate), `true` (a bar when `enabled`), or
-- nil/false (nothing). `opts`: `name` (for the bar), `total` (bytes, when known), `now` (clock, for tests).
function M.tracker(sink, opts)
  opts = opts or {}
  local t = setmetatable({ name = opts.name or "transfer", total = opts.total, done = 0, rate = 0, committed = 0,
    inflight = {}, last = -1, told = nil, now = opts.now or lufa.now, observer = M.observer }, Tracker)
  t.started = t.now()
  if sink == true then
    if not t.observer and M.enabled() then
      local bar = M.bar(opts.name or "transfer")
      t.fn, t.bar = bar.draw, bar
    end
  elseif type(sink) == "function" then
    t.fn, t.user = sink, true
  elseif sink ~= nil and sink ~= false then
    error("bad option 'progress' (true or a function expected, got " .. type(sink) .. ")", 3)
  end
  return t
end

--- Whether anything listens (so a caller can skip metering).
function Tracker:active() return self.fn ~= nil or self.observer ~= nil end

--- Sets the total once it is known.
function Tracker:set_total(total) self.total = total end

--- Tells the sink where the transfer is; with `force` even when the last call was less than `interval` ago.
function Tracker:tell(force)
  if not self:active() then return end
  local done = self.committed
  for _, n in pairs(self.inflight) do done = done + n end
  if self.total then done = math.min(done, self.total) end
  if done < self.last then done = self.last end
  local now = self.now()
  if not force and done == self.last then return end
  -- a function is told at each part's end as documented; a bar or the live view at most every interval
  -- (parts may end a hundred times a second), and always when the transfer is complete
  local due = not self.told or now - self.told >= M.interval or (self.total ~= nil and done == self.total)
  if not due and not (force and self.user) then return end
  self.last, self.told = done, now
  local elapsed = now - self.started
  self.done, self.rate = done, elapsed > 0 and done / elapsed or 0
  if self.observer then self.observer(self, false) end
  if self.fn then self.fn(done, self.total, self.rate) end
end

--- A function(done, total) for the in-flight bytes of part `key` (lufa.http's `progress` option); with
-- `whole`, the part is the whole transfer and its total (once the response says it) is the transfer's.
function Tracker:part(key, whole)
  if not self:active() then return nil end
  return function(done, total)
    if whole and self.total == nil then self.total = total end
    self.inflight[key] = done
    self:tell(false)
  end
end

--- Part `key` ended with `bytes` moved.
function Tracker:complete(key, bytes)
  self.inflight[key] = nil
  self.committed = self.committed + bytes
  self:tell(true)
end

--- Ends the bar's line (a function sink has had its last call with `done == total` already).
function Tracker:finish()
  if self.bar then self.bar.finish() end
  if self.observer and not self.finished then self.observer(self, true) end
  self.finished = true
end

return M
