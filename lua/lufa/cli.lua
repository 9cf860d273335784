--- lufa.cli: the `lufa run`, `validate`, `runs`, `rerun`, `resume`, `schedule`, `trigger` and `serve` commands.
-- `main(command, ...)` returns the process exit status: 0 only when the run succeeded (or the factory
-- is valid); 1 when the run failed; 2 for bad usage, an invalid factory or an unusable store; 128 + the
-- signal number when a signal cancelled the run (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
-- @module lufa.cli
local lufa = require "lufa"
local json = require "lufa.json"
local pipeline = require "lufa.pipeline"
local runs = require "lufa.runs"
local view = require "lufa.cli.view"
local stdout, stderr = view.out, view.err

local M = {}

local USAGE = [[
usage: lufa run FACTORY PIPELINE [options]       run a pipeline; its run is recorded in the store
       lufa validate FACTORY [options]           check a factory
       lufa runs list [--pipeline P] [--status S] [--trigger T] [--since TIME] [--limit N] [--json]
       lufa runs show RUN_ID [--json]            a run and its activity runs
       lufa runs cancel RUN_ID                   cancel a run that another lufa process executes
       lufa runs prune --older-than AGE          forget ended runs older than AGE (90d, 12h, ...)
       lufa runs check                           check the store's integrity
       lufa rerun RUN_ID [--from-failure | --from ACTIVITY]   run again in the same run group
       lufa resume RUN_ID                        continue a run whose lufa process died
       lufa schedule FACTORY [--schedules FILE]  run the triggers (and cron schedules) as a service
       lufa schedule FACTORY --next N [--from TIME] [--json]   the next fire times, nothing run
       lufa schedule FACTORY --once              run what fell due since the last check, then exit
       lufa trigger start|stop NAME [FACTORY]    start or stop a trigger (kept in the store)
       lufa serve [--port N] [--bind ADDRESS] [--token T] [--factory DIR]   run history pages in a browser
options:
  --store PATH           the run store (default: LUFA_STORE, else $XDG_STATE_HOME/lufa/runs.db);
                         ':memory:' records nothing beyond the process
  --override FILE        JSON overrides applied to the factory's files (e.g. local endpoints)
  --param NAME=VALUE     a pipeline parameter (repeatable; converted to the declared type)
  --activities DIR       a folder of <Type>.lua activity modules that add or replace types
  --json                 print the run record (or the problems) as JSON on standard output
  --quiet                no live progress, only the summary
schedule options:
  --schedules FILE       cron schedules of Lua scripts (docs/scheduling.md)
  --trigger NAME         only this trigger
  --grace S              a ScheduleTrigger fire time missed by at most S seconds still runs (default 0)
  --drain-grace S        on SIGTERM, runs in progress get S seconds to finish before they are cancelled (60)
  --poll S               how often BlobEventsTriggers list their container (30)
serve options:
  --port N               the port (default 8470; 0 picks a free one)
  --bind ADDRESS         the address to listen on (default 127.0.0.1); off loopback a token is required
  --token T              that token (default: a random one, printed in the address)
  --factory DIR          also list this factory's triggers (repeatable)
RUN_ID may be shortened to a unique prefix.
]]

local function die(fmt, ...)
  stderr("lufa: ", string.format(fmt, ...), "\n")
  return 2
end

local VALUED = {["--override"] = "override", ["--activities"] = "activities", ["--store"] = "store",
  ["--from"] = "from", ["--pipeline"] = "pipeline", ["--status"] = "status", ["--since"] = "since",
  ["--limit"] = "limit", ["--older-than"] = "older_than", ["--trigger"] = "trigger", ["--wait"] = "wait",
  ["--param"] = "param", ["-p"] = "param", ["--schedules"] = "schedules", ["--grace"] = "grace",
  ["--drain-grace"] = "drain_grace", ["--poll"] = "poll", ["--next"] = "next", ["--from"] = "from",
  ["--port"] = "port", ["--bind"] = "bind", ["--token"] = "token", ["--factory"] = "factory"}
local FLAGS = {["--json"] = "json", ["--quiet"] = "quiet", ["-q"] = "quiet", ["--from-failure"] = "from_failure",
  ["-h"] = "help", ["--help"] = "help", ["--once"] = "once", ["--verbose"] = "verbose", ["-v"] = "verbose"}

--- Parses `args` into `{positional..., override=, store=, params={}, activities={}, json=, quiet=, ...}`.
local function parse(args)
  local o = { params = {}, activities = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    local key = VALUED[a]
    if key then
      i = i + 1
      local v = args[i]
      if v == nil then error(string.format("option %s needs a value", a), 0) end
      if key == "param" then
        local k, val = v:match("^([^=]+)=(.*)$")
        if not k then error(string.format("--param expects NAME=VALUE, got '%s'", v), 0) end
        o.params[k] = val
      elseif key == "activities" then
        o.activities[#o.activities + 1] = v
      elseif key == "factory" then
        o.factories = o.factories or {}
        o.factories[#o.factories + 1] = v
      else
        o[key] = v
      end
    elseif FLAGS[a] then
      o[FLAGS[a]] = true
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      error(string.format("unknown option '%s'", a), 0)
    else
      o[#o + 1] = a
    end
    i = i + 1
  end
  return o
end

local function load(path, o)
  local factory, problems = pipeline.load_factory(path, { override = o.override, activity_folders = o.activities,
    store = o.opened_store })
  if not factory then
    stderr(pipeline.format_problems(problems))
    return nil
  end
  return factory
end

--- The store the options name (made when `create`); nil and a message when it cannot be used.
local function open_store(o, create)
  local store, err = runs.open(o.store, { create = create })
  if not store then return nil, tostring(err) end
  o.opened_store = store
  return store
end

-- Problems of the factory that stop a run; a broken trigger only warns (it is not what runs now).
local function check(factory)
  local problems = factory:validate()
  for _, p in ipairs(problems) do
    if p.trigger and p.severity == "error" then p.severity = "warning" end
  end
  if pipeline.has_errors(problems) then
    stderr(pipeline.format_problems(problems))
    return false
  end
  stderr(pipeline.format_problems(problems))  -- warnings
  return true
end

-- Waits for a started run; a signal cancels it (remote jobs deleted, the run recorded Cancelled).
local function finish(handle, factory, store, o)
  store:flush()  -- the run is on disk before its id is shown
  stderr(string.format("lufa: run %s of pipeline %s, recorded in %s\n", handle.runId,
    handle.record.pipelineName, store.path))
  local signal
  lufa.on_interrupt(function(name, number)
    signal = number
    stderr(string.format("lufa: interrupted: cancelling the run (%s; a second signal stops lufa at " ..
      "once, and 'lufa resume %s' then finishes the cancellation)\n", name, handle.runId))
    handle:cancel(name == "SIGINT" and "interrupted" or name)
  end)
  local record = handle:wait()
  lufa.on_interrupt(nil)
  local acts = factory:activity_runs(record.runId) or {}
  if o.json then
    stdout(json.encode({ pipelineRun = record, activityRuns = json.array(acts) }, { pretty = true }), "\n")
  else
    stdout(view.summary(record, acts))
  end
  store:close()
  if signal and record.status == "Cancelled" then return 128 + signal end
  return record.status == "Succeeded" and 0 or 1
end

function M.run(o)
  if #o ~= 2 then return die("run needs FACTORY and PIPELINE\n%s", USAGE) end
  local store, serr = open_store(o, true)
  if not store then return die("%s", serr) end
  store:reap()
  local factory = load(o[1], o)
  if not factory or not check(factory) then return 2 end
  local handle, err = factory:start(o[2], { parameters = o.params, on_event = view.progress(o.quiet or o.json) })
  if not handle then return die("%s", tostring(err)) end
  return finish(handle, factory, store, o)
end

function M.validate(o)
  if #o ~= 1 then return die("validate needs FACTORY\n%s", USAGE) end
  local factory = load(o[1], o)
  if not factory then return 2 end
  local problems = factory:validate()
  if o.json then
    stdout(json.encode(json.array(problems), { pretty = true }), "\n")
  else
    stdout(pipeline.format_problems(problems))
    local errors, warnings = 0, 0
    for _, p in ipairs(problems) do
      if p.severity == "error" then errors = errors + 1 else warnings = warnings + 1 end
    end
    stdout(string.format("%s: %d error(s), %d warning(s); pipelines: %s\n", o[1], errors, warnings,
      table.concat(factory:pipelines(), ", ")))
  end
  return pipeline.has_errors(problems) and 2 or 0
end

-- The recorded run `o[1]` and its factory, loaded as the run was (its folder, override, activity folders),
-- by the same code as lufa serve's rerun (lufa.runs.rerun.factory_of).
local function recorded(o, what)
  if #o ~= 1 then return nil, die("%s needs RUN_ID\n%s", what, USAGE) end
  local store, serr = open_store(o, false)
  if not store then return nil, die("%s", serr) end
  local id, ierr = store:find_run(o[1])
  if not id then return nil, die("%s", ierr) end
  local factory, err, warnings = require("lufa.runs.rerun").factory_of(store, id,
    {override = o.override, activities = o.activities, how = what})
  if not factory then
    stderr(err:find("\n", 1, true) and err or ("lufa: " .. err .. "\n"))
    return nil, 2
  end
  stderr(pipeline.format_problems(warnings))
  return id, factory, store
end

function M.rerun(o)
  if o.from_failure and o.from then return die("--from-failure and --from exclude each other") end
  local id, factory, store = recorded(o, "rerun")
  if not id then return factory end
  local handle, err = factory:rerun(id, { from_failure = o.from_failure, from = o.from, parameters = o.params,
    on_event = view.progress(o.quiet or o.json) })
  if not handle then return die("%s", tostring(err)) end
  return finish(handle, factory, store, o)
end

function M.resume(o)
  local id, factory, store = recorded(o, "resume")
  if not id then return factory end
  local handle, err = factory:resume(id, { parameters = o.params, on_event = view.progress(o.quiet or o.json) })
  if not handle then return die("%s", tostring(err)) end
  return finish(handle, factory, store, o)
end

local RUNS = { list = true, show = true, cancel = true, prune = true, check = true }

function M.runs(o)
  local sub = table.remove(o, 1)
  if not RUNS[sub] then return die("runs needs list, show, cancel, prune or check\n%s", USAGE) end
  local cmd = require "lufa.cli.runs"
  local store, serr = open_store(o, false)
  if not store then
    if sub == "list" and not o.store and not os.getenv("LUFA_STORE") and serr:find("no run store", 1, true) then
      stdout("no runs recorded yet\n")
      return 0
    end
    return die("%s", serr)
  end
  local id
  if sub == "show" or sub == "cancel" then
    if #o ~= 1 then return die("runs %s needs RUN_ID", sub) end
    local ierr
    id, ierr = store:find_run(o[1])
    if not id then return die("%s", ierr) end
  end
  local code, err = cmd[sub](o, store, id)
  store:close()
  if code == nil then return die("%s", err) end
  return code
end

local function schedule_context()
  return {die = die, open_store = open_store, load = load}
end

function M.schedule(o)
  return require("lufa.cli.schedule").schedule(o, schedule_context())
end

function M.trigger(o)
  return require("lufa.cli.schedule").trigger(o, schedule_context())
end

function M.serve(o)
  return require("lufa.cli.serve").serve(o, schedule_context())
end

--- Entry point: `main("run", args...)`.
function M.main(command, ...)
  local ok, o = pcall(parse, { ... })
  if not ok then return die("%s\n%s", o, USAGE) end
  if o.help then
    stdout(USAGE)
    return 0
  end
  local f = M[command]
  if type(f) ~= "function" or command == "main" then return die("unknown command '%s'\n%s", tostring(command), USAGE) end
  return f(o)
end

return M
