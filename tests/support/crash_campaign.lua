--- The kill -9 campaign: runs of the sample pipeline against the stand-ins, each killed at a random moment,
-- then `lufa resume` (again and again if needed) until the run has ended. Every run must end Succeeded,
-- with exactly one training job started on the service, no record lost and the store intact.
-- Used by scripts/test-crash (a person's long campaign) and by tests/e2e/crash_test.lua (a short smoke).
local lufa = require "lufa"
local json = require "lufa.json"
local emulators = require "tests.support.emulators"

local M = {}

local function count(list, pred)
  local n = 0
  for _, x in ipairs(list) do if pred(x) then n = n + 1 end end
  return n
end

--- Runs the campaign. @param opts `rounds`, `seed`, `log(fmt, ...)`; @return the results table
function M.run(opts)
  local rounds, log = opts.rounds or 30, opts.log or function() end
  math.randomseed(opts.seed or os.time())
  local sample = emulators.sample
  local emu, data_dir, gens = emulators.start_with_data(200)
  local dir = emulators.tempdir()
  local results = {rounds = rounds, succeeded = 0, killed_before_start = 0, killed_after_end = 0, resumes = 0,
    extra_submits = 0, failures = {}}
  local ok, err = pcall(function()
    emu:settings{ jobDurationMs = 1500, armOperationMs = 600 }
    for round = 1, rounds do
      emu:reset()
      emu:settings{ jobDurationMs = 1500, armOperationMs = 600 }
      emu:upload(sample.INPUT, gens[2].file)
      local store = string.format("%s/round%d.db", dir, round)
      local args = { "run", sample.FACTORY, sample.PIPELINE, "--override", sample.ARM_OVERRIDE, "--store", store,
        "--quiet" }
      local child = emu:spawn_lufa(args)
      local delay = math.random() * 4.0  -- a whole run takes about 3 s here
      lufa.sleep(delay)
      child:signal("KILL")
      local status = child:wait(10)
      local id = child:stderr():match("lufa: run (%x+%-[%x%-]+) of pipeline")
      local problem
      if not id then
        -- killed before the run was recorded: nothing started on the service may be left behind
        results.killed_before_start = results.killed_before_start + 1
        if count(emu:jobs(), function(j) return j.state ~= "NotStarted" end) > 0 then
          problem = "a job was started by a run that was never recorded"
        end
      else
        if status == 0 then results.killed_after_end = results.killed_after_end + 1 end
        local final
        for _ = 1, 5 do
          local show = emu:lufa{ "runs", "show", id, "--json", "--store", store }
          local doc = show.status == 0 and json.decode(show.stdout)
          if not doc then problem = "runs show failed: " .. show.output break end
          final = doc.pipelineRun.status
          if final ~= "Interrupted" and final ~= "InProgress" then break end
          results.resumes = results.resumes + 1
          local r = emu:lufa{ "resume", id, "--store", store, "--quiet" }
          if r.status ~= 0 then problem = "resume exited " .. r.status .. ": " .. r.output break end
        end
        local started = count(emu:jobs(), function(j) return j.state ~= "NotStarted" end)
        local submits = #emu:requests{ route = "ml.bes.submit" }
        results.extra_submits = results.extra_submits + math.max(0, submits - 1)
        local check = emu:lufa{ "runs", "check", "--store", store }
        if problem then
        elseif final ~= "Succeeded" then problem = "the run ended " .. tostring(final)
        elseif started ~= 1 then problem = started .. " training jobs were started"
        elseif not check.stdout:find(": ok\n", 1, true) then problem = "integrity check: " .. check.output
        else results.succeeded = results.succeeded + 1 end
      end
      if problem then
        results.failures[#results.failures + 1] = string.format("round %d (killed after %.2f s): %s", round, delay, problem)
      end
      log("round %d/%d: killed after %.2f s, %s", round, rounds, delay, problem or "ok")
      child:cleanup()
    end
  end)
  emulators.stop_with_data(emu, data_dir)
  os.execute("rm -rf " .. emulators.shell_quote(dir))
  if not ok then error(err, 0) end
  return results
end

--- One line for the results.
function M.summary(r)
  return string.format("%d rounds: %d resumed to Succeeded with one training job, %d killed before the run was " ..
    "recorded, %d after it ended; %d resume(s); %d job(s) submitted but never started; %d failure(s)",
    r.rounds, r.succeeded, r.killed_before_start, r.killed_after_end, r.resumes, r.extra_submits, #r.failures)
end

return M
