-- examples/retrain.lua, the retraining job written in Lua with a promotion gate, against the stand-ins:
-- it deploys a first model, keeps the deployed model when a retraining on the same data brings nothing
-- better, and promotes a model trained on new data. The gate's decision is read from the script's output
-- and checked against the scoring service's current model (control endpoint).
local emulators = require "tests.support.emulators"

local sample = emulators.sample
local emu, data_dir, gens

local function retrain(...)
  local r = emu:lufa{ "examples/retrain.lua", ... }
  r.job = r.stdout:match("job (%x+) finished")
  r.model = r.stdout:match("model at (%S+%.ilearner)")
  r.new_rmse = tonumber(r.stdout:match("holdout RMSE of the new model: ([%d.]+)"))
  r.current_rmse = r.stdout:match("the deployed model on the same data: (%S+)\n")
  return r
end

local function deployed()
  return emu:model("default")
end

describe("examples/retrain.lua", function()
  setup(function()
    emu, data_dir, gens = emulators.start_with_data(400)
  end)

  teardown(function() emulators.stop_with_data(emu, data_dir) end)

  before_each(function()
    emu:reset()
  end)

  it("deploys a first model, then keeps it when retraining on the same data brings nothing better", function()
    -- 1. the configured model knows nothing of this data: the new one is better and is deployed
    local first = retrain(gens[1].file)
    assert.are.equal(0, first.status, first.output)
    assert.is_string(first.job, first.output)
    assert.is_number(first.new_rmse, first.output)
    assert.truthy(first.stdout:find("deployed " .. first.model .. " to the scoring service (arm)", 1, true), first.output)
    local d1 = deployed()
    assert.are.equal(emu.env.LUFA_EMU_BLOB_ENDPOINT .. "/" .. first.model, d1.location:match("^[^?]*"))
    assert.are.equal(first.job, d1.model.source.jobId)
    assert.are.equal("Finished", emu:jobs(first.job).state)

    -- 2. the same data again: the new model is the deployed one (same fit), so it is not better
    local second = retrain()
    assert.are.equal(0, second.status, second.output)
    assert.are_not.equal(first.job, second.job)
    local job2 = emu:jobs(second.job)
    assert.are.same(d1.model.weights, job2.result.weights)
    assert.are.equal(d1.model.intercept, job2.result.intercept)
    assert.truthy(second.stdout:find("kept the deployed model", 1, true),
      "an identical model was promoted; the gate's figures: new " .. tostring(second.new_rmse) .. ", deployed " ..
      tostring(second.current_rmse) .. "\n" .. second.output)
    assert.is_nil(second.stdout:find("deployed " .. tostring(second.model), 1, true))
    assert.are.equal(d1.location, deployed().location)
    assert.are.equal(1, #emu:requests{ route = "ml.arm.patch" })  -- only the first run's update
  end)

  it("promotes a model trained on new data, which the deployed model predicts badly", function()
    local first = retrain(gens[1].file)
    assert.are.equal(0, first.status, first.output)
    local second = retrain(gens[2].file)
    assert.are.equal(0, second.status, second.output)
    assert.is_true(second.new_rmse < tonumber(second.current_rmse), second.output)
    assert.truthy(second.stdout:find("deployed " .. second.model .. " to the scoring service (arm)", 1, true), second.output)
    local d = deployed()
    assert.are.equal(second.job, d.model.source.jobId)
    assert.truthy(d.location:find(second.model, 1, true))
    -- the new model predicts the second generation's relationship
    local scored = emu:score("default", sample.FEATURES, sample.DAYS)
    for i, day in ipairs(sample.DAYS) do
      local e = sample.expected(gens[2], day)
      assert.is_true(math.abs(scored[i] - e) < 3, string.format("day %d: %g, expected ~%g", i, scored[i], e))
    end
  end)

  it("fails with exit status 1 and the service's details when training fails", function()
    local bad = data_dir .. "/no-label.csv"
    emulators.write_file(bad, "temperature,humidity,windspeed\n20,50,3\n25,40,5\n10,80,9\n15,60,2\n30,35,1\n")
    local before = deployed()
    local r = retrain(bad)
    assert.are.equal(1, r.status, r.output)
    local job = emu:jobs()[1]
    assert.are.equal("Failed", job.state)
    assert.truthy(r.stderr:find("training failed: ", 1, true), r.output)
    assert.truthy(r.stderr:find(job.details, 1, true), r.output)
    assert.are.equal(before.location, deployed().location)
  end)
end)
