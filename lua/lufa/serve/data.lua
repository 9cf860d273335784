--- What the pages and the JSON API show, read from the run store (and, for triggers, the factories the
-- store names): one place, so the HTML and /api/... always agree.
-- @module lufa.serve.data
local json = require "lufa.json"
local runs = require "lufa.runs"

local M = {}

M.STATUSES = {"InProgress", "Queued", "Succeeded", "Failed", "Cancelled", "Canceling", "Interrupted"}

local UNITS = {s = 1, m = 60, h = 3600, d = 86400, w = 7 * 86400}

--- Epoch seconds of "2026-12-01", an ISO time, or a duration ago ("24h", "7d"); nil when not a time.
function M.time(s)
  if s == nil or s == "" then return nil end
  local n, unit = tostring(s):match("^(%d+%.?%d*)([smhdw])$")
  if n then return runs.wall_time() - tonumber(n) * UNITS[unit] end
  return runs.parse_time(s)
end

--- The filters of a runs query (`pipeline`, `status`, `trigger`, `since`, `until`, `cursor`, `limit`).
-- @return filter, opts; or nil and a message naming the bad parameter
function M.runs_query(q)
  local filter, opts = {}, {}
  if q.pipeline and q.pipeline ~= "" then filter.pipelineName = q.pipeline end
  if q.status and q.status ~= "" then filter.status = q.status end
  if q.trigger and q.trigger ~= "" then filter.trigger = q.trigger end
  if q.since and q.since ~= "" then
    opts.since = M.time(q.since)
    if not opts.since then return nil, string.format("since: expected a time (2026-12-01T10:00:00Z) or a duration such as 24h, got '%s'", q.since) end
  end
  if q["until"] and q["until"] ~= "" then
    opts.before = M.time(q["until"])
    if not opts.before then return nil, string.format("until: expected a time or a duration, got '%s'", q["until"]) end
  end
  if q.limit and q.limit ~= "" then
    opts.limit = math.tointeger(tonumber(q.limit))
    if not opts.limit or opts.limit < 1 or opts.limit > 500 then return nil, "limit: expected a whole number 1..500" end
  end
  if q.cursor and q.cursor ~= "" then opts.cursor = q.cursor end
  return filter, opts
end

--- A page of runs: records, next cursor; or nil and a message.
function M.runs_page(store, q)
  local filter, opts = M.runs_query(q)
  if not filter then return nil, opts end
  local list, next_cursor = store:pipeline_runs_page(filter, opts)
  if not list then return nil, next_cursor end
  return list, next_cursor
end

--- A run with its activity runs and how it relates to others: {pipelineRun, activityRuns, info, group}.
function M.run(store, id)
  local record, info = store:get_pipeline_run(id)
  if not record then return nil end
  local group = {}
  if record.runGroupId then
    group = store:pipeline_runs({runGroupId = record.runGroupId}, {limit = 50})
  end
  return {pipelineRun = record, activityRuns = store:activity_runs(id), info = info or {}, group = group}
end

function M.finished(status)
  return status ~= "InProgress" and status ~= "Queued" and status ~= "Canceling"
end

--- The triggers the store knows, with their factory's definition and next fire time where it loads.
-- @param factories extra factory folders to show (those given to lufa serve)
function M.triggers(store, factories)
  local list, by_key = {}, {}
  local function entry(scope, name)
    local key = scope .. "\0" .. name:lower()
    local e = by_key[key]
    if not e then
      e = {scope = scope, name = name}
      by_key[key] = e
      list[#list + 1] = e
    end
    return e
  end
  for _, t in ipairs(store.triggers and store:triggers() or {}) do
    local e = entry(t.scope, t.name)
    e.runtime_state, e.last_fire, e.checked = t.runtime_state, t.last_fire, t.checked
  end
  local scopes, seen = {}, {}
  for _, f in ipairs(factories or {}) do if not seen[f] then seen[f] = true; scopes[#scopes + 1] = f end end
  for _, e in ipairs(list) do if not seen[e.scope] then seen[e.scope] = true; scopes[#scopes + 1] = e.scope end end
  local pipeline = require "lufa.pipeline"
  local scheduler = require "lufa.schedule.scheduler"
  for _, scope in ipairs(scopes) do
    local ok, factory = pcall(pipeline.load_factory, scope, {store = store})
    if ok and factory and factory.origin then
      local sched = scheduler.new{factory = factory, store = store}
      local nok, fires = pcall(sched.next_fires, sched, 1, runs.wall_time())
      for _, item in ipairs(nok and fires or {}) do
        local e = entry(sched.scope, item.name)
        e.type, e.started, e.note = item.kind, item.started, item.note
        e.next_fire = item.times and item.times[1]
      end
    end
  end
  for _, e in ipairs(list) do
    e.state = e.runtime_state or (e.started == true and "Started") or (e.started == false and "Stopped")
      or "unknown"
  end
  return list
end

--- A trigger entry as JSON (times as ISO 8601).
function M.trigger_json(e)
  local function iso(t) return t and runs.iso8601(t) or json.null end
  return json.object{scope = e.scope, name = e.name, type = e.type or json.null, state = e.state,
    lastFireTime = iso(e.last_fire), nextFireTime = iso(e.next_fire), note = e.note or json.null}
end

return M
