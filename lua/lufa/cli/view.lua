--- What `lufa run` shows: the live view of a run's progress, and the summary when it ends.
-- @module lufa.cli.view
local lufa = require "lufa"

local M = {}

local redact = require "lufa.redact"
local term = require "lufa.term"
local progress = require "lufa.progress"

-- Everything the commands print passes here: a secret that a service echoed in its answer, or anything
-- shaped like a credential, is scrubbed whatever path it took.
local function writer(stream)
  return function(...)
    local n = select("#", ...)
    local parts = {...}
    for i = 1, n do parts[i] = tostring(parts[i]) end
    stream:write(redact.text(table.concat(parts, "", 1, n)))
  end
end
M.out, M.err = writer(io.stdout), writer(io.stderr)

--- "12.3s" from milliseconds ("" when unknown).
function M.seconds(ms)
  if math.type(ms) ~= "integer" and type(ms) ~= "number" then return "" end
  return string.format("%.1fs", ms / 1000)
end
local seconds = M.seconds

local PLAIN_MARKS = { Succeeded = "✔", Failed = "✘", Skipped = "·", Cancelled = "⊘", InProgress = "…" }
local MARK_COLORS = { Succeeded = "green", Failed = "red", Cancelled = "yellow", InProgress = "cyan" }
local function marks(caps)
  local m = {}
  for status, mark in pairs(PLAIN_MARKS) do
    m[status] = MARK_COLORS[status] and term.paint(caps, MARK_COLORS[status], mark) or mark
  end
  return m
end

--- Whether the terminal may be redrawn (not TERM=dumb) and coloured (neither TERM=dumb nor NO_COLOR set,
-- as https://no-color.org asks).
function M.terminal_caps(getenv)
  local caps = term.caps(2, getenv, function() return true end)
  return { redraw = caps.redraw, color = caps.color }
end

--- The live view: on a terminal, one line per activity rewritten in place; otherwise (or with TERM=dumb)
-- a log line per change.
function M.progress(quiet, caps)
  caps = caps or term.caps(2)
  local tty = not quiet and caps.redraw
  local MARKS = marks(caps)
  local order, state, drawn = {}, {}, 0
  local transfers = {}  -- the blob transfers running now, in the order they started, below the activities
  local started = lufa.now()
  local function draw()
    local lines = {}
    for _, name in ipairs(order) do
      local s = state[name]
      lines[#lines + 1] = string.format(" %s %-32s %-11s %s", MARKS[s.status] or " ", name, s.status, s.note or "")
    end
    for _, t in ipairs(transfers) do
      lines[#lines + 1] = "   ↳ " .. progress.line(t.name, t.done, t.total, t.rate)
    end
    M.err(term.up(caps, drawn))
    for _, line in ipairs(lines) do M.err(term.clear_line(caps), line, "\n") end
    -- lines left over from a longer block (a transfer ended) are cleared
    local extra = drawn - #lines
    for _ = 1, extra do M.err(term.clear_line(caps), "\n") end
    M.err(term.up(caps, extra))
    drawn = #lines
  end
  if tty then
    progress.observe(function(t, ended)
      for i, x in ipairs(transfers) do
        if x == t then
          if ended then table.remove(transfers, i) end
          return draw()
        end
      end
      if not ended then transfers[#transfers + 1] = t end
      draw()
    end)
  end
  return function(ev)
    if quiet then return end
    if ev.type == "activity" then
      local name = ev.activityName
      if not state[name] then
        order[#order + 1] = name
        state[name] = {}
      end
      local s = state[name]
      s.status = ev.status
      s.note = ev.status ~= "InProgress" and seconds(ev.durationInMs) or
        (math.type(ev.retryAttempt) == "integer" and ev.retryAttempt > 0 and ("retry " .. ev.retryAttempt) or "")
      if ev.reused then s.note = "output of the earlier run" end
      if ev.status == "Failed" and ev.error then s.note = s.note .. "  " .. tostring(ev.error.message or "") end
      if tty then draw() else
        M.err(string.format("%7.1fs  %-32s %s%s\n", lufa.now() - started, name, ev.status,
          s.note ~= "" and ("  " .. s.note) or ""))
      end
    elseif ev.type == "log" and (ev.level == "warning" or ev.level == "error" or ev.level == "info") then
      local line = string.format("%7.1fs  %-32s %s", lufa.now() - started, ev.activityName or "", ev.message)
      if tty then  -- the log line takes the block's first line; the block moves down one
        M.err(term.up(caps, drawn))
        M.err(term.clear_line(caps), line, "\n")
        drawn = 0
        draw()
      else
        M.err(line, "\n")
      end
    end
  end
end

--- The summary of an ended run: its status, and a line per activity run with the failures' errors.
function M.summary(record, activity_runs)
  local out = {}
  out[#out + 1] = string.format("pipeline %s: %s in %s (run %s)", record.pipelineName, record.status,
    seconds(record.durationInMs), record.runId)
  for _, a in ipairs(activity_runs) do
    local line = string.format("  %-32s %-10s %s", a.activityName, a.status, seconds(a.durationInMs))
    if a.reusedFrom then line = line .. "  (output of run " .. tostring(a.reusedFrom.pipelineRunId) .. ")" end
    if a.status == "Failed" and type(a.error) == "table" then
      line = line .. string.format("\n      %s: %s", tostring(a.error.errorCode), tostring(a.error.message))
    end
    out[#out + 1] = line
  end
  if record.status ~= "Succeeded" and record.message and record.message ~= "" then
    out[#out + 1] = "  " .. tostring(record.message)
  end
  return table.concat(out, "\n") .. "\n"
end

return M
