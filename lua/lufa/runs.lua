--- Run records: pipeline runs and activity runs, in ADF's monitoring shape.
-- One small store interface so that a persistent store can replace the memory one:
--   store:put_pipeline_run(record), store:get_pipeline_run(run_id),
--   store:pipeline_runs([filter]), store:put_activity_run(record),
--   store:activity_runs(pipeline_run_id [, filter]).
-- `put_*` is called at every state change with the full record (same table each
-- time for one run), so a store may write through.
-- @module lufa.runs
local lufa = require "lufa"

local M = {}

local MemoryStore = {}
MemoryStore.__index = MemoryStore

--- A new in-memory store.
function M.memory()
  return setmetatable({pipeline = {}, pipeline_order = {}, activity = {}, activity_order = {}}, MemoryStore)
end

--- Save (or update) a pipeline run record.
function MemoryStore:put_pipeline_run(record)
  if not self.pipeline[record.runId] then
    self.pipeline_order[#self.pipeline_order + 1] = record.runId
  end
  self.pipeline[record.runId] = record
end

--- The pipeline run record with this id, or nil.
function MemoryStore:get_pipeline_run(run_id)
  return self.pipeline[run_id]
end

local function matches(record, filter)
  if not filter then return true end
  for k, v in pairs(filter) do
    local r = record[k]
    if type(v) == "string" and type(r) == "string" then
      if r:lower() ~= v:lower() then return false end
    elseif r ~= v then
      return false
    end
  end
  return true
end

--- Pipeline run records in start order, optionally filtered by exact field values
-- (strings compared ignoring case), e.g. `{pipelineName = "P", status = "Failed"}`.
function MemoryStore:pipeline_runs(filter)
  local out = {}
  for _, id in ipairs(self.pipeline_order) do
    local r = self.pipeline[id]
    if matches(r, filter) then out[#out + 1] = r end
  end
  return out
end

--- Save (or update) an activity run record.
function MemoryStore:put_activity_run(record)
  local id = record.activityRunId
  if not self.activity[id] then
    local list = self.activity_order[record.pipelineRunId]
    if not list then
      list = {}
      self.activity_order[record.pipelineRunId] = list
    end
    list[#list + 1] = id
  end
  self.activity[id] = record
end

--- Activity run records of one pipeline run, in the order they were created,
-- optionally filtered (e.g. `{activityName = "x"}`).
function MemoryStore:activity_runs(pipeline_run_id, filter)
  local out = {}
  for _, id in ipairs(self.activity_order[pipeline_run_id] or {}) do
    local r = self.activity[id]
    if matches(r, filter) then out[#out + 1] = r end
  end
  return out
end

-- Wall-clock time from the loop's monotonic clock, anchored once.
local wall_anchor = os.time()
local mono_anchor = lufa.now()

--- Current time as seconds since the epoch (float), consistent with `lufa.now()`.
function M.wall_time()
  return wall_anchor + (lufa.now() - mono_anchor)
end

--- Format epoch seconds as ADF does: `2024-05-01T02:00:01.1234567Z`.
function M.iso8601(t)
  t = t or M.wall_time()
  local sec = math.floor(t)
  local ticks = math.floor((t - sec) * 1e7 + 0.5)
  if ticks >= 10000000 then sec, ticks = sec + 1, ticks - 10000000 end
  return os.date("!%Y-%m-%dT%H:%M:%S", sec) .. string.format(".%07dZ", ticks)
end

local has_crypto, crypto = pcall(require, "lufa.crypto")

--- A new random (version 4) GUID in the `D` format (from the system's secure generator
-- when lufa.crypto is there, so a reseeded `math.random` cannot repeat run ids).
function M.guid()
  if has_crypto and crypto.uuid4 then
    local id = crypto.uuid4()
    if id then return id end
  end
  local b = {}
  for i = 1, 16 do b[i] = math.random(0, 255) end
  b[7] = (b[7] & 0x0f) | 0x40
  b[9] = (b[9] & 0x3f) | 0x80
  return string.format("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
    table.unpack(b))
end

local default_store
--- The process-wide default store (a memory store made on first use).
function M.default()
  default_store = default_store or M.memory()
  return default_store
end

return M
