--- The run store in one SQLite file (WAL), shared safely by several lufa processes.
-- Writes join one transaction per turn of the event loop (`db:batch()`), committed before the loop next
-- waits: a state change is on disk before lufa sends the request that acts on it, at the cost of one commit
-- per turn rather than one per record. Records are stored as JSON beside the columns that lists filter on;
-- secrets reach the file only as their redaction marker.
-- @module lufa.runs.sqlite
local lufa = require "lufa"
local options = require "lufa.options"
local json = require "lufa.json"
local sqlite = require "lufa.sqlite"
local E = require "lufa.error"
local runs = require "lufa.runs"
local owner = require "lufa.runs.owner"
local schema = require "lufa.runs.schema"

local has_redact, redact = pcall(require, "lufa.redact")

local M = {}

local Store = {}
Store.__index = Store

--- How long an owner's claim on a run lasts without renewal, and how often it is renewed (seconds).
M.LEASE_SECONDS = 60
M.RENEW_SECONDS = 10
--- How often an owner looks for cancel requests made by other processes (seconds).
M.CANCEL_POLL_SECONDS = 1

local function store_error(code, fmt, ...)
  return E.new{kind = "runs", code = code, message = string.format(fmt, ...)}
end

-- JSON text safe to write: secrets as markers, and anything shaped like a credential scrubbed.
local function encode(v)
  local s = json.encode(v)
  if has_redact then s = redact.text(s) end
  return s
end

local function ms(t) return t and math.floor(t * 1000 + 0.5) or nil end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

--- Opens (and creates, with its folder, unless `opts.create == false`) the store at `path`.
-- @param opts `busy_timeout` (ms), `readonly`, `create`
-- @return store, or nil and a lufa.error (newer schema, not a database, cannot create)
function M.open(path, opts)
  opts = options.check(opts or {}, { "busy_timeout", "readonly", "create", "connect_timeout" }, "runs.open", 2)
  if not exists(path) then
    if opts.create == false or opts.readonly then
      return nil, store_error("no_store", "no run store at %s (no run has been recorded there yet)", path)
    end
    local dir = path:match("^(.*)/[^/]+$")
    if dir and dir ~= "" then
      local made, why = require("lufa.fs").mkdir(dir, tonumber("700", 8), true)
      if not made then
        return nil, store_error("cantopen", "cannot create the folder of the run store %s: %s", path, tostring(why))
      end
    end
  end
  local db, err = sqlite.open(path, {busy_timeout = opts.busy_timeout or 5000, readonly = opts.readonly})
  if not db then
    return nil, store_error(err and err.code or "cantopen", "cannot open the run store %s: %s", path,
      err and err.message or "unknown error")
  end
  local ok, problem = pcall(schema.migrate, db, path, opts.readonly)
  if not ok then
    db:close()
    if E.is(problem) then return nil, problem end
    return nil, store_error("schema", "cannot use the run store %s: %s", path, tostring(problem))
  end
  return setmetatable({db = db, path = path, durable = true, owned = {}, owned_count = 0}, Store)
end

--- Commits what this turn of the loop wrote, now.
function Store:flush()
  if self.db then self.db:flush() end
end

function Store:close()
  if self.db then self.db:close() end
  self.db = nil
end

-- Every write joins the turn's transaction.
function Store:write(sql, ...)
  self.db:batch()
  return self.db:run(sql, ...)
end

local function invoked_by(record)
  local ib = type(record.invokedBy) == "table" and record.invokedBy or {}
  return type(ib.invokedByType) == "string" and ib.invokedByType or nil,
    type(ib.name) == "string" and ib.name or nil
end

function Store:put_pipeline_run(record, meta)
  local t, trigger = invoked_by(record)
  local start = runs.parse_time(record.runStart)
  self:write([[INSERT INTO pipeline_runs (run_id, run_group_id, pipeline_name, status, start_ms, duration_ms,
      invoked_by_type, invoked_by_name, record, origin)
    VALUES (:id, :group, :pipeline, :status, :start, :duration, :type, :trigger, :record, :origin)
    ON CONFLICT (run_id) DO UPDATE SET run_group_id = excluded.run_group_id, status = excluded.status,
      start_ms = excluded.start_ms, duration_ms = excluded.duration_ms, record = excluded.record,
      origin = coalesce(excluded.origin, origin)]],
    {id = record.runId, group = record.runGroupId or record.runId, pipeline = record.pipelineName,
     status = record.status, start = ms(start),
     duration = math.type(record.durationInMs) == "integer" and record.durationInMs or nil,
     type = t, trigger = trigger, record = encode(record),
     origin = meta and meta.origin and encode(meta.origin) or nil})
end

local function decode(text)
  if text == nil then return nil end
  return json.decode(text)
end

local function info_of(row)
  return {origin = decode(row.origin), owner = decode(row.owner), cancel = row.cancel,
    lease_until = row.lease_until and row.lease_until / 1000 or nil}
end

function Store:get_pipeline_run(run_id)
  local row = self.db:first("SELECT * FROM pipeline_runs WHERE run_id = ?", run_id)
  if not row then return nil end
  return decode(row.record), info_of(row)
end

function Store:find_run(id)
  if type(id) ~= "string" or id == "" then return nil, "a run id is needed" end
  if self.db:first("SELECT 1 AS x FROM pipeline_runs WHERE run_id = ?", id) then return id end
  if id:find("[^%x%-]") then return nil, string.format("no run '%s' in the store %s", id, self.path) end
  local rows = self.db:query("SELECT run_id FROM pipeline_runs WHERE run_id >= ? AND run_id < ? LIMIT 2",
    id, id .. "\255")
  if #rows == 1 then return rows[1].run_id end
  if #rows > 1 then return nil, string.format("run id '%s' is ambiguous (several runs start with it)", id) end
  return nil, string.format("no run '%s' in the store %s", id, self.path)
end

-- Filter fields with a column of their own; others are matched on the decoded record.
local COLUMNS = {pipelineName = "pipeline_name", status = "status", runGroupId = "run_group_id",
  trigger = "invoked_by_name", invokedByType = "invoked_by_type"}

function Store:pipeline_runs(filter, opts)
  opts = opts or {}
  local where, params, rest = {}, {}, nil
  for k, v in pairs(filter or {}) do
    local col = COLUMNS[k]
    if col then
      where[#where + 1] = col .. " = ? COLLATE NOCASE"
      params[#params + 1] = v
    else
      rest = rest or {}
      rest[k] = v
    end
  end
  if opts.since then where[#where + 1] = "start_ms >= ?"; params[#params + 1] = ms(opts.since) end
  if opts.before then where[#where + 1] = "start_ms < ?"; params[#params + 1] = ms(opts.before) end
  local sql = "SELECT record FROM pipeline_runs" .. (#where > 0 and (" WHERE " .. table.concat(where, " AND ")) or "")
    .. (opts.newest_first and " ORDER BY start_ms DESC, seq DESC" or " ORDER BY start_ms, seq")
  if opts.limit and not rest then sql = sql .. " LIMIT " .. math.tointeger(opts.limit) end
  local out = {}
  for row in self.db:rows(sql, table.unpack(params)) do
    local r = decode(row.record)
    if runs.matches(r, rest) then
      out[#out + 1] = r
      if opts.limit and #out >= opts.limit then break end
    end
  end
  return out
end

--- One page of runs, newest first, by keyset (stays fast however many runs the store holds: each page is one
-- range scan of an index on start time). `filter` as for pipeline_runs (the indexed fields only: pipelineName,
-- status, trigger, invokedByType, runGroupId); opts `since`, `before` (epoch s), `limit` (default 50),
-- `cursor` (the second result of the previous page).
-- @return records, and the cursor of the next page (nil on the last page)
function Store:pipeline_runs_page(filter, opts)
  opts = opts or {}
  local where, params = {}, {}
  for k, v in pairs(filter or {}) do
    local col = COLUMNS[k]
    if not col then error(string.format("pipeline_runs_page cannot filter on '%s'", tostring(k)), 2) end
    where[#where + 1] = col .. " = ? COLLATE NOCASE"
    params[#params + 1] = v
  end
  if opts.since then where[#where + 1] = "start_ms >= ?"; params[#params + 1] = ms(opts.since) end
  if opts.before then where[#where + 1] = "start_ms < ?"; params[#params + 1] = ms(opts.before) end
  if opts.cursor then
    local start, seq = tostring(opts.cursor):match("^(%-?%d+)_(%d+)$")
    if not start then return nil, string.format("not a page cursor: '%s'", tostring(opts.cursor)) end
    where[#where + 1] = "(start_ms, seq) < (?, ?)"
    params[#params + 1] = math.tointeger(tonumber(start))
    params[#params + 1] = math.tointeger(tonumber(seq))
  end
  local limit = math.tointeger(opts.limit) or 50
  -- (start_ms, seq) is what the start index orders by (seq is the rowid every index ends with)
  local sql = "SELECT seq, start_ms, record FROM pipeline_runs" ..
    (#where > 0 and (" WHERE " .. table.concat(where, " AND ")) or "") ..
    " ORDER BY start_ms DESC, seq DESC LIMIT " .. (limit + 1)
  local out, last = {}, nil
  for row in self.db:rows(sql, table.unpack(params)) do
    if #out == limit then return out, string.format("%d_%d", last.start_ms or 0, last.seq) end
    out[#out + 1] = decode(row.record)
    last = row
  end
  return out, nil
end

function Store:put_activity_run(record)
  self:write([[INSERT INTO activity_runs (activity_run_id, pipeline_run_id, activity_name, status, record)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (activity_run_id) DO UPDATE SET status = excluded.status, record = excluded.record]],
    record.activityRunId, record.pipelineRunId, record.activityName, record.status, encode(record))
end

function Store:activity_runs(run_id, filter)
  local out = {}
  for row in self.db:rows("SELECT record FROM activity_runs WHERE pipeline_run_id = ? ORDER BY seq", run_id) do
    local r = decode(row.record)
    if runs.matches(r, filter) then out[#out + 1] = r end
  end
  return out
end

function Store:journal_put(run_id, key, value)
  if value == nil then
    self:write("DELETE FROM journal WHERE run_id = ? AND key = ?", run_id, key)
  else
    self:write([[INSERT INTO journal (run_id, key, value, updated_ms) VALUES (?, ?, ?, ?)
      ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms]],
      run_id, key, encode(value), ms(runs.wall_time()))
  end
end

function Store:journal_get(run_id, key)
  local row = self.db:first("SELECT value FROM journal WHERE run_id = ? AND key = ?", run_id, key)
  return row and decode(row.value)
end

function Store:journal(run_id)
  local out = {}
  for row in self.db:rows("SELECT key, value FROM journal WHERE run_id = ?", run_id) do
    out[row.key] = decode(row.value)
  end
  return out
end

-- ---------------------------------------------------------------- ownership, leases, cancel requests

-- One task per store renews the leases of the runs this process executes and delivers cancel requests
-- that other processes wrote; it ends when the process owns no run any more.
local function heartbeat(self)
  local since_renew = 0
  while self.owned_count > 0 and self.db do
    lufa.sleep(M.CANCEL_POLL_SECONDS)
    if self.owned_count == 0 or not self.db then break end
    since_renew = since_renew + M.CANCEL_POLL_SECONDS
    if since_renew >= M.RENEW_SECONDS then
      since_renew = 0
      local until_ms = ms(runs.wall_time() + M.LEASE_SECONDS)
      for id in pairs(self.owned) do
        self:write("UPDATE pipeline_runs SET lease_until = ? WHERE run_id = ?", until_ms, id)
      end
    end
    for id, on_cancel in pairs(self.owned) do
      local row = self.db:first("SELECT cancel FROM pipeline_runs WHERE run_id = ?", id)
      if row and row.cancel and on_cancel ~= true then
        self.owned[id] = true  -- delivered once
        local ok, err = pcall(on_cancel, row.cancel)
        if not ok then io.stderr:write("lufa: cancelling run ", id, " failed: ", tostring(err), "\n") end
      end
    end
  end
  self.heartbeat_task = nil
end

--- This process executes `run_id`: records the owner and a lease; `on_cancel(reason)` is called when
-- another process asks (through `request_cancel`) for the run to be cancelled.
function Store:own(run_id, on_cancel)
  self:write("UPDATE pipeline_runs SET owner = ?, lease_until = ? WHERE run_id = ?", encode(owner.self()),
    ms(runs.wall_time() + M.LEASE_SECONDS), run_id)
  if self.owned[run_id] == nil then self.owned_count = self.owned_count + 1 end
  self.owned[run_id] = on_cancel or function() end
  if not self.heartbeat_task then self.heartbeat_task = lufa.spawn(heartbeat, self) end
end

--- The run has ended here: its lease is released.
function Store:disown(run_id)
  if self.owned[run_id] == nil then return end
  self.owned[run_id] = nil
  self.owned_count = self.owned_count - 1
  self:write("UPDATE pipeline_runs SET lease_until = NULL WHERE run_id = ?", run_id)
  if self.owned_count == 0 and self.heartbeat_task then
    self.heartbeat_task:cancel("no run left")
    self.heartbeat_task = nil
  end
end

function Store:request_cancel(run_id, reason)
  local n = self:write("UPDATE pipeline_runs SET cancel = ? WHERE run_id = ?", reason or "cancelled", run_id)
  self:flush()
  return n > 0
end

function Store:cancel_request(run_id)
  local row = self.db:first("SELECT cancel FROM pipeline_runs WHERE run_id = ?", run_id)
  return row and row.cancel
end

--- Whether a run that the store shows as executing has an owner still alive.
function Store:owner_alive(info)
  local alive = owner.alive(info.owner)
  if alive == "unknown" then return info.lease_until ~= nil and info.lease_until > runs.wall_time() end
  return alive == "yes"
end

--- Marks Interrupted the runs left InProgress (or Canceling) by a process that died; returns their records.
function Store:reap()
  local found = {}
  for row in self.db:rows("SELECT * FROM pipeline_runs WHERE status COLLATE NOCASE IN ('InProgress', 'Canceling')") do
    local info = info_of(row)
    if not owner.is_self(info.owner) and not self:owner_alive(info) then found[#found + 1] = row end
  end
  local out = {}
  if #found == 0 then return out end
  self.db:transaction(function()
    for _, row in ipairs(found) do
      local r = decode(row.record)
      r.status = "Interrupted"
      r.message = string.format("the lufa process executing this run (%s) stopped before the run ended; " ..
        "'lufa resume %s' continues it", owner.describe(decode(row.owner)), r.runId)
      r.lastUpdated = runs.iso8601()
      -- a run stopped while it was being cancelled is cancelled when it resumes
      self.db:run([[UPDATE pipeline_runs SET status = 'Interrupted', record = ?, lease_until = NULL,
        cancel = CASE WHEN status = 'Canceling' THEN coalesce(cancel, 'cancelled') ELSE cancel END
        WHERE run_id = ?]], encode(r), r.runId)
      for _, arow in ipairs(self.db:query(
          "SELECT record FROM activity_runs WHERE pipeline_run_id = ? AND status = 'InProgress'", r.runId)) do
        local a = decode(arow.record)
        a.status = "Interrupted"
        self.db:run("UPDATE activity_runs SET status = 'Interrupted', record = ? WHERE activity_run_id = ?",
          encode(a), a.activityRunId)
      end
      out[#out + 1] = r
    end
  end)
  return out
end

--- Deletes the runs (with their activity runs and journals) that started before `before` (epoch s) and
-- have ended. @return the number of pipeline runs deleted
function Store:prune(before)
  local n = self.db:transaction(function()
    -- a trigger's latest fire time stays: it is where its schedule resumes
    self.db:run([[DELETE FROM trigger_runs WHERE scheduled_ms < ? AND status NOT IN ('InProgress', 'Queued', 'Waiting')
      AND scheduled_ms < (SELECT max(t.scheduled_ms) FROM trigger_runs t
        WHERE t.scope = trigger_runs.scope AND t.trigger_name = trigger_runs.trigger_name)]], ms(before))
    return (self.db:run([[DELETE FROM pipeline_runs WHERE start_ms < ?
      AND status NOT IN ('InProgress', 'Canceling', 'Queued')]], ms(before)))
  end)
  return n
end

--- `PRAGMA integrity_check`: "ok", or what SQLite found.
function Store:check()
  return self.db:integrity_check()
end

-- ---------------------------------------------------------------- the scheduler's records

--- Claims the fire time `scheduled` (epoch s) of a trigger: true when this call recorded it, false when it
-- was already recorded (by this or another process), so each fire time is acted on once.
function Store:claim_fire(scope, name, scheduled, record)
  self.db:batch()
  local n = self.db:run([[INSERT INTO trigger_runs (scope, trigger_name, scheduled_ms, trigger_run_id, trigger_type,
      status, record, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING]], scope, name, ms(scheduled),
    record.triggerRunId, record.triggerType, record.status, encode(record), ms(runs.wall_time()))
  return n > 0
end

--- Updates a claimed fire time's record (its status, the runs it started, the decision).
function Store:put_trigger_run(scope, record)
  self:write("UPDATE trigger_runs SET status = ?, record = ?, updated_ms = ? WHERE trigger_run_id = ?",
    record.status, encode(record), ms(runs.wall_time()), record.triggerRunId)
end

--- A trigger's runs, oldest first: opts `status` (one, or a list), `since` (scheduled, epoch s), `limit`,
-- `newest_first`.
function Store:trigger_runs(scope, name, opts)
  opts = opts or {}
  local where, params = {"scope = ?", "trigger_name = ?"}, {scope, name}
  if opts.status then
    local list = type(opts.status) == "table" and opts.status or {opts.status}
    local marks = {}
    for i, st in ipairs(list) do marks[i] = "?"; params[#params + 1] = st end
    where[#where + 1] = "status IN (" .. table.concat(marks, ", ") .. ")"
  end
  if opts.since then where[#where + 1] = "scheduled_ms >= ?"; params[#params + 1] = ms(opts.since) end
  local sql = "SELECT record FROM trigger_runs WHERE " .. table.concat(where, " AND ") ..
    (opts.newest_first and " ORDER BY scheduled_ms DESC" or " ORDER BY scheduled_ms") ..
    (opts.limit and (" LIMIT " .. math.tointeger(opts.limit)) or "")
  local out = {}
  for row in self.db:rows(sql, table.unpack(params)) do out[#out + 1] = decode(row.record) end
  return out
end

--- The latest recorded fire time of a trigger (epoch s), or nil.
function Store:last_fire(scope, name)
  local row = self.db:first("SELECT max(scheduled_ms) AS m FROM trigger_runs WHERE scope = ? AND trigger_name = ?",
    scope, name)
  return row and row.m and row.m / 1000 or nil
end

--- A trigger's state kept by lufa: `{runtime_state =, checked =}` (either may be nil).
function Store:trigger_state(scope, name)
  local row = self.db:first("SELECT runtime_state, checked_ms FROM trigger_states WHERE scope = ? AND trigger_name = ?",
    scope, name)
  return {runtime_state = row and row.runtime_state, checked = row and row.checked_ms and row.checked_ms / 1000}
end

--- The runtime states set by `lufa trigger start|stop` in a scope: lower-case trigger name → state.
function Store:runtime_states(scope)
  local out = {}
  for row in self.db:rows("SELECT trigger_name, runtime_state FROM trigger_states WHERE scope = ? AND " ..
      "runtime_state IS NOT NULL", scope) do
    out[row.trigger_name:lower()] = row.runtime_state
  end
  return out
end

--- Sets `runtime_state` and/or `checked` (epoch s) of a trigger.
function Store:set_trigger_state(scope, name, fields)
  self:write([[INSERT INTO trigger_states (scope, trigger_name, runtime_state, checked_ms) VALUES (?, ?, ?, ?)
    ON CONFLICT (scope, trigger_name) DO UPDATE SET
      runtime_state = coalesce(excluded.runtime_state, runtime_state),
      checked_ms = coalesce(excluded.checked_ms, checked_ms)]], scope, name, fields.runtime_state, ms(fields.checked))
end

--- The scopes (factory folders, schedule files) that know a trigger of this name.
function Store:trigger_scopes(name)
  local out = {}
  for row in self.db:rows([[SELECT DISTINCT scope FROM trigger_states WHERE trigger_name = ?
      UNION SELECT DISTINCT scope FROM trigger_runs WHERE trigger_name = ?]], name, name) do
    out[#out + 1] = row.scope
  end
  return out
end

--- Every trigger the store knows (from start/stop or a recorded fire time): `{scope =, name =,
-- runtime_state =, checked =, last_fire =}` (times in epoch s), ordered by scope and name.
function Store:triggers()
  local out = {}
  for row in self.db:rows([[SELECT k.scope, k.trigger_name, s.runtime_state, s.checked_ms,
        (SELECT max(scheduled_ms) FROM trigger_runs r WHERE r.scope = k.scope AND r.trigger_name = k.trigger_name) AS last_ms
      FROM (SELECT scope, trigger_name FROM trigger_states UNION SELECT scope, trigger_name FROM trigger_runs) k
      LEFT JOIN trigger_states s ON s.scope = k.scope AND s.trigger_name = k.trigger_name
      ORDER BY k.scope, k.trigger_name]]) do
    out[#out + 1] = {scope = row.scope, name = row.trigger_name, runtime_state = row.runtime_state,
      checked = row.checked_ms and row.checked_ms / 1000, last_fire = row.last_ms and row.last_ms / 1000}
  end
  return out
end

--- The blobs a BlobEventsTrigger has seen: name → etag.
function Store:blobs_seen(scope, name)
  local out = {}
  for row in self.db:rows("SELECT blob, etag FROM blobs_seen WHERE scope = ? AND trigger_name = ?", scope, name) do
    out[row.blob] = row.etag or ""
  end
  return out
end

function Store:see_blob(scope, name, blob, etag)
  self:write([[INSERT INTO blobs_seen (scope, trigger_name, blob, etag) VALUES (?, ?, ?, ?)
    ON CONFLICT (scope, trigger_name, blob) DO UPDATE SET etag = excluded.etag]], scope, name, blob, etag)
end

M.Store = Store
return M
