--- The run store in a PostgreSQL database, shared by a fleet of lufa hosts (`--store postgresql://...`).
-- The same interface as lufa.runs.sqlite, with what several hosts need on top:
-- - every write commits at once (there is no turn-long batch to lose when a host dies);
-- - a fire time is claimed by one INSERT on its unique key, so of N schedulers exactly one acts on it;
-- - runs and claimed fire times carry an owner (host id, pid) and a lease that the owner renews; leases are
--   counted on the database server's clock, so hosts whose clocks differ still agree on who is dead;
-- - what a dead host left is taken over with `SELECT ... FOR UPDATE SKIP LOCKED`: by one host only
--   (`reap`, `claim_resume`, `take_over_fire`).
-- Records are JSON beside the columns that lists filter on; secrets reach the database only as their
-- redaction marker, and the password only libpq.
-- @module lufa.runs.postgres
local lufa = require "lufa"
local options = require "lufa.options"
local json = require "lufa.json"
local postgres = require "lufa.postgres"
local E = require "lufa.error"
local runs = require "lufa.runs"
local owner = require "lufa.runs.owner"
local schema = require "lufa.runs.postgres_schema"

local has_redact, redact = pcall(require, "lufa.redact")

local M = {}

local Store = {}
Store.__index = Store

local function env_seconds(name, default)
  local v = tonumber(os.getenv(name) or "")
  return v and v > 0 and v or default
end

--- How long an owner's claim lasts without renewal (`LUFA_LEASE_SECONDS`, default 60), how often it is
-- renewed (a sixth of that), how often cancel requests are looked for (seconds).
M.LEASE_SECONDS = env_seconds("LUFA_LEASE_SECONDS", 60)
M.RENEW_SECONDS = M.LEASE_SECONDS / 6
M.CANCEL_POLL_SECONDS = math.min(1, M.RENEW_SECONDS)
--- Seconds a statement may take before the server stops it, and a connection attempt may take.
M.STATEMENT_TIMEOUT = 30
M.CONNECT_TIMEOUT = 10

-- The server's clock in epoch milliseconds: the one clock every host of the fleet reads.
local NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint"
local LIVE = {InProgress = true, Canceling = true}

local function store_error(code, fmt, ...)
  return E.new{kind = "runs", code = code, message = string.format(fmt, ...)}
end

local function encode(v)
  local s = json.encode(v)
  if has_redact then s = redact.text(s) end
  return s
end

local function decode(text)
  if text == nil then return nil end
  return json.decode(text)
end

local function ms(t) return t and math.floor(t * 1000 + 0.5) or nil end
local function lease_ms() return math.floor(M.LEASE_SECONDS * 1000 + 0.5) end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- Whether `s` names a PostgreSQL store (`postgresql://` or `postgres://`).
function M.is_url(s)
  return type(s) == "string" and (s:match("^postgresql://") or s:match("^postgres://")) ~= nil
end

--- Splits a connection URL into libpq options and a name to show (the URL without its password).
-- `postgresql://[user[:password]@][host][:port][/dbname][?keyword=value&...]`; the password becomes a
-- lufa.secret. @return options, shown name; or nil and a message
function M.parse_url(url)
  local rest = url:match("^postgresql://(.*)$") or url:match("^postgres://(.*)$")
  if not rest then return nil, "a PostgreSQL store is given as postgresql://user@host:port/database" end
  local query
  rest, query = rest:match("^([^?]*)%??(.*)$")
  local auth, hostpart = rest:match("^(.*)@([^@]*)$")
  if not auth then hostpart = rest end
  local opts = {}
  if auth and auth ~= "" then
    local user, password = auth:match("^([^:]*):(.*)$")
    opts.user = unescape(user or auth)
    if password then opts.password = require("lufa.secret")(unescape(password)) end
  end
  local hostport, db = hostpart:match("^([^/]*)/?(.*)$")
  local host, port = hostport:match("^%[(.-)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
  if not host then return nil, string.format("cannot read the host and port of the store URL '%s'", url) end
  if host ~= "" then opts.host = unescape(host) end
  if port ~= "" then opts.port = port end
  if db ~= "" then opts.dbname = unescape(db) end
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]+)=(.*)$")
    if not k then return nil, string.format("the store URL's parameter '%s' is not keyword=value", pair) end
    k = unescape(k)
    if k == "password" then opts.password = require("lufa.secret")(unescape(v)) else opts[k] = unescape(v) end
  end
  local shown = string.format("postgresql://%s%s%s%s", opts.user and (opts.user .. "@") or "",
    host:find(":") and ("[" .. host .. "]") or host, port ~= "" and (":" .. port) or "", db ~= "" and ("/" .. db) or "")
  return opts, shown
end

--- Opens (and creates or migrates the tables of) the store the URL names.
-- @param opts `readonly` (no migration), `connect_timeout` (s)
-- @return store, or nil and a lufa.error (cannot connect, newer schema)
function M.open(url, opts)
  opts = options.check(opts or {}, { "busy_timeout", "readonly", "create", "connect_timeout" }, "runs.open", 2)
  local params, shown = M.parse_url(url)
  if not params then return nil, store_error("bad_url", "%s", shown) end
  params.connect_timeout = params.connect_timeout or tostring(opts.connect_timeout or M.CONNECT_TIMEOUT)
  params.application_name = params.application_name or "lufa"
  -- every statement is bounded: a stalled server cannot hold the event loop for longer than this
  params.options = (params.options and (params.options .. " ") or "") ..
    string.format("-c statement_timeout=%d", M.STATEMENT_TIMEOUT * 1000)
  local conn, err = postgres.connect(params)
  if not conn then
    return nil, store_error("cantopen", "cannot open the run store %s: %s", shown, err and err.message or "unknown error")
  end
  local ok, problem = pcall(function()
    if opts.readonly then
      local row = conn:first("SELECT to_regclass('lufa_schema') IS NOT NULL AS present")
      if not row.present then error(store_error("no_store", "no run store at %s (no run has been recorded there yet)", shown), 0) end
    else
      schema.migrate(conn, shown)
    end
  end)
  if not ok then
    conn:close()
    if E.is(problem) and problem.kind == "runs" then return nil, problem end
    return nil, store_error("schema", "cannot use the run store %s: %s", shown,
      type(problem) == "table" and tostring(problem.message) or tostring(problem))
  end
  return setmetatable({conn = conn, path = shown, durable = true, shared = true, owned = {}, owned_count = 0,
    claimed = {}, lease_seconds = M.LEASE_SECONDS}, Store)
end

--- Writes commit as they are made: nothing to do.
function Store:flush() end

function Store:close()
  if self.conn then self.conn:close() end
  self.conn = nil
end

function Store:query(sql, ...) return self.conn:query(sql, ...) end
function Store:first(sql, ...) return self.conn:first(sql, ...) end

local function invoked_by(record)
  local ib = type(record.invokedBy) == "table" and record.invokedBy or {}
  return type(ib.invokedByType) == "string" and ib.invokedByType or nil,
    type(ib.name) == "string" and ib.name or nil
end

-- A run recorded as executing is owned from its first write: a host that looks between that write and
-- `own` must not take it for an orphan.
function Store:put_pipeline_run(record, meta)
  local t, trigger = invoked_by(record)
  local me = LIVE[record.status] and owner.self() or nil
  self:query([[INSERT INTO pipeline_runs (run_id, run_group_id, pipeline_name, status, start_ms, duration_ms,
      invoked_by_type, invoked_by_name, record, origin, owner, owner_host, lease_until)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, CASE WHEN $11::text IS NULL THEN NULL ELSE ]] ..
      NOW_MS .. [[ + $13 END)
    ON CONFLICT (run_id) DO UPDATE SET run_group_id = excluded.run_group_id, status = excluded.status,
      start_ms = excluded.start_ms, duration_ms = excluded.duration_ms, record = excluded.record,
      origin = coalesce(excluded.origin, pipeline_runs.origin)]],
    record.runId, record.runGroupId or record.runId, record.pipelineName, record.status,
    ms(runs.parse_time(record.runStart)),
    math.type(record.durationInMs) == "integer" and record.durationInMs or nil,
    t, trigger, encode(record), meta and meta.origin and encode(meta.origin) or nil,
    me and encode(me) or nil, me and me.host or nil, lease_ms())
end

local function info_of(row)
  return {origin = decode(row.origin), owner = decode(row.owner), cancel = row.cancel, host = row.owner_host,
    lease_until = row.lease_until and row.lease_until / 1000 or nil}
end

function Store:get_pipeline_run(run_id)
  local row = self:first("SELECT * FROM pipeline_runs WHERE run_id = $1", run_id)
  if not row then return nil end
  return decode(row.record), info_of(row)
end

function Store:find_run(id)
  if type(id) ~= "string" or id == "" then return nil, "a run id is needed" end
  if self:first("SELECT 1 AS x FROM pipeline_runs WHERE run_id = $1", id) then return id end
  if id:find("[^%x%-]") then return nil, string.format("no run '%s' in the store %s", id, self.path) end
  local rows = self:query("SELECT run_id FROM pipeline_runs WHERE run_id LIKE $1 LIMIT 2", id .. "%")
  if #rows == 1 then return rows[1].run_id end
  if #rows > 1 then return nil, string.format("run id '%s' is ambiguous (several runs start with it)", id) end
  return nil, string.format("no run '%s' in the store %s", id, self.path)
end

local COLUMNS = {pipelineName = "pipeline_name", status = "status", runGroupId = "run_group_id",
  trigger = "invoked_by_name", invokedByType = "invoked_by_type"}

-- SQL with numbered parameters: `p(value)` appends a value and returns its placeholder.
local function params()
  local list = {}
  return list, function(v)
    list[#list + 1] = v
    return "$" .. #list
  end
end

--- Records as lufa.runs.sqlite gives them, each with `host`: the host that executed (or executes) it.
function Store:pipeline_runs(filter, opts)
  opts = opts or {}
  local where, rest = {}, nil
  local list, p = params()
  for k, v in pairs(filter or {}) do
    local col = COLUMNS[k]
    if col then
      where[#where + 1] = string.format("lower(%s) = lower(%s)", col, p(v))
    else
      rest = rest or {}
      rest[k] = v
    end
  end
  if opts.since then where[#where + 1] = "start_ms >= " .. p(ms(opts.since)) end
  if opts.before then where[#where + 1] = "start_ms < " .. p(ms(opts.before)) end
  local sql = "SELECT record, owner_host FROM pipeline_runs" ..
    (#where > 0 and (" WHERE " .. table.concat(where, " AND ")) or "") ..
    (opts.newest_first and " ORDER BY start_ms DESC NULLS LAST, seq DESC" or " ORDER BY start_ms NULLS FIRST, seq")
  if opts.limit and not rest then sql = sql .. " LIMIT " .. p(math.tointeger(opts.limit)) end
  local out = {}
  for _, row in ipairs(self:query(sql, table.unpack(list, 1, #list))) do
    local r = decode(row.record)
    if runs.matches(r, rest) then
      r.host = row.owner_host
      out[#out + 1] = r
      if opts.limit and #out >= opts.limit then break end
    end
  end
  return out
end

--- One page of runs, newest first, by keyset (one index range scan however deep): the runs and the next
-- page's cursor (nil on the last page). As lufa.runs.sqlite's.
function Store:pipeline_runs_page(filter, opts)
  opts = opts or {}
  local where = {}
  local list, p = params()
  for k, v in pairs(filter or {}) do
    local col = COLUMNS[k]
    if not col then error(string.format("pipeline_runs_page cannot filter on '%s'", tostring(k)), 2) end
    where[#where + 1] = string.format("lower(%s) = lower(%s)", col, p(v))
  end
  where[#where + 1] = "start_ms IS NOT NULL"
  if opts.since then where[#where + 1] = "start_ms >= " .. p(ms(opts.since)) end
  if opts.before then where[#where + 1] = "start_ms < " .. p(ms(opts.before)) end
  if opts.cursor then
    local start, seq = tostring(opts.cursor):match("^(%-?%d+)_(%d+)$")
    if not start then return nil, string.format("not a page cursor: '%s'", tostring(opts.cursor)) end
    where[#where + 1] = string.format("(start_ms, seq) < (%s, %s)", p(math.tointeger(tonumber(start))),
      p(math.tointeger(tonumber(seq))))
  end
  local limit = math.tointeger(opts.limit) or 50
  local sql = "SELECT seq, start_ms, record, owner_host FROM pipeline_runs WHERE " .. table.concat(where, " AND ") ..
    " ORDER BY start_ms DESC, seq DESC LIMIT " .. p(limit + 1)
  local out, last = {}, nil
  for _, row in ipairs(self:query(sql, table.unpack(list, 1, #list))) do
    if #out == limit then return out, string.format("%d_%d", last.start_ms, last.seq) end
    local r = decode(row.record)
    r.host = row.owner_host
    out[#out + 1] = r
    last = row
  end
  return out, nil
end

function Store:put_activity_run(record)
  self:query([[INSERT INTO activity_runs (activity_run_id, pipeline_run_id, activity_name, status, record)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (activity_run_id) DO UPDATE SET status = excluded.status, record = excluded.record]],
    record.activityRunId, record.pipelineRunId, record.activityName, record.status, encode(record))
end

function Store:activity_runs(run_id, filter)
  local out = {}
  for _, row in ipairs(self:query("SELECT record FROM activity_runs WHERE pipeline_run_id = $1 ORDER BY seq", run_id)) do
    local r = decode(row.record)
    if runs.matches(r, filter) then out[#out + 1] = r end
  end
  return out
end

function Store:journal_put(run_id, key, value)
  if value == nil then
    self:query("DELETE FROM journal WHERE run_id = $1 AND key = $2", run_id, key)
  else
    self:query([[INSERT INTO journal (run_id, key, value, updated_ms) VALUES ($1, $2, $3, $4)
      ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms]],
      run_id, key, encode(value), ms(runs.wall_time()))
  end
end

function Store:journal_get(run_id, key)
  local row = self:first("SELECT value FROM journal WHERE run_id = $1 AND key = $2", run_id, key)
  return row and decode(row.value)
end

function Store:journal(run_id)
  local out = {}
  for _, row in ipairs(self:query("SELECT key, value FROM journal WHERE run_id = $1", run_id)) do
    out[row.key] = decode(row.value)
  end
  return out
end

-- ---------------------------------------------------------------- owners, leases, cancel requests

-- Whether the owner recorded in `row` (`owner` JSON, `expired`: its lease ran out on the server's clock)
-- is gone: on this host by the process table, on another by its lease.
local function owner_gone(row)
  local o = decode(row.owner)
  if type(o) ~= "table" then return row.expired end
  if owner.is_self(o) then return false end
  local alive = owner.alive(o)
  if alive == "unknown" then return row.expired end
  return alive == "no"
end
M.owner_gone = owner_gone

local function heartbeat_step(self, renew)
  if renew then
    for id in pairs(self.owned) do
      self:query("UPDATE pipeline_runs SET lease_until = " .. NOW_MS .. " + $1 WHERE run_id = $2", lease_ms(), id)
    end
    for id in pairs(self.claimed) do
      self:query("UPDATE trigger_runs SET lease_until = " .. NOW_MS .. " + $1 WHERE trigger_run_id = $2", lease_ms(), id)
    end
  end
  for id, on_cancel in pairs(self.owned) do
    local row = self:first("SELECT cancel FROM pipeline_runs WHERE run_id = $1", id)
    if row and row.cancel and on_cancel ~= true then
      self.owned[id] = true  -- delivered once
      local ok, err = pcall(on_cancel, row.cancel)
      if not ok then io.stderr:write("lufa: cancelling run ", id, " failed: ", tostring(err), "\n") end
    end
  end
end

-- One task per store renews the leases of what this process executes (runs, claimed fire times) and
-- delivers cancel requests; it ends when nothing is left. A failed renewal is reported and tried again.
local function heartbeat(self)
  local since_renew = 0
  while (self.owned_count > 0 or next(self.claimed)) and self.conn do
    lufa.sleep(M.CANCEL_POLL_SECONDS)
    if not self.conn then break end
    since_renew = since_renew + M.CANCEL_POLL_SECONDS
    local renew = since_renew >= M.RENEW_SECONDS
    if renew then since_renew = 0 end
    local ok, err = pcall(heartbeat_step, self, renew)
    if not ok then
      io.stderr:write("lufa: the run store ", self.path, " did not answer the lease renewal: ",
        type(err) == "table" and tostring(err.message) or tostring(err), "\n")
    end
  end
  self.heartbeat_task = nil
end

function Store:keep_alive()
  if not self.heartbeat_task then self.heartbeat_task = lufa.spawn(heartbeat, self) end
end

--- This process executes `run_id`: records the owner and a lease; `on_cancel(reason)` is called when
-- another process asks (through `request_cancel`) for the run to be cancelled.
function Store:own(run_id, on_cancel)
  local me = owner.self()
  self:query("UPDATE pipeline_runs SET owner = $1, owner_host = $2, lease_until = " .. NOW_MS ..
    " + $3 WHERE run_id = $4", encode(me), me.host, lease_ms(), run_id)
  if self.owned[run_id] == nil then self.owned_count = self.owned_count + 1 end
  self.owned[run_id] = on_cancel or function() end
  self:keep_alive()
end

--- The run has ended here: its lease is released (the owner stays: it is who ran it).
function Store:disown(run_id)
  if self.owned[run_id] == nil then return end
  self.owned[run_id] = nil
  self.owned_count = self.owned_count - 1
  self:query("UPDATE pipeline_runs SET lease_until = NULL WHERE run_id = $1", run_id)
end

function Store:request_cancel(run_id, reason)
  local _, n = self:query("UPDATE pipeline_runs SET cancel = $1 WHERE run_id = $2", reason or "cancelled", run_id)
  return n > 0
end

function Store:cancel_request(run_id)
  local row = self:first("SELECT cancel FROM pipeline_runs WHERE run_id = $1", run_id)
  return row and row.cancel
end

--- Whether a run that the store shows as executing has an owner still alive.
function Store:owner_alive(info)
  return not owner_gone{owner = info.owner and encode(info.owner),
    expired = info.lease_until == nil or info.lease_until <= runs.wall_time()}
end

--- Marks Interrupted the runs left InProgress (or Canceling) by a process that died; returns their records.
-- Rows another host is reaping at the same moment are skipped (they are locked), so each is reaped once.
function Store:reap()
  local host = owner.self().host
  return self.conn:transaction(function()
    local rows = self:query([[SELECT run_id, record, owner, status,
        lease_until IS NULL OR lease_until < ]] .. NOW_MS .. [[ AS expired
      FROM pipeline_runs WHERE status IN ('InProgress', 'Canceling')
        AND (lease_until IS NULL OR lease_until < ]] .. NOW_MS .. [[ OR owner_host = $1)
      FOR UPDATE SKIP LOCKED]], host)
    local out = {}
    for _, row in ipairs(rows) do
      if owner_gone(row) then
        local r = decode(row.record)
        r.status = "Interrupted"
        r.message = string.format("the lufa process executing this run (%s) stopped before the run ended; " ..
          "'lufa resume %s' continues it", owner.describe(decode(row.owner)), r.runId)
        r.lastUpdated = runs.iso8601()
        -- a run stopped while it was being cancelled is cancelled when it resumes
        self:query([[UPDATE pipeline_runs SET status = 'Interrupted', record = $1, lease_until = NULL,
          cancel = CASE WHEN status = 'Canceling' THEN coalesce(cancel, 'cancelled') ELSE cancel END
          WHERE run_id = $2]], encode(r), r.runId)
        for _, arow in ipairs(self:query(
            "SELECT record FROM activity_runs WHERE pipeline_run_id = $1 AND status = 'InProgress'", r.runId)) do
          local a = decode(arow.record)
          a.status = "Interrupted"
          self:query("UPDATE activity_runs SET status = 'Interrupted', record = $1 WHERE activity_run_id = $2",
            encode(a), a.activityRunId)
        end
        out[#out + 1] = r
      end
    end
    return out
  end)
end

--- Takes the right to resume an Interrupted run: true for exactly one of the hosts that ask (until this
-- one's lease runs out unrenewed), false when another host resumes it or it is no longer Interrupted.
function Store:claim_resume(run_id)
  local me = owner.self()
  return self.conn:transaction(function()
    local row = self:first([[SELECT status, owner, lease_until IS NULL OR lease_until < ]] .. NOW_MS ..
      [[ AS expired FROM pipeline_runs WHERE run_id = $1 FOR UPDATE SKIP LOCKED]], run_id)
    if not row or row.status ~= "Interrupted" or not owner_gone(row) then return false end
    self:query("UPDATE pipeline_runs SET owner = $1, owner_host = $2, lease_until = " .. NOW_MS ..
      " + $3 WHERE run_id = $4", encode(me), me.host, lease_ms(), run_id)
    return true
  end)
end

--- Deletes the runs (with their activity runs and journals) that started before `before` (epoch s) and
-- have ended. @return the number of pipeline runs deleted
function Store:prune(before)
  return self.conn:transaction(function()
    self:query([[DELETE FROM trigger_runs t WHERE t.scheduled_ms < $1
      AND t.status NOT IN ('InProgress', 'Queued', 'Waiting')
      AND t.scheduled_ms < (SELECT max(u.scheduled_ms) FROM trigger_runs u
        WHERE u.scope = t.scope AND u.trigger_key = t.trigger_key)]], ms(before))
    local _, n = self:query([[DELETE FROM pipeline_runs WHERE start_ms < $1
      AND status NOT IN ('InProgress', 'Canceling', 'Queued')]], ms(before))
    return n
  end)
end

--- "ok" when the server answers and the schema is this lufa's.
function Store:check()
  local row = self:first("SELECT version FROM lufa_schema")
  if not row or row.version ~= schema.LATEST then
    return string.format("schema version %s, expected %d", tostring(row and row.version), schema.LATEST)
  end
  return "ok"
end

-- ---------------------------------------------------------------- the scheduler's records

--- Claims the fire time `scheduled` (epoch s) of a trigger: true for exactly one caller across the fleet.
-- The claim carries this process as owner, with a lease renewed while the fire time is in progress here.
function Store:claim_fire(scope, name, scheduled, record)
  local me = owner.self()
  local _, n = self:query([[INSERT INTO trigger_runs (scope, trigger_key, trigger_name, scheduled_ms, trigger_run_id,
      trigger_type, status, record, updated_ms, owner, owner_host, lease_until)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, ]] .. NOW_MS .. [[ + $12) ON CONFLICT DO NOTHING]],
    scope, name:lower(), name, ms(scheduled), record.triggerRunId, record.triggerType, record.status,
    encode(record), ms(runs.wall_time()), encode(me), me.host, lease_ms())
  if n > 0 and record.status == "InProgress" then
    self.claimed[record.triggerRunId] = true
    self:keep_alive()
  end
  return n > 0
end

--- Takes over a fire time in progress whose scheduler is gone (its lease ran out): true for one host.
function Store:take_over_fire(_, record)
  local me = owner.self()
  return self.conn:transaction(function()
    local row = self:first([[SELECT owner, lease_until IS NULL OR lease_until < ]] .. NOW_MS ..
      [[ AS expired FROM trigger_runs WHERE trigger_run_id = $1 AND status = 'InProgress' FOR UPDATE SKIP LOCKED]],
      record.triggerRunId)
    if not row or not owner_gone(row) then return false end
    self:query("UPDATE trigger_runs SET owner = $1, owner_host = $2, lease_until = " .. NOW_MS ..
      " + $3 WHERE trigger_run_id = $4", encode(me), me.host, lease_ms(), record.triggerRunId)
    self.claimed[record.triggerRunId] = true
    self:keep_alive()
    return true
  end)
end

--- Updates a claimed fire time's record (its status, the runs it started, the decision).
function Store:put_trigger_run(_, record)
  local ended = record.status ~= "InProgress"
  self:query([[UPDATE trigger_runs SET status = $1, record = $2, updated_ms = $3,
      lease_until = CASE WHEN $4 THEN NULL ELSE lease_until END WHERE trigger_run_id = $5]],
    record.status, encode(record), ms(runs.wall_time()), ended, record.triggerRunId)
  if ended then self.claimed[record.triggerRunId] = nil end
end

--- A trigger's runs, oldest first: opts `status` (one, or a list), `since` (scheduled, epoch s), `limit`,
-- `newest_first`. Each record has `host`: the host whose scheduler claimed it.
function Store:trigger_runs(scope, name, opts)
  opts = opts or {}
  local list, p = params()
  local where = {"scope = " .. p(scope), "trigger_key = " .. p(name:lower())}
  if opts.status then
    local marks = {}
    for _, st in ipairs(type(opts.status) == "table" and opts.status or {opts.status}) do marks[#marks + 1] = p(st) end
    where[#where + 1] = "status IN (" .. table.concat(marks, ", ") .. ")"
  end
  if opts.since then where[#where + 1] = "scheduled_ms >= " .. p(ms(opts.since)) end
  local sql = "SELECT record, owner_host FROM trigger_runs WHERE " .. table.concat(where, " AND ") ..
    (opts.newest_first and " ORDER BY scheduled_ms DESC" or " ORDER BY scheduled_ms") ..
    (opts.limit and (" LIMIT " .. p(math.tointeger(opts.limit))) or "")
  local out = {}
  for _, row in ipairs(self:query(sql, table.unpack(list, 1, #list))) do
    local r = decode(row.record)
    r.host = row.owner_host
    out[#out + 1] = r
  end
  return out
end

function Store:last_fire(scope, name)
  local row = self:first("SELECT max(scheduled_ms) AS m FROM trigger_runs WHERE scope = $1 AND trigger_key = $2",
    scope, name:lower())
  return row and row.m and row.m / 1000 or nil
end

function Store:trigger_state(scope, name)
  local row = self:first("SELECT runtime_state, checked_ms FROM trigger_states WHERE scope = $1 AND trigger_key = $2",
    scope, name:lower())
  return {runtime_state = row and row.runtime_state, checked = row and row.checked_ms and row.checked_ms / 1000}
end

function Store:set_trigger_state(scope, name, fields)
  self:query([[INSERT INTO trigger_states (scope, trigger_key, runtime_state, checked_ms) VALUES ($1, $2, $3, $4)
    ON CONFLICT (scope, trigger_key) DO UPDATE SET
      runtime_state = coalesce(excluded.runtime_state, trigger_states.runtime_state),
      checked_ms = coalesce(excluded.checked_ms, trigger_states.checked_ms)]],
    scope, name:lower(), fields.runtime_state, ms(fields.checked))
end

--- Every trigger the store knows, in every scope: `{scope, name, runtime_state, checked, last_fire}`.
function Store:triggers()
  local out = {}
  for _, row in ipairs(self:query([[SELECT k.scope, k.trigger_key,
        (SELECT max(trigger_name) FROM trigger_runs r WHERE r.scope = k.scope AND r.trigger_key = k.trigger_key) AS name,
        s.runtime_state, s.checked_ms,
        (SELECT max(scheduled_ms) FROM trigger_runs r WHERE r.scope = k.scope AND r.trigger_key = k.trigger_key) AS last_ms
      FROM (SELECT scope, trigger_key FROM trigger_states UNION SELECT scope, trigger_key FROM trigger_runs) k
      LEFT JOIN trigger_states s ON s.scope = k.scope AND s.trigger_key = k.trigger_key
      ORDER BY k.scope, k.trigger_key]])) do
    out[#out + 1] = {scope = row.scope, name = row.name or row.trigger_key, runtime_state = row.runtime_state,
      checked = row.checked_ms and row.checked_ms / 1000, last_fire = row.last_ms and row.last_ms / 1000}
  end
  return out
end

--- The runtime states set in a scope: lower-case trigger name → state (one query per scheduler poll).
function Store:runtime_states(scope)
  local out = {}
  for _, row in ipairs(self:query("SELECT trigger_key, runtime_state FROM trigger_states WHERE scope = $1 AND " ..
      "runtime_state IS NOT NULL", scope)) do
    out[row.trigger_key] = row.runtime_state
  end
  return out
end

function Store:trigger_scopes(name)
  local out = {}
  for _, row in ipairs(self:query([[SELECT scope FROM trigger_states WHERE trigger_key = $1
      UNION SELECT scope FROM trigger_runs WHERE trigger_key = $1]], name:lower())) do
    out[#out + 1] = row.scope
  end
  return out
end

function Store:blobs_seen(scope, name)
  local out = {}
  for _, row in ipairs(self:query("SELECT blob, etag FROM blobs_seen WHERE scope = $1 AND trigger_key = $2",
      scope, name:lower())) do
    out[row.blob] = row.etag or ""
  end
  return out
end

function Store:see_blob(scope, name, blob, etag)
  self:query([[INSERT INTO blobs_seen (scope, trigger_key, blob, etag) VALUES ($1, $2, $3, $4)
    ON CONFLICT (scope, trigger_key, blob) DO UPDATE SET etag = excluded.etag]], scope, name:lower(), blob, etag)
end

M.Store = Store
return M
