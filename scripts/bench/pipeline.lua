-- Benchmark: the pipeline engine's own overhead, with 1,000 no-op activities.
-- Shapes: wide (all independent, all run at once), deep (a chain, each waits for the
-- previous), and a 10 x 100 grid (10 layers, each activity depends on one in the layer
-- above). Reports the median of several runs: total time and time per activity, for
-- compile (validation) and for the run, as wall time and as this process's CPU time (the
-- CPU figure is steadier on a busy machine).
-- Usage: BUILD/lufa scripts/bench/pipeline.lua [activities] [repeats]
local lufa = require "lufa"
local pipeline = require "lufa.pipeline"
local activities = require "lufa.activities"

local N = tonumber(arg and arg[1]) or 1000
local REPEATS = tonumber(arg and arg[2]) or 5

local registry = activities.new(activities.root)
registry:register("NoOp", {run = function() return {} end})

local function shape(kind)
  local acts = {}
  for i = 1, N do
    local a = {name = "a" .. i, type = "NoOp"}
    if kind == "deep" and i > 1 then
      a.dependsOn = {{activity = "a" .. (i - 1), dependencyConditions = {"Succeeded"}}}
    elseif kind == "grid" and i > 100 then
      a.dependsOn = {{activity = "a" .. (i - 100), dependencyConditions = {"Succeeded"}}}
    end
    acts[i] = a
  end
  return {name = "Bench", properties = {activities = acts}}
end

local function median(t)
  table.sort(t)
  local n = #t
  if n % 2 == 1 then return t[(n + 1) // 2] end
  return (t[n // 2] + t[n // 2 + 1]) / 2
end

print(string.format("pipeline engine: %d no-op activities, median of %d runs", N, REPEATS))
print(string.format("%-6s %12s %14s %12s %14s %12s %14s", "shape", "validate ms", "per act (us)",
  "run ms", "per act (us)", "run cpu ms", "per act (us)"))
for _, kind in ipairs{"wide", "deep", "grid"} do
  local compile_times, run_times, cpu_times = {}, {}, {}
  for _ = 1, REPEATS do
    local factory = assert(pipeline.from_table(shape(kind), {activities = registry}))
    local t0 = lufa.now()
    local problems = pipeline.validate(factory)
    local t1 = lufa.now()
    assert(not pipeline.has_errors(problems), pipeline.format_problems(problems, true))
    local c1 = os.clock()
    local record = assert(factory:run("Bench"))
    local t2 = lufa.now()
    cpu_times[#cpu_times + 1] = os.clock() - c1
    assert(record.status == "Succeeded", record.message)
    assert(#factory:activity_runs(record.runId) == N)
    compile_times[#compile_times + 1] = t1 - t0
    run_times[#run_times + 1] = t2 - t1
    collectgarbage()
  end
  local c, r, u = median(compile_times), median(run_times), median(cpu_times)
  print(string.format("%-6s %12.1f %14.1f %12.1f %14.1f %12.1f %14.1f", kind, c * 1e3, c / N * 1e6,
    r * 1e3, r / N * 1e6, u * 1e3, u / N * 1e6))
end
