--- lufa.cli: the `lufa run` and `lufa validate` commands.
-- `main(command, ...)` returns the process exit status: 0 only when the run succeeded (or the factory
-- is valid); 1 when the run failed; 2 for bad usage or an invalid factory.
-- @module lufa.cli
local lufa = require "lufa"
local json = require "lufa.json"
local pipeline = require "lufa.pipeline"

local M = {}

local USAGE = [[
usage: lufa run FACTORY PIPELINE [options]
       lufa validate FACTORY [options]
options:
  --override FILE        JSON overrides applied to the factory's files (e.g. local endpoints)
  --param NAME=VALUE     a pipeline parameter (repeatable; converted to the declared type)
  --activities DIR       a folder of <Type>.lua activity modules that add or replace types
  --json                 print the run record (or the problems) as JSON on standard output
  --quiet                no live progress, only the summary
]]

local function die(fmt, ...)
  io.stderr:write("lufa: ", string.format(fmt, ...), "\n")
  return 2
end

--- Parses `args` into `{positional..., override=, params={}, activities={}, json=, quiet=}`.
local function parse(args)
  local o = { params = {}, activities = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    local function value()
      i = i + 1
      if args[i] == nil then error(string.format("option %s needs a value", a), 0) end
      return args[i]
    end
    if a == "--override" then o.override = value()
    elseif a == "--param" or a == "-p" then
      local kv = value()
      local k, v = kv:match("^([^=]+)=(.*)$")
      if not k then error(string.format("--param expects NAME=VALUE, got '%s'", kv), 0) end
      o.params[k] = v
    elseif a == "--activities" then o.activities[#o.activities + 1] = value()
    elseif a == "--json" then o.json = true
    elseif a == "--quiet" or a == "-q" then o.quiet = true
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a:sub(1, 2) == "--" then error(string.format("unknown option '%s'", a), 0)
    else o[#o + 1] = a end
    i = i + 1
  end
  return o
end

local function load(o)
  local factory, problems = pipeline.load_factory(o[1], { override = o.override, activity_folders = o.activities })
  if not factory then
    io.stderr:write(pipeline.format_problems(problems))
    return nil
  end
  return factory
end

local function seconds(ms)
  if type(ms) ~= "number" then return "" end
  return string.format("%.1fs", ms / 1000)
end

local MARKS = { Succeeded = "\27[32m✔\27[0m", Failed = "\27[31m✘\27[0m", Skipped = "·",
  Cancelled = "\27[33m⊘\27[0m", InProgress = "\27[36m…\27[0m" }

--- The live view: on a terminal, one line per activity rewritten in place; otherwise a log line per change.
local function progress(quiet)
  local tty = not quiet and lufa.isatty(2)
  local order, state, drawn = {}, {}, 0
  local started = lufa.now()
  local function draw()
    if drawn > 0 then io.stderr:write(string.format("\27[%dA", drawn)) end
    for _, name in ipairs(order) do
      local s = state[name]
      io.stderr:write(string.format("\27[2K %s %-32s %-11s %s\n", MARKS[s.status] or " ", name, s.status,
        s.note or ""))
    end
    drawn = #order
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
      if ev.status == "Failed" and ev.error then s.note = s.note .. "  " .. tostring(ev.error.message or "") end
      if tty then draw() else
        io.stderr:write(string.format("%7.1fs  %-32s %s%s\n", lufa.now() - started, name, ev.status,
          s.note ~= "" and ("  " .. s.note) or ""))
      end
    elseif ev.type == "log" and (ev.level == "warning" or ev.level == "error" or ev.level == "info") then
      local line = string.format("%7.1fs  %-32s %s", lufa.now() - started, ev.activityName or "", ev.message)
      if tty then  -- the log line takes the block's first line; the block moves down one
        if drawn > 0 then io.stderr:write(string.format("\27[%dA", drawn)) end
        io.stderr:write("\27[2K", line, "\n")
        drawn = 0
        draw()
      else
        io.stderr:write(line, "\n")
      end
    end
  end
end

local function summary(record, activity_runs)
  local out = {}
  out[#out + 1] = string.format("pipeline %s: %s in %s (run %s)", record.pipelineName, record.status,
    seconds(record.durationInMs), record.runId)
  for _, a in ipairs(activity_runs) do
    local line = string.format("  %-32s %-10s %s", a.activityName, a.status, seconds(a.durationInMs))
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

function M.run(o)
  if #o ~= 2 then return die("run needs FACTORY and PIPELINE\n%s", USAGE) end
  local factory = load(o)
  if not factory then return 2 end
  local problems = factory:validate()
  if pipeline.has_errors(problems) then
    io.stderr:write(pipeline.format_problems(problems))
    return 2
  end
  io.stderr:write(pipeline.format_problems(problems))  -- warnings
  local run, err = factory:start(o[2], { parameters = o.params, on_event = progress(o.quiet or o.json) })
  if not run then
    io.stderr:write("lufa: ", tostring(err), "\n")
    return 2
  end
  -- Ctrl-C cancels the run: running activities unwind and their cleanups run (a batch job is deleted)
  lufa.on_interrupt(function()
    io.stderr:write("lufa: interrupted: cancelling the run (Ctrl-C again quits at once)\n")
    run:cancel("interrupted")
  end)
  local record = run:wait()
  lufa.on_interrupt(nil)
  local acts = factory:activity_runs(record.runId) or {}
  if o.json then
    io.stdout:write(json.encode({ pipelineRun = record, activityRuns = json.array(acts) }, { pretty = true }), "\n")
  else
    io.stdout:write(summary(record, acts))
  end
  return record.status == "Succeeded" and 0 or 1
end

function M.validate(o)
  if #o ~= 1 then return die("validate needs FACTORY\n%s", USAGE) end
  local factory = load(o)
  if not factory then return 2 end
  local problems = factory:validate()
  if o.json then
    io.stdout:write(json.encode(json.array(problems), { pretty = true }), "\n")
  else
    io.stdout:write(pipeline.format_problems(problems))
    local errors, warnings = 0, 0
    for _, p in ipairs(problems) do
      if p.severity == "error" then errors = errors + 1 else warnings = warnings + 1 end
    end
    io.stdout:write(string.format("%s: %d error(s), %d warning(s); pipelines: %s\n", o[1], errors, warnings,
      table.concat(factory:pipelines(), ", ")))
  end
  return pipeline.has_errors(problems) and 2 or 0
end

--- Entry point: `main("run", args...)`.
function M.main(command, ...)
  local ok, o = pcall(parse, { ... })
  if not ok then return die("%s\n%s", o, USAGE) end
  if o.help then
    io.stdout:write(USAGE)
    return 0
  end
  local f = M[command]
  if type(f) ~= "function" or command == "main" then return die("unknown command '%s'\n%s", tostring(command), USAGE) end
  return f(o)
end

return M
