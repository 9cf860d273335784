-- factory:run whose wait is abandoned (the caller cancelled, Ctrl-C at the prompt) cancels its run.
local lufa = require "lufa"
local pipeline = require "lufa.pipeline"
local util = require "tests.support.util"

describe("factory:run abandoned while it waits", function()
  it("cancels the run, which is recorded Cancelled", function()
    local f = assert(pipeline.from_table{ name = "slow", activities = {
      { name = "nap", type = "Wait", typeProperties = { waitTimeInSeconds = 600 } } } })
    local started = false
    local caller = lufa.spawn(function()
      return f:run("slow", { on_event = function(e)
        if e.type == "activity" and e.status == "InProgress" then started = true end
      end })
    end)
    util.wait_until(function() return started end)
    caller:cancel("gave up")
    local ok, err = pcall(caller.wait, caller)
    assert.is_false(ok)
    assert.matches("gave up", tostring(err))
    local run_id = f.runs.pipeline_order[1]
    util.wait_until(function() return f.runs:get_pipeline_run(run_id).status == "Cancelled" end)
    local acts = f:activity_runs(run_id)
    assert.equal("Cancelled", acts[1].status)
    assert.matches("interrupted", acts[1].error.message)
  end)
end)
