--- `lufa runs list|show|cancel|prune|check`: the run store from the command line.
-- @module lufa.cli.runs
local lufa = require "lufa"
local json = require "lufa.json"
local runs = require "lufa.runs"
local view = require "lufa.cli.view"
local stdout, stderr = view.out, view.err

local M = {}

local UNITS = {s = 1, m = 60, h = 3600, d = 86400, w = 7 * 86400}

--- Seconds in "90d", "12h", "30m", "45s", "2w" (or nil).
function M.duration(s)
  local n, unit = tostring(s):match("^(%d+%.?%d*)([smhdw])$")
  return n and tonumber(n) * UNITS[unit] or nil
end

--- Epoch seconds of "2026-12-01", "2026-12-01T10:00:00Z" or a duration ago ("24h"), or nil.
function M.time(s)
  local ago = M.duration(s)
  if ago then return runs.wall_time() - ago end
  return runs.parse_time(s)
end

local function short_time(iso)
  return type(iso) == "string" and iso:gsub("T", " "):gsub("%.%d+", "") or ""
end

local function trigger_of(r)
  local ib = type(r.invokedBy) == "table" and r.invokedBy or {}
  local name, kind = ib.name, ib.invokedByType
  if type(name) ~= "string" then return "" end
  if kind == "PipelineActivity" then return "pipeline " .. tostring(ib.pipelineName) end
  return name
end

function M.list(o, store)
  store:reap()
  local filter = {}
  if o.pipeline then filter.pipelineName = o.pipeline end
  if o.status then filter.status = o.status end
  if o.trigger then filter.trigger = o.trigger end
  local since = o.since and M.time(o.since)
  if o.since and not since then return nil, string.format("--since expects a time or a duration such as 24h, got '%s'", o.since) end
  local limit = o.limit and math.tointeger(tonumber(o.limit))
  if o.limit and (not limit or limit < 1) then return nil, "--limit expects a positive whole number" end
  limit = limit or 50
  local list = store:pipeline_runs(filter, {since = since, limit = limit + 1, newest_first = true})
  local more = #list > limit
  if more then list[#list] = nil end
  if o.json then
    stdout(json.encode(json.array(list), {pretty = true, sort_keys = true}), "\n")
    return 0
  end
  if #list == 0 then
    stdout("no runs", (next(filter) or since) and " match" or " recorded", " in ", store.path, "\n")
    return 0
  end
  -- a store shared by a fleet also says which host ran what
  local host = store.shared and function(r) return string.format("  %-16s", tostring(r.host or "")) end
    or function() return "" end
  local lines = {string.format("%-36s  %-24s %-12s %-20s %9s%s  %s", "RUN ID", "PIPELINE", "STATUS", "START (UTC)",
    "DURATION", host{host = "HOST"}, "TRIGGER")}
  for _, r in ipairs(list) do
    lines[#lines + 1] = string.format("%-36s  %-24s %-12s %-20s %9s%s  %s", r.runId, r.pipelineName, r.status,
      short_time(r.runStart), view.seconds(r.durationInMs), host(r), trigger_of(r))
  end
  if more then lines[#lines + 1] = string.format("(the newest %d; --limit N shows more)", limit) end
  stdout(table.concat(lines, "\n"), "\n")
  return 0
end

local function compact(v, max)
  if v == nil or v == json.null then return nil end
  local s = json.encode(v)
  if s == "{}" or s == "[]" or s == '""' then return nil end
  if #s > max then s = s:sub(1, max) .. "…" end
  return s
end

function M.show(o, store, id)
  store:reap()
  local record, info = store:get_pipeline_run(id)
  local acts = store:activity_runs(id)
  if o.json then
    stdout(json.encode({pipelineRun = record, activityRuns = json.array(acts)}, {pretty = true, sort_keys = true}), "\n")
    return 0
  end
  local out = {}
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  add("run %s", record.runId)
  add("  pipeline     %s", record.pipelineName)
  add("  status       %s", record.status)
  add("  started      %s   ended %s   duration %s", short_time(record.runStart),
    record.runEnd ~= json.null and short_time(record.runEnd) or "-", view.seconds(record.durationInMs))
  add("  invoked by   %s (%s)", tostring(record.invokedBy and record.invokedBy.name),
    tostring(record.invokedBy and record.invokedBy.invokedByType))
  if store.shared and info.host then add("  host         %s", info.host) end
  if record.runGroupId ~= record.runId then add("  run group    %s", record.runGroupId) end
  if info.origin and info.origin.rerunOf then add("  rerun of     %s", info.origin.rerunOf) end
  local params = compact(record.parameters, 300)
  if params then add("  parameters   %s", params) end
  if info.origin and info.origin.factory then add("  factory      %s", info.origin.factory) end
  if record.message and record.message ~= "" then add("  message      %s", record.message) end
  add("activities:")
  for _, a in ipairs(acts) do
    local name = a.activityName .. (a.iteration and (" [#" .. a.iteration .. "]") or "")
    local attempt = math.type(a.retryAttempt) == "integer" and ("  attempt " .. (a.retryAttempt + 1)) or ""
    add("  %-34s %-24s %-12s %8s%s", name, tostring(a.activityType), a.status, view.seconds(a.durationInMs), attempt)
    if a.reusedFrom then add("      output of activity run %s (run %s)", a.reusedFrom.activityRunId, a.reusedFrom.pipelineRunId) end
    if a.resumedFrom then add("      resumed: continues activity run %s", a.resumedFrom) end
    if a.status == "Failed" and type(a.error) == "table" then
      add("      error %s: %s", tostring(a.error.errorCode), tostring(a.error.message))
    end
    local output = a.status == "Succeeded" and compact(a.output, 400)
    if output then add("      output %s", output) end
  end
  stdout(table.concat(out, "\n"), "\n")
  return 0
end

function M.cancel(o, store, id)
  store:reap()
  local record, info = store:get_pipeline_run(id)
  if record.status == "Interrupted" then
    -- nobody executes it: the store alone makes it final; remote work it journaled is named
    local journal = store:journal(id)
    record.status, record.lastUpdated = "Cancelled", runs.iso8601()
    record.message = "Pipeline run cancelled (it was interrupted)"
    store:put_pipeline_run(record)
    store:flush()
    stdout("run ", id, " was interrupted; it is now recorded Cancelled\n")
    for k, v in pairs(journal) do
      stdout("  remote work it had started may still run: ", k, " ", json.encode(v), "\n")
    end
    return 0
  end
  if record.status ~= "InProgress" and record.status ~= "Canceling" then
    stdout("run ", id, " has ended (", record.status, "): nothing to cancel\n")
    return 0
  end
  store:request_cancel(id, o.reason or "cancelled by lufa runs cancel")
  stderr("lufa: asked ", require("lufa.runs.owner").describe(info.owner), " to cancel run ", id, "\n")
  local deadline = lufa.now() + (tonumber(o.wait) or 60)
  while lufa.now() < deadline do
    lufa.sleep(0.2)
    record = store:get_pipeline_run(id)
    if record.status ~= "InProgress" and record.status ~= "Canceling" then
      stdout("run ", id, ": ", record.status, "\n")
      return record.status == "Cancelled" and 0 or 1
    end
  end
  stdout("run ", id, " is still ", record.status, " after ", tostring(o.wait or 60), " s; its cancellation goes on\n")
  return 1
end

function M.prune(o, store)
  local age = o.older_than and M.duration(o.older_than)
  if not age then return nil, "prune needs --older-than AGE (e.g. 90d, 12h)" end
  local n = store:prune(runs.wall_time() - age)
  stdout(string.format("pruned %d run(s) that started more than %s ago from %s\n", n, o.older_than, store.path))
  return 0
end

function M.check(_, store)
  local result = store:check()
  stdout(store.path, ": ", result, "\n")
  return result == "ok" and 0 or 1
end

return M
