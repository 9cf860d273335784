-- Ctrl-C: lufa.on_interrupt runs its function in a task once; `lufa run` cancels the pipeline run cleanly.
local util = require "tests.support.util"

local lufa_bin = (os.getenv("LUFA_BUILD_DIR") or "build") .. "/lufa"

-- Runs a command, giving back its exit status and combined output.
local function run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("a")
  p:close()
  return tonumber(out:match("exit=(%d+)%s*$")), out
end

describe("lufa.on_interrupt", function()
  it("runs its function in a task on SIGINT; the task it cancels unwinds", function()
    local status, out = run(util.shell_quote(lufa_bin) .. [[ -e '
      local lufa = require "lufa"
      local t = lufa.spawn(function()
        local _ <close> = setmetatable({}, { __close = function() print("cleanup ran") end })
        lufa.sleep(60)
      end)
      lufa.on_interrupt(function() print("interrupted") t:cancel("interrupted") end)
      io.popen("(sleep 0.2; kill -INT $PPID) &"):close()']])
    assert.equal(0, status)
    assert.matches("interrupted\ncleanup ran", out)
  end)

  it("does not keep a finished program alive", function()
    local status, out = run(util.shell_quote(lufa_bin) .. [[ -e 'require("lufa").on_interrupt(function() end) print("done")']])
    assert.equal(0, status)
    assert.matches("done", out)
  end)

  it("lets a second Ctrl-C end the process", function()
    local status = run(util.shell_quote(lufa_bin) .. [[ -e '
      local lufa = require "lufa"
      lufa.on_interrupt(function() end)  -- swallows the first one
      io.popen("(sleep 0.2; kill -INT $PPID; sleep 0.3; kill -INT $PPID) &"):close()
      lufa.sleep(30)']])
    assert.equal(130, status)  -- 128 + SIGINT: killed by the second one
  end)
end)

describe("lufa run and Ctrl-C", function()
  local dir

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. util.shell_quote(dir .. "/pipeline")))
    util.write_file(dir .. "/pipeline/slow.json", [[{"name": "slow", "properties": {"activities": [
      {"name": "long", "type": "Wait", "typeProperties": {"waitTimeInSeconds": 60}},
      {"name": "after", "type": "Wait", "typeProperties": {"waitTimeInSeconds": 0},
       "dependsOn": [{"activity": "long", "dependencyConditions": ["Succeeded"]}]}]}}]])
  end)

  teardown(function() os.execute("rm -rf " .. util.shell_quote(dir)) end)

  it("cancels the run, records it and exits 130", function()
    -- the shell starts lufa in the background, interrupts it once the run has begun (lufa names the run
    -- when its handlers are in place), then waits for its status
    local err = dir .. "/stderr"
    local status, out = run(string.format("(%s run %s slow --json 2>%s & pid=$!; " ..
      "for i in $(seq 600); do grep -q 'lufa: run ' %s && break; sleep 0.05; done; kill -INT $pid; wait $pid)",
      util.shell_quote(lufa_bin), util.shell_quote(dir), util.shell_quote(err), util.shell_quote(err)))
    assert.equal(130, status)
    assert.matches("interrupted: cancelling the run", util.read_file(err))
    -- the run record goes to stdout; its key order is not fixed, so read it as JSON
    local record = require("lufa.json").decode(out:match("^(.-)exit=%d+%s*$"))
    assert.equal("Cancelled", record.pipelineRun.status)
    local by_name = {}
    for _, a in ipairs(record.activityRuns) do by_name[a.activityName] = a.status end
    assert.same({ long = "Cancelled", after = "Skipped" }, by_name)
  end)
end)
