-- A smoke of the fault soak (scripts/test-faults runs 100): three runs of the sample pipeline under random
-- faults, each checked for the right outcome, one training job, a record that agrees with the service, an
-- intact model and no secret in any output. And the fault that makes the check for secrets bite: a service
-- whose error quotes the whole request (SAS URL, Authorization header, body).
local json = require "lufa.json"
local soak = require "tests.support.fault_soak"
local emulators = require "tests.support.emulators"

local sample = emulators.sample

describe("the fault soak", function()
  it("finds three runs under random faults correct, with no secret in any output", function()
    local lines = {}
    local s = soak.run { runs = 3, seed = 3, log = function(line) lines[#lines + 1] = line end }
    local report = soak.format(s) .. "\n" .. table.concat(lines, "\n")
    for _, p in ipairs(s.problems) do report = report .. "\nrun " .. p.run .. ":\n" .. p.output end
    assert.are.equal(3, s.correct, report)
    assert.are.equal(0, s.leaks, report)
    local injected = 0
    for _, c in pairs(s.faults) do injected = injected + c end
    assert.is_true(injected > 0, "no fault was injected:\n" .. report)
  end)

  it("shows an error that quotes the request without its secrets", function()
    local emu, data_dir, gens = emulators.start_with_data(100)
    local ok, err = pcall(function()
      emu:reset()
      emu:upload(sample.INPUT, gens[2].file)
      emu:faults { rules = json.array { { route = "ml.bes.submit", sequence = json.array {
        { type = "status", status = 400, echo = true } } } } }
      local state = emulators.tempdir()
      local r = emu:lufa({ "run", sample.FACTORY, sample.PIPELINE, "--override", sample.ARM_OVERRIDE, "--json" },
        { LUFA_STORE = state .. "/runs.db" })
      os.execute("rm -rf " .. emulators.shell_quote(state))
      assert.are_not.equal(0, r.status)
      assert.are.equal("Failed", json.decode(r.stdout).pipelineRun.status)
      -- the service's message reached the user, and the request it quotes carried the API key
      assert.truthy(r.output:find("Request could not be processed", 1, true), r.output)
      assert.truthy(r.output:find("<redacted>", 1, true), r.output)
      local submits = emu:requests { route = "ml.bes.submit" }
      assert.is_true(#submits >= 1)
      local found = soak.leaks(r.output, "lufa run", emu:secrets())
      assert.are.same({}, found, r.output)
    end)
    emulators.stop_with_data(emu, data_dir)
    if not ok then error(err, 0) end
  end)
end)
