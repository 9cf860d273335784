-- The run store from the command line: `lufa run` records, `lufa runs list|show|cancel|prune|check`,
-- `lufa rerun`, `lufa resume`; SIGTERM and SIGHUP cancel a run as Ctrl-C does, a second signal stops at once
-- and leaves the run to resume; kill -9 leaves it Interrupted, and `lufa resume` finishes it.
local lufa = require "lufa"
local json = require "lufa.json"
local util = require "tests.support.util"

local q = util.shell_quote
local lufa_bin = util.lufa_binary()
local dir, factory, acts, store

-- Runs a command; its exit status and its output (stdout and stderr).
local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("a")
  p:close()
  local status = tonumber(out:match("exit=(%d+)%s*$"))
  return status, (out:gsub("exit=%d+%s*$", ""))
end

local function lufa_cmd(...)
  local args = {}
  for i, a in ipairs{...} do args[i] = q(a) end
  return q(lufa_bin) .. " " .. table.concat(args, " ") .. " --store " .. q(store)
end

-- The lufa processes started in the background, stopped after each test so that a failing test leaves
-- none behind (one left running would hold the test's output open until ctest's timeout).
local children = {}

-- Starts `lufa ARGS` in the background; returns a handle with pid, wait() → status, output().
local function spawn(...)
  local out, st = os.tmpname(), os.tmpname()
  os.remove(st)
  local p = io.popen(string.format("(%s > %s 2>&1 </dev/null; echo $? > %s) >/dev/null 2>&1 & echo $!",
    lufa_cmd(...), q(out), q(st)))
  local subshell = p:read("l")
  p:close()
  local pid
  util.wait_until(function()
    local pg = io.popen("pgrep -P " .. subshell)
    pid = pg:read("l")
    pg:close()
    return pid ~= nil
  end, 10)
  children[#children + 1] = {pid = pid, status_file = st}
  return {pid = pid,
    output = function() return util.read_file(out) or "" end,
    wait = function()
      -- the shell creates the status file before it writes the number: wait for the number
      util.wait_until(function() return (util.read_file(st) or ""):match("%d+\n") ~= nil end, 60)
      return tonumber((util.read_file(st) or ""):match("%d+"))
    end}
end

local function marks(name)
  local text = util.read_file(dir .. "/marks") or ""
  local n = 0
  for line in text:gmatch("[^\n]+") do if line == name then n = n + 1 end end
  return n
end

local function run_record(id)
  local status, out = sh(lufa_cmd("runs", "show", id, "--json"))
  assert.are.equal(0, status, out)
  return json.decode(out)
end

setup(function()
  dir = util.tempdir()
  factory, acts = dir .. "/factory", dir .. "/activities"
  assert(os.execute("mkdir -p " .. q(factory .. "/pipeline") .. " " .. q(acts)))
  -- Mark: notes its name in the marks file, waits while the file typeProperties.holdWhile exists, fails
  -- while the file typeProperties.failWhile exists; its cleanup takes typeProperties.cleanup seconds.
  util.write_file(acts .. "/Mark.lua", [[
    local lufa = require "lufa"
    local function exists(path)
      local f = path and io.open(path)
      if f then f:close() end
      return f ~= nil
    end
    return {run = function(ctx)
      local f = assert(io.open(]] .. string.format("%q", dir .. "/marks") .. [[, "a"))
      f:write(ctx.name, "\n")
      f:close()
      local cleanup = ctx:property("cleanup")
      if cleanup then ctx:defer(function() lufa.sleep(cleanup) end) end
      while exists(ctx:property("holdWhile")) do ctx:sleep(0.05) end
      local flag = ctx:property("failWhile")
      if exists(flag) then ctx:fail("Marked", ctx.name .. " fails while " .. flag .. " exists") end
      return {name = ctx.name}
    end}]])
  local function pipeline(name, activities)
    util.write_file(factory .. "/pipeline/" .. name .. ".json", json.encode{name = name,
      properties = {activities = activities}})
  end
  local function mark(name, props, after)
    local a = {name = name, type = "Mark", typeProperties = json.object(props or {})}
    if after then a.dependsOn = {{activity = after, dependencyConditions = {"Succeeded"}}} end
    return a
  end
  pipeline("quick", {mark("first"), mark("second", {failWhile = dir .. "/broken"}, "first")})
  pipeline("slow", {mark("first"), mark("long", {holdWhile = dir .. "/hold", cleanup = 3}, "first"), mark("last", nil, "long")})
end)

teardown(function() os.execute("rm -rf " .. q(dir)) end)

after_each(function()
  for _, c in ipairs(children) do
    -- one that has ended has its status written; its pid may belong to another process by now
    if not (util.read_file(c.status_file) or ""):match("%d") then os.execute("kill -9 " .. c.pid .. " 2>/dev/null") end
  end
  children = {}
end)

before_each(function()
  store = os.tmpname() .. ".db"
  os.remove(dir .. "/marks")
  os.remove(dir .. "/broken")
  util.write_file(dir .. "/hold", "")
end)

describe("lufa run and lufa runs", function()
  it("records each run: list shows it newest first, show shows its activities", function()
    local s1, out1 = sh(lufa_cmd("run", factory, "quick", "--activities", acts, "--quiet"))
    assert.are.equal(0, s1, out1)
    local id = out1:match("lufa: run (%S+) of pipeline quick, recorded in")
    assert.is_string(id, out1)
    util.write_file(dir .. "/broken", "")
    local s2, out2 = sh(lufa_cmd("run", factory, "quick", "--activities", acts, "--quiet"))
    assert.are.equal(1, s2, out2)
    local failed = out2:match("lufa: run (%S+) of pipeline")

    local status, list = sh(lufa_cmd("runs", "list"))
    assert.are.equal(0, status, list)
    local first_line = list:match("\n([^\n]+)")
    assert.truthy(first_line:find(failed, 1, true), list)  -- newest first
    assert.matches("Failed", first_line)
    assert.truthy(list:find(id, 1, true), list)
    local _, only_failed = sh(lufa_cmd("runs", "list", "--status", "failed"))
    assert.is_nil(only_failed:find(id, 1, true))
    assert.truthy(only_failed:find(failed, 1, true))

    local _, show = sh(lufa_cmd("runs", "show", failed:sub(1, 8)))  -- a prefix is enough
    assert.matches("status%s+Failed", show)
    assert.matches("second%s+Mark%s+Failed", show)
    assert.matches("error Marked: second fails while", show)

    local doc = run_record(id)
    assert.are.equal("Succeeded", doc.pipelineRun.status)
    assert.are.equal(2, #doc.activityRuns)
    local _, check = sh(lufa_cmd("runs", "check"))
    assert.matches(": ok\n", check)
  end)

  it("says so when a store given by name does not exist", function()
    local status, out = sh(q(lufa_bin) .. " runs list --store " .. q(dir .. "/none.db"))
    assert.are.equal(2, status)
    assert.matches("no run store at .*none%.db", out)
  end)

  it("prunes old runs", function()
    sh(lufa_cmd("run", factory, "quick", "--activities", acts, "--quiet"))
    local _, keep = sh(lufa_cmd("runs", "prune", "--older-than", "1d"))
    assert.matches("pruned 0 run", keep)
    lufa.sleep(1.1)
    local _, gone = sh(lufa_cmd("runs", "prune", "--older-than", "1s"))
    assert.matches("pruned 1 run", gone)
    local status, usage = sh(lufa_cmd("runs", "prune"))
    assert.are.equal(2, status)
    assert.matches("%-%-older%-than", usage)
  end)
end)

describe("lufa rerun", function()
  it("--from-failure keeps what succeeded and runs the rest", function()
    util.write_file(dir .. "/broken", "")
    local _, out = sh(lufa_cmd("run", factory, "quick", "--activities", acts, "--quiet"))
    local id = out:match("lufa: run (%S+) of pipeline")
    os.remove(dir .. "/broken")
    local status, rerun = sh(lufa_cmd("rerun", id, "--from-failure", "--quiet"))
    assert.are.equal(0, status, rerun)
    assert.matches("pipeline quick: Succeeded", rerun)
    assert.matches("first%s+Succeeded%s+%S+%s+%(output of run " .. id:gsub("%-", "%%-"), rerun)
    assert.are.equal(1, marks("first"))
    assert.are.equal(2, marks("second"))
    local new_id = rerun:match("lufa: run (%S+) of pipeline")
    assert.are.equal(run_record(id).pipelineRun.runGroupId, run_record(new_id).pipelineRun.runGroupId)
  end)
end)

describe("signals", function()
  for _, case in ipairs{{"TERM", 143}, {"HUP", 129}} do
    it("SIG" .. case[1] .. " cancels the run cleanly and exits " .. case[2], function()
      local child = spawn("run", factory, "slow", "--activities", acts, "--quiet")
      util.wait_until(function() return marks("long") == 1 end, 20)
      os.execute("kill -" .. case[1] .. " " .. child.pid)
      assert.are.equal(case[2], child:wait())
      local out = child.output()
      assert.matches("interrupted: cancelling the run %(SIG" .. case[1], out)
      local doc = run_record(out:match("lufa: run (%S+) of pipeline"))
      assert.are.equal("Cancelled", doc.pipelineRun.status)
      assert.matches("SIG" .. case[1], doc.pipelineRun.message)
    end)
  end

  it("a second signal stops at once; lufa resume then finishes the cancellation", function()
    local child = spawn("run", factory, "slow", "--activities", acts, "--quiet")
    util.wait_until(function() return marks("long") == 1 end, 20)
    os.execute("kill -TERM " .. child.pid)
    util.wait_until(function() return child.output():find("cancelling the run", 1, true) ~= nil end, 10)
    os.execute("kill -TERM " .. child.pid)  -- during the 3-second cleanup
    assert.are.equal(143, child:wait())
    local id = child.output():match("lufa: run (%S+) of pipeline")
    local _, list = sh(lufa_cmd("runs", "list"))
    assert.matches("Interrupted", list)
    local status, out = sh(lufa_cmd("resume", id, "--quiet"))
    assert.are.equal(1, status, out)
    assert.matches("pipeline slow: Cancelled", out)
    assert.are.equal(1, marks("first"))
    assert.are.equal("Cancelled", run_record(id).pipelineRun.status)
  end)
end)

describe("lufa resume after kill -9", function()
  it("continues the run under its id: what succeeded stands, the rest runs", function()
    local child = spawn("run", factory, "slow", "--activities", acts, "--quiet")
    util.wait_until(function() return marks("long") == 1 end, 20)
    os.execute("kill -9 " .. child.pid)
    child:wait()
    local id = child.output():match("lufa: run (%S+) of pipeline")
    local doc = run_record(id)
    assert.are.equal("Interrupted", doc.pipelineRun.status)
    assert.matches("lufa resume " .. id:gsub("%-", "%%-"), doc.pipelineRun.message)
    -- the activity that was executing journaled nothing: it starts anew (and no longer waits)
    os.remove(dir .. "/hold")
    local status, out = sh(lufa_cmd("resume", id:sub(1, 13), "--quiet"))
    assert.are.equal(0, status, out)
    assert.matches("pipeline slow: Succeeded", out)
    assert.are.equal(1, marks("first"))
    assert.are.equal(2, marks("long"))
    assert.are.equal(1, marks("last"))
    doc = run_record(id)
    assert.are.equal("Succeeded", doc.pipelineRun.status)
    local resumed = 0
    for _, a in ipairs(doc.activityRuns) do if a.resumedFrom then resumed = resumed + 1 end end
    assert.are.equal(1, resumed)
    local again, refused = sh(lufa_cmd("resume", id))
    assert.are.equal(2, again)
    assert.matches("has ended %(Succeeded%): nothing to resume", refused)
  end)
end)

describe("lufa runs cancel", function()
  it("cancels a run that another lufa process executes", function()
    local child = spawn("run", factory, "slow", "--activities", acts, "--quiet")
    util.wait_until(function() return marks("long") == 1 end, 20)
    local id = child.output():match("lufa: run (%S+) of pipeline")
    local status, out = sh(lufa_cmd("runs", "cancel", id))
    assert.are.equal(0, status, out)
    assert.matches("run " .. id:gsub("%-", "%%-") .. ": Cancelled", out)
    assert.are.equal(1, child:wait())
    assert.matches("pipeline slow: Cancelled", child.output())
    assert.are.equal(0, marks("last"))
  end)
end)
