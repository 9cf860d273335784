-- Benchmark: expression evaluations per second for a typical ADF expression,
-- parsed once and evaluated many times.
--   lufa scripts/bench/expression.lua [iterations]
-- (also runs under plain lua5.4 when lufa's modules are on the path)

local expression = require "lufa.expression"
local json = require "lufa.json"

local iterations = tonumber(arg and arg[1]) or 1000000
local text = "@concat(pipeline().parameters.a, activity('x').output.y)"

local activity_x = json.object { output = json.object { y = "-suffix" } }
local scope = {
  pipeline = { Pipeline = "bench", RunId = "00000000-0000-0000-0000-000000000000",
    parameters = json.object { a = "prefix" } },
  activity = function(name)
    if name == "x" then return activity_x end
    error("unknown activity " .. name)
  end,
}

local function clock() return os.clock() end

-- Parse cost.
local parse_n = math.max(1, iterations // 20)
local t0 = clock()
for _ = 1, parse_n do assert(expression.compile(text)) end
local parse_s = clock() - t0

-- Evaluation (compiled once).
local compiled = assert(expression.compile(text))
assert(compiled:eval(scope) == "prefix-suffix")
for _ = 1, 1000 do compiled:eval(scope) end -- warm up
t0 = clock()
for _ = 1, iterations do compiled:eval(scope) end
local eval_s = clock() - t0

-- Template form and evaluate() with the compile cache, for comparison.
local template = assert(expression.compile("@{pipeline().parameters.a}@{activity('x').output.y}"))
t0 = clock()
for _ = 1, iterations do template:eval(scope) end
local template_s = clock() - t0

t0 = clock()
for _ = 1, iterations do expression.evaluate(text, scope) end
local cached_s = clock() - t0

local function rate(n, s) return string.format("%12.0f /s  (%.3f µs each)", n / s, s / n * 1e6) end

print("expression benchmark (CPU time, " .. iterations .. " iterations)")
print("  expression: " .. text)
print("  compile                       " .. rate(parse_n, parse_s))
print("  eval (compiled once)          " .. rate(iterations, eval_s))
print("  eval, @{…} template form      " .. rate(iterations, template_s))
print("  expression.evaluate (cached)  " .. rate(iterations, cached_s))
