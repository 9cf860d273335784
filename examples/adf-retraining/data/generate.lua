-- Writes two generations of bike-rental training data with a known, different relationship, so that
-- retraining visibly changes the scoring service's predictions:
--   generation 1 (spring):  rentals = 60 + 8.0 * temperature - 1.0 * humidity + 2.0 * windspeed + noise
--   generation 2 (autumn):  rentals = 90 + 3.0 * temperature - 0.5 * humidity - 4.0 * windspeed + noise
-- Usage: lufa examples/adf-retraining/data/generate.lua [OUTPUT_DIR] [ROWS]
-- The rows are the same for the same arguments (a fixed seed), so runs are comparable.
local out_dir = arg and arg[1] or "."
local rows = tonumber(arg and arg[2]) or 400

local GENERATIONS = {
  { file = "rentals-gen1.csv", intercept = 60, temperature = 8.0, humidity = -1.0, windspeed = 2.0 },
  { file = "rentals-gen2.csv", intercept = 90, temperature = 3.0, humidity = -0.5, windspeed = -4.0 },
}

-- A small linear congruential generator: the same numbers on every platform and Lua build.
local state = 20171008
local function uniform()
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648
end
local function normal()  -- Box-Muller
  local u1, u2 = uniform(), uniform()
  if u1 < 1e-12 then u1 = 1e-12 end
  return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
end

for _, g in ipairs(GENERATIONS) do
  local path = out_dir .. "/" .. g.file
  local f = assert(io.open(path, "w"))
  f:write("temperature,humidity,windspeed,rentals\n")
  for _ = 1, rows do
    local t = 5 + uniform() * 25       -- °C
    local h = 30 + uniform() * 60      -- %
    local w = uniform() * 12           -- m/s
    local y = g.intercept + g.temperature * t + g.humidity * h + g.windspeed * w + normal() * 3
    f:write(string.format("%.2f,%.1f,%.2f,%.1f\n", t, h, w, y))
  end
  assert(f:close())
  print(string.format("%s: %d rows, rentals = %g %+g*temperature %+g*humidity %+g*windspeed (+ noise)",
    path, rows, g.intercept, g.temperature, g.humidity, g.windspeed))
end
