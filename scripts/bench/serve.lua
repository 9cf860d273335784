-- Benchmark: the runs pages of `lufa serve` over a store of 100,000 runs. Times one request of the first
-- page, of a page deep in the list (keyset: as cheap as the first) and of filtered pages, over HTTP from
-- this process, and the store's page query alone; prints medians.
-- Usage: BUILD/lufa scripts/bench/serve.lua [stored runs] [repeats]
local lufa = require "lufa"
local http = require "lufa.http"
local runs = require "lufa.runs"
local serve = require "lufa.serve"

local STORED = tonumber(arg and arg[1]) or 100000
local REPEATS = tonumber(arg and arg[2]) or 9

local dir = os.tmpname()
os.remove(dir)
assert(require("lufa.fs").mkdir(dir))

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local store = assert(runs.open(dir .. "/serve.db"))
local t0 = lufa.now()
local base = runs.wall_time() - STORED * 60
for i = 1, STORED do
  local id = runs.guid()
  local start = runs.iso8601(base + i * 60)
  store:put_pipeline_run({runId = id, runGroupId = id, pipelineName = i % 10 == 0 and "Rare" or "Nightly",
    status = i % 17 == 0 and "Failed" or "Succeeded", runStart = start, runEnd = start, durationInMs = 2400,
    invokedBy = {name = "NightlyTrigger", invokedByType = "ScheduleTrigger"}, parameters = {epochs = "10"},
    message = "", isLatest = true})
  if i % 1000 == 0 then lufa.sleep(0) end
end
store:flush()
print(string.format("run store of %d runs written in %.1f s", STORED, lufa.now() - t0))

-- the cursor of a page halfway down the list
local cursor
local page = 0
repeat
  local _, nxt = store:pipeline_runs_page(nil, {limit = 50, cursor = cursor})
  cursor, page = nxt, page + 1
until page == STORED // 100 or not cursor

local app = assert(serve.start{store = store})
local url = string.format("http://127.0.0.1:%d", app.port)
print(string.format("%-52s %10s", "over " .. STORED .. " runs", "median ms"))
for _, case in ipairs{{"GET /runs (newest 50)", "/runs"},
    {"GET /runs?cursor=... (page " .. page + 1 .. ", runs " .. page * 50 .. "+)", "/runs?cursor=" .. cursor},
    {"GET /runs?pipeline=Rare&status=Failed", "/runs?pipeline=Rare&status=Failed"},
    {"GET /api/runs?status=Failed&cursor=... (deep)", "/api/runs?status=Failed&cursor=" .. cursor},
    {"GET /api/runs (newest 50, JSON)", "/api/runs"}} do
  local t = {}
  for _ = 1, REPEATS do
    local s = lufa.now()
    local res = assert(http.request{url = url .. case[2], timeout = 60})
    t[#t + 1] = lufa.now() - s
    assert(res.status == 200, res.body)
  end
  print(string.format("%-52s %10.2f", case[1], median(t) * 1e3))
end
for _, case in ipairs{{"store: first page", nil, nil}, {"store: deep page", nil, cursor},
    {"store: status Failed, deep page", {status = "Failed"}, cursor}} do
  local t = {}
  for _ = 1, REPEATS do
    local s = lufa.now()
    local list = store:pipeline_runs_page(case[2], {limit = 50, cursor = case[3]})
    t[#t + 1] = lufa.now() - s
    assert(#list == 50)
  end
  print(string.format("%-52s %10.2f", case[1], median(t) * 1e3))
end
app:close()
store:close()
os.execute("rm -rf '" .. dir .. "'")
