--- lufa.cli: the `lufa run`, `validate`, `runs`, `rerun`, `resume`, `schedule`, `trigger`, `publish`, `serve` and
-- `help` commands.
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
       lufa publish FACTORY --out DIR            write ADF's ARM template of the factory (docs/publish.md)
       lufa publish FACTORY --subscription S --resource-group G --factory F [--dry-run]   deploy it through ARM
       lufa serve [FACTORY...] [--port N] [--bind ADDRESS] [--token T]   run history pages in a browser
       lufa help [COMMAND]                       this text, or one command's
       lufa completions bash|zsh|fish            the shell's completion script
options:
  --store PATH           the run store (default: LUFA_STORE, else $XDG_STATE_HOME/lufa/runs.db);
                         ':memory:' records nothing beyond the process
  --override FILE        JSON overrides applied to the factory's files (e.g. local endpoints)
  --param NAME=VALUE     a pipeline parameter (repeatable; converted to the declared type)
  --activities DIR       a folder of <Type>.lua activity modules that add or replace types
  --json                 print the run record (or the problems) as JSON on standard output
  --quiet                no live progress, only the summary (and only errors logged)
  -v, -vv, -vvv          log more: what lufa does, then each request and its timing, then their headers
                         (credentials redacted); LUFA_LOG=error|warn|info|debug|trace does the same
  --log-format json      log lines as JSON objects (LUFA_LOG_FORMAT=json)
  --dry-run              (run) show the parameters, linked services, activities in order and the calls a
                         run would make; call nothing, record nothing
schedule options:
  --schedules FILE       cron schedules of Lua scripts (docs/scheduling.md)
  --trigger NAME         only this trigger
  --grace S              a ScheduleTrigger fire time missed by at most S seconds still runs (default 0)
  --drain-grace S        on SIGTERM, runs in progress get S seconds to finish before they are cancelled (60)
  --poll S               how often BlobEventsTriggers list their container (30)
publish options:
  --out DIR              write ARMTemplateForFactory.json and ARMTemplateParametersForFactory.json there
  --factory F            the factory's name in Azure (also the template's factoryName default)
  --parameters FILE      an ARM parameters file with the values to deploy with (secure ones included)
  --location L           the region of a factory that does not exist yet
  --arm-url URL          the Azure Resource Manager endpoint (default: LUFA_ARM_URL, else management.azure.com)
  --dry-run              show what would change in the factory in Azure, change nothing
serve options:
  --port N               the port (default 8470; 0 picks a free one)
  --bind ADDRESS         the address to listen on (default 127.0.0.1); off loopback a token is required
  --token T              that token (default: a random one, printed in the address)
  (each FACTORY folder given also has its triggers listed)
RUN_ID may be shortened to a unique prefix.
]]

local function die(fmt, ...)
  stderr("lufa: ", string.format(fmt, ...), "\n")
  return 2
end

local VALUED = {["--override"] = "override", ["--activities"] = "activities", ["--store"] = "store",
  ["--from"] = "from", ["--pipeline"] = "pipeline", ["--status"] = "status", ["--since"] = "since",
  ["--limit"] = "limit", ["--older-than"] = "older_than", ["--trigger"] = "trigger", ["--wait"] = "wait",
  ["--param"] = "param", ["-p"] = "param", ["--log-format"] = "log_format", ["--schedules"] = "schedules", ["--grace"] = "grace",
  ["--drain-grace"] = "drain_grace", ["--poll"] = "poll", ["--next"] = "next", ["--from"] = "from",
  ["--out"] = "out", ["--subscription"] = "subscription", ["--resource-group"] = "resource_group",
  ["--factory"] = "factory", ["--arm-url"] = "arm_url", ["--location"] = "location", ["--parameters"] = "parameters",
  ["--port"] = "port", ["--bind"] = "bind", ["--token"] = "token"}
local FLAGS = {["--json"] = "json", ["--quiet"] = "quiet", ["-q"] = "quiet", ["--from-failure"] = "from_failure",
  ["-h"] = "help", ["--help"] = "help", ["--once"] = "once", ["--dry-run"] = "dry_run", ["--verbose"] = "verbose", ["-v"] = "verbose"}

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
      else
        o[key] = v
      end
    elseif FLAGS[a] then
      o[FLAGS[a]] = true
      if FLAGS[a] == "verbose" then o.verbosity = (o.verbosity or 0) + 1 end
    elseif a:match("^%-v+$") then  -- -vv, -vvv: more detail
      o.verbose, o.verbosity = true, (o.verbosity or 0) + #a - 1
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      local known = {}
      for k in pairs(VALUED) do known[#known + 1] = k end
      for k in pairs(FLAGS) do known[#known + 1] = k end
      table.sort(known)
      local near = require("lufa.options").nearest(a, known)
      error(string.format("unknown option '%s'%s", a, near and (" (did you mean '" .. near .. "'?)") or ""), 0)
    else
      o[#o + 1] = a
    end
    i = i + 1
  end
  return o
end

local function load(path, o, partial)
  local factory, problems = pipeline.load_factory(path, { override = o.override, activity_folders = o.activities,
    store = o.opened_store, partial = partial })
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
    stdout(json.encode({ pipelineRun = record, activityRuns = json.array(acts) }, { pretty = true, sort_keys = true }), "\n")
  else
    stdout(view.summary(record, acts))
  end
  store:close()
  if signal and record.status == "Cancelled" then return 128 + signal end
  return record.status == "Succeeded" and 0 or 1
end

function M.run(o)
  if #o ~= 2 then return die("run needs FACTORY and PIPELINE\n%s", USAGE) end
  if o.dry_run then
    local factory = load(o[1], o)
    if not factory then return 2 end
    return require("lufa.cli.dryrun").run(factory, o[2], o.params, stdout, stderr)
  end
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
  local factory = load(o[1], o, true)
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
  if not RUNS[sub] then
    local near = sub and require("lufa.options").nearest(sub, { "list", "show", "cancel", "prune", "check" })
    if near then return die("unknown runs command '%s' (did you mean '%s'?)", sub, near) end
    return die("runs needs list, show, cancel, prune or check\n%s", USAGE)
  end
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

--- The command table: `commands` (in usage order: `{name, sub = {subcommands}, summary}`), `valued` (options
-- that take a value) and `flags`, read from the usage text and the option tables that parse the command line.
function M.command_table()
  local t, by_name = {commands = {}, valued = {}, flags = {}}, {}
  for line in USAGE:gmatch("[^\n]+") do
    local rest = line:match("^usage: lufa (.*)$") or line:match("^       lufa (.*)$")
    if rest then
      local name, after = rest:match("^(%S+)%s*(.*)$")
      local c = by_name[name]
      if not c then
        c = {name = name, sub = {}, summary = after:match("%s%s+(%S.*)$") or ""}
        by_name[name] = c
        t.commands[#t.commands + 1] = c
      end
      local first = after:match("^(%S+)")
      if first and first:match("^[a-z|]+$") then
        for s in first:gmatch("[a-z]+") do
          local seen = false
          for _, x in ipairs(c.sub) do seen = seen or x == s end
          if not seen then c.sub[#c.sub + 1] = s end
        end
      end
    end
  end
  for k in pairs(VALUED) do t.valued[#t.valued + 1] = k end
  for k in pairs(FLAGS) do t.flags[#t.flags + 1] = k end
  table.sort(t.valued)
  table.sort(t.flags)
  return t
end

--- `lufa completions bash|zsh|fish`: the shell's completion script.
function M.completions(o)
  local script = require("lufa.cli.completions").script(o[1] or "", M.command_table())
  if not script then return die("completions needs a shell: bash, zsh or fish") end
  stdout(script)
  return 0
end

--- `lufa help [COMMAND]`: the usage lines of one command and its options, or everything.
function M.help(o)
  local command = o[1]
  if not command then
    stdout(USAGE)
    return 0
  end
  local lines, section = {}, nil
  for line in USAGE:gmatch("[^\n]+") do
    local usage_line = line:match("^usage: (lufa .*)$") or line:match("^       (lufa .*)$")
    if usage_line then
      if usage_line:match("^lufa " .. command:gsub("%p", "%%%0") .. "[ %]|]") or usage_line == "lufa " .. command then
        lines[#lines + 1] = (#lines == 0 and "usage: " or "       ") .. usage_line
      end
    elseif line:match("^%S.*:$") then
      section = line:match("^(%S+) options:$") or (line == "options:" and "" or nil)
      if section == command or section == "" then lines[#lines + 1] = line end
    elseif line:match("^%s") and (section == command or section == "") then
      lines[#lines + 1] = line
    elseif not line:match("^%s") then
      section = nil
      lines[#lines + 1] = line
    end
  end
  if not lines[1] or not lines[1]:match("^usage:") then
    local names = {}
    for _, c in ipairs(M.command_table().commands) do names[#names + 1] = c.name end
    local near = require("lufa.options").nearest(command, names)
    return die("unknown command '%s' (%s)", command, near and ("did you mean '" .. near .. "'?") or "lufa help lists the commands")
  end
  stdout(table.concat(lines, "\n") .. "\n")
  return 0
end

function M.publish(o)
  return require("lufa.cli.publish").publish(o, schedule_context())
end

--- Entry point: `main("run", args...)`.
-- -v info, -vv debug (requests and their timings), -vvv trace (their headers); -q errors only.
local function configure_log(o)
  local log = require "lufa.log"
  local level = (o.verbosity or 0) >= 3 and "trace" or (o.verbosity == 2 and "debug") or (o.verbosity == 1 and "info")
    or (o.quiet and "error") or nil
  log.configure{level = level, format = o.log_format}
end

function M.main(command, ...)
  local ok, o = pcall(parse, { ... })
  if not ok then return die("%s; 'lufa help %s' lists the options", o, tostring(command)) end
  local lok, lerr = pcall(configure_log, o)
  if not lok then return die("%s", (tostring(lerr):gsub("^[^:]*:%d+: ", ""))) end
  if o.help then
    stdout(USAGE)
    return 0
  end
  local f = M[command]
  if type(f) ~= "function" or command == "main" or command == "command_table" then
    local names = {}
    for _, c in ipairs(M.command_table().commands) do names[#names + 1] = c.name end
    local near = type(command) == "string" and require("lufa.options").nearest(command, names)
    if near then return die("unknown command '%s' (did you mean '%s'?)", command, near) end
    return die("unknown command '%s'\n%s", tostring(command), USAGE)
  end
  return f(o)
end

return M
