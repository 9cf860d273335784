--- Run records: pipeline runs and activity runs in ADF's monitoring shape, kept in a store.
--
-- A store has this interface (the memory store below, `lufa.runs.sqlite` and `lufa.runs.postgres`
-- implement it):
--   store:put_pipeline_run(record [, meta])   save a pipeline run record at a state change; `meta` (first
--                                             write) carries `origin` (how to load the run again)
--   store:get_pipeline_run(run_id)            → record, info (`origin`, `owner`, `cancel`), or nil
--   store:find_run(id_or_prefix)              → run id, or nil and a message (unknown, ambiguous)
--   store:pipeline_runs([filter] [, opts])    → records; filter: exact fields (strings ignore case);
--                                             opts: `since`, `before` (epoch s), `limit`, `newest_first`
--   store:pipeline_runs_page([filter] [, opts]) → one page newest first and the next page's cursor;
--                                             opts: `since`, `before`, `limit`, `cursor`
--   store:put_activity_run(record)            save an activity run record
--   store:activity_runs(run_id [, filter])    → the run's activity records, in creation order
--   store:journal_put(run_id, key, value)     remote work to reconnect to after a crash (nil deletes)
--   store:journal_get(run_id, key), store:journal(run_id) → value / key → value
--   store:own(run_id), store:disown(run_id)   this process executes the run (lease kept alive)
--   store:request_cancel(run_id, reason)      ask the owner to cancel; store:cancel_request(run_id) → reason
--   store:reap()                              runs whose owner died → marked Interrupted; returns them
--   store:prune(before), store:check(), store:flush() (commit now), store:close()
-- and, for the scheduler: claim_fire, put_trigger_run, trigger_runs, last_fire, trigger_state,
-- set_trigger_state, runtime_states, trigger_scopes, triggers, blobs_seen, see_blob (lufa.runs.sqlite documents
-- each); `pipeline_runs_page` for paging (lufa serve).
-- A store shared by several hosts (`store.shared`, lufa.runs.postgres) has besides: claim_resume(run_id)
-- and take_over_fire(scope, record), which give what a dead host left to exactly one other host.
-- `put_*` is called at every state change with the full record, before lufa acts on the change.
-- @module lufa.runs
local lufa = require "lufa"
local options = require "lufa.options"

local M = {}

local Memory = {}
Memory.__index = Memory

--- A new in-memory store: nothing outlives the process.
function M.memory()
  return setmetatable({pipeline = {}, info = {}, pipeline_order = {}, activity = {}, activity_order = {},
    journals = {}, path = ":memory:", durable = false}, Memory)
end

function Memory:put_pipeline_run(record, meta)
  local id = record.runId
  if not self.pipeline[id] then
    self.pipeline_order[#self.pipeline_order + 1] = id
    self.info[id] = {}
  end
  self.pipeline[id] = record
  if meta and meta.origin then self.info[id].origin = meta.origin end
end

function Memory:get_pipeline_run(run_id)
  local r = self.pipeline[run_id]
  if r then return r, self.info[run_id] end
end

function Memory:find_run(id)
  if self.pipeline[id] then return id end
  local found
  for _, rid in ipairs(self.pipeline_order) do
    if rid:sub(1, #id) == id then
      if found then return nil, string.format("run id '%s' is ambiguous (several runs start with it)", id) end
      found = rid
    end
  end
  if found then return found end
  return nil, string.format("no run '%s' in the store", id)
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
M.matches = matches

function Memory:pipeline_runs(filter, opts)
  opts = opts or {}
  local out = {}
  local first, last, step = 1, #self.pipeline_order, 1
  if opts.newest_first then first, last, step = last, first, -1 end
  for i = first, last, step do
    local r = self.pipeline[self.pipeline_order[i]]
    local t = M.parse_time(r.runStart)
    if matches(r, filter) and (not opts.since or (t and t >= opts.since))
        and (not opts.before or (t and t < opts.before)) then
      out[#out + 1] = r
      if opts.limit and #out >= opts.limit then break end
    end
  end
  return out
end

function Memory:pipeline_runs_page(filter, opts)
  opts = opts or {}
  local limit = opts.limit or 50
  local from = #self.pipeline_order
  if opts.cursor then
    from = math.tointeger(tonumber(opts.cursor))
    if not from then return nil, string.format("not a page cursor: '%s'", tostring(opts.cursor)) end
  end
  local out = {}
  for i = from, 1, -1 do
    local r = self.pipeline[self.pipeline_order[i]]
    local t = M.parse_time(r.runStart)
    if matches(r, filter) and (not opts.since or (t and t >= opts.since))
        and (not opts.before or (t and t < opts.before)) then
      if #out == limit then return out, tostring(i) end
      out[#out + 1] = r
    end
  end
  return out, nil
end

function Memory:put_activity_run(record)
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

function Memory:activity_runs(pipeline_run_id, filter)
  local out = {}
  for _, id in ipairs(self.activity_order[pipeline_run_id] or {}) do
    local r = self.activity[id]
    if matches(r, filter) then out[#out + 1] = r end
  end
  return out
end

function Memory:journal_put(run_id, key, value)
  local j = self.journals[run_id] or {}
  self.journals[run_id] = j
  j[key] = value
end

function Memory:journal_get(run_id, key)
  local j = self.journals[run_id]
  return j and j[key]
end

function Memory:journal(run_id)
  local out = {}
  for k, v in pairs(self.journals[run_id] or {}) do out[k] = v end
  return out
end

-- One process owns every run of a memory store; cancelling goes through the run handle.
function Memory:own() end
function Memory:disown() end
function Memory:request_cancel(run_id, reason)
  local info = self.info[run_id]
  if info then info.cancel = reason or "cancelled" end
  return info ~= nil
end
function Memory:cancel_request(run_id)
  local info = self.info[run_id]
  return info and info.cancel
end
function Memory:reap() return {} end
function Memory:prune(before)
  local keep, n = {}, 0
  for _, id in ipairs(self.pipeline_order) do
    local r = self.pipeline[id]
    local t = M.parse_time(r.runStart)
    if t and t < before and r.status ~= "InProgress" and r.status ~= "Canceling" then
      self.pipeline[id], self.info[id], self.journals[id] = nil, nil, nil
      for _, aid in ipairs(self.activity_order[id] or {}) do self.activity[aid] = nil end
      self.activity_order[id] = nil
      n = n + 1
    else
      keep[#keep + 1] = id
    end
  end
  self.pipeline_order = keep
  return n
end
-- The scheduler's records (see lufa.runs.sqlite for their meaning).
local function key(scope, name) return scope .. "\0" .. name:lower() end

function Memory:claim_fire(scope, name, scheduled, record)
  self.fires = self.fires or {}
  local k = key(scope, name)
  local list = self.fires[k] or {}
  self.fires[k] = list
  for _, f in ipairs(list) do if f.scheduled == scheduled then return false end end
  list[#list + 1] = {scheduled = scheduled, record = record}
  table.sort(list, function(a, b) return a.scheduled < b.scheduled end)
  return true
end

function Memory:put_trigger_run(_, record)
  for _, list in pairs(self.fires or {}) do
    for _, f in ipairs(list) do
      if f.record.triggerRunId == record.triggerRunId then f.record = record end
    end
  end
end

function Memory:trigger_runs(scope, name, opts)
  opts = opts or {}
  local wanted
  if opts.status then
    wanted = {}
    for _, st in ipairs(type(opts.status) == "table" and opts.status or {opts.status}) do wanted[st] = true end
  end
  local list = (self.fires or {})[key(scope, name)] or {}
  local out = {}
  local first, last, step = 1, #list, 1
  if opts.newest_first then first, last, step = last, first, -1 end
  for i = first, last, step do
    local f = list[i]
    if (not wanted or wanted[f.record.status]) and (not opts.since or f.scheduled >= opts.since) then
      out[#out + 1] = f.record
      if opts.limit and #out >= opts.limit then break end
    end
  end
  return out
end

function Memory:last_fire(scope, name)
  local list = (self.fires or {})[key(scope, name)]
  return list and list[#list] and list[#list].scheduled
end

function Memory:trigger_state(scope, name)
  local st = (self.trigger_states or {})[key(scope, name)] or {}
  return {runtime_state = st.runtime_state, checked = st.checked}
end

function Memory:runtime_states(scope)
  local out = {}
  for k, st in pairs(self.trigger_states or {}) do
    local s, n = k:match("^(.*)%z(.*)$")
    if s == scope and st.runtime_state then out[n] = st.runtime_state end
  end
  return out
end

function Memory:set_trigger_state(scope, name, fields)
  self.trigger_states = self.trigger_states or {}
  local st = self.trigger_states[key(scope, name)] or {}
  self.trigger_states[key(scope, name)] = st
  if fields.runtime_state then st.runtime_state = fields.runtime_state end
  if fields.checked then st.checked = fields.checked end
end

function Memory:trigger_scopes(name)
  local out, seen = {}, {}
  for _, t in ipairs{self.trigger_states or {}, self.fires or {}} do
    for k in pairs(t) do
      local scope, n = k:match("^(.*)%z(.*)$")
      if n == name:lower() and not seen[scope] then seen[scope] = true; out[#out + 1] = scope end
    end
  end
  return out
end

function Memory:triggers()
  local out, seen = {}, {}
  for _, t in ipairs{self.trigger_states or {}, self.fires or {}} do
    for k in pairs(t) do
      if not seen[k] then
        seen[k] = true
        local scope, name = k:match("^(.*)%z(.*)$")
        local st = self:trigger_state(scope, name)
        out[#out + 1] = {scope = scope, name = name, runtime_state = st.runtime_state, checked = st.checked,
          last_fire = self:last_fire(scope, name)}
      end
    end
  end
  table.sort(out, function(a, b) return a.scope .. "\0" .. a.name < b.scope .. "\0" .. b.name end)
  return out
end

function Memory:blobs_seen(scope, name)
  local out = {}
  for k, v in pairs(((self.blobs or {})[key(scope, name)]) or {}) do out[k] = v end
  return out
end

function Memory:see_blob(scope, name, blob, etag)
  self.blobs = self.blobs or {}
  local t = self.blobs[key(scope, name)] or {}
  self.blobs[key(scope, name)] = t
  t[blob] = etag or ""
end

function Memory:check() return "ok" end
function Memory:flush() end
function Memory:close() end

-- Wall-clock time from the loop's monotonic clock, anchored once (so durations never jump with the clock).
local wall_anchor = lufa.time()
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

-- Days from 1970-01-01 to a civil date (proleptic Gregorian), without the C library's local time.
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end
M.days_from_civil = days_from_civil

--- Epoch seconds (float) of an ISO 8601 UTC time as `iso8601` writes it (`Z` or an offset), or nil.
function M.parse_time(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, frac, zone = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
  if not y then
    y, mo, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    if not y then return nil end
    h, mi, sec, frac, zone = 0, 0, 0, "", "Z"
  end
  local t = days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400 + tonumber(h) * 3600 +
    tonumber(mi) * 60 + tonumber(sec)
  if frac ~= "" and frac ~= "." then t = t + tonumber("0" .. frac) end
  if zone ~= "" and zone ~= "Z" then
    local sign, zh, zm = zone:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    local off = tonumber(zh) * 3600 + tonumber(zm) * 60
    t = sign == "+" and t - off or t + off
  end
  return t
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

--- Where the run store lives when nothing says otherwise: `LUFA_STORE`, else
-- `$XDG_STATE_HOME/lufa/runs.db`, else `~/.local/state/lufa/runs.db`.
function M.default_path()
  local env = os.getenv("LUFA_STORE")
  if env and env ~= "" then return env end
  local state = os.getenv("XDG_STATE_HOME")
  if not state or state == "" then
    local home = os.getenv("HOME")
    if not home or home == "" then return nil, "neither LUFA_STORE, XDG_STATE_HOME nor HOME is set" end
    state = home .. "/.local/state"
  end
  return state .. "/lufa/runs.db"
end

--- Opens a store: `":memory:"` for a memory store, `postgresql://…` (or `postgres://…`) for a database
-- shared by a fleet of hosts (lufa.runs.postgres), otherwise a SQLite file (made with its folder).
-- @param path the file or URL (default `default_path()`)
-- @param opts passed to `lufa.runs.sqlite.open` (`busy_timeout`, `readonly`) or `lufa.runs.postgres.open`
-- @return store, or nil and a lufa.error
function M.open(path, opts)
  if opts ~= nil then
    options.check(opts, { "busy_timeout", "readonly", "create", "connect_timeout" }, "runs.open", 2)
  end
  if path == nil then
    local why
    path, why = M.default_path()
    if not path then return nil, require("lufa.error").new{kind = "runs", code = "no_store", message =
      "cannot place the run store: " .. why .. "; give one with --store PATH or LUFA_STORE"} end
  end
  if path == ":memory:" then return M.memory() end
  if path:match("^postgres://") or path:match("^postgresql://") then
    return require("lufa.runs.postgres").open(path, opts)
  end
  return require("lufa.runs.sqlite").open(path, opts)
end

local default_store
--- The process-wide default store (a memory store made on first use).
function M.default()
  default_store = default_store or M.memory()
  return default_store
end

return M
