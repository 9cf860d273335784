-- A short smoke of the kill -9 campaign (scripts/test-crash runs the long one): runs of the sample pipeline
-- killed at random moments and resumed end Succeeded, each with one training job, the store intact.
local campaign = require "tests.support.crash_campaign"

describe("the kill -9 campaign, three rounds", function()
  it("resumes every run to Succeeded with exactly one training job", function()
    local r = campaign.run{ rounds = 3, seed = os.time() }
    print(campaign.summary(r))
    assert.are.same({}, r.failures)
    assert.are.equal(3, r.succeeded + r.killed_before_start)
  end)
end)
