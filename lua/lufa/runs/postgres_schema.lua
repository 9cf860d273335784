--- The PostgreSQL run store's schema and its forward migrations. The table `lufa_schema` holds the
-- version; a store written by a newer lufa is refused before anything in it is touched. Hosts that start at
-- once migrate one after the other (a transaction-level advisory lock).
-- @module lufa.runs.postgres_schema
local E = require "lufa.error"

local M = {}

-- Any number that no other application is likely to take for pg_advisory_xact_lock.
M.LOCK_KEY = 7386170911

-- Each entry takes the schema from the version before it to its own index. Columns mirror the SQLite
-- store's (lufa.runs.schema); trigger names are matched in any case through `trigger_key` (lower case),
-- and what executes a run or a fire time is recorded as `owner` (JSON), `owner_host` and `lease_until`.
M.migrations = {
  [1] = [[
    CREATE TABLE pipeline_runs (
      seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      run_id TEXT NOT NULL UNIQUE,
      run_group_id TEXT NOT NULL,
      pipeline_name TEXT NOT NULL,
      status TEXT NOT NULL,
      start_ms BIGINT,
      duration_ms BIGINT,
      invoked_by_type TEXT,
      invoked_by_name TEXT,
      record TEXT NOT NULL,     -- the ADF-shaped pipeline run record (JSON, secrets redacted)
      origin TEXT,              -- how to load the run again: factory, override, parameters (JSON)
      owner TEXT,               -- the process executing it (JSON: host, pid, start, boot)
      owner_host TEXT,          -- its host, for listing and for finding this host's runs
      lease_until BIGINT,       -- epoch ms; the owner renews it while the run executes
      cancel TEXT               -- a cancel request from another process: the reason
    );
    CREATE INDEX pipeline_runs_by_start ON pipeline_runs (start_ms, seq);
    CREATE INDEX pipeline_runs_by_pipeline ON pipeline_runs (lower(pipeline_name), start_ms);
    CREATE INDEX pipeline_runs_by_status ON pipeline_runs (lower(status), start_ms);
    CREATE INDEX pipeline_runs_by_group ON pipeline_runs (run_group_id);
    CREATE INDEX pipeline_runs_by_trigger ON pipeline_runs (lower(invoked_by_name), start_ms);
    CREATE TABLE activity_runs (
      seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      activity_run_id TEXT NOT NULL UNIQUE,
      pipeline_run_id TEXT NOT NULL REFERENCES pipeline_runs (run_id) ON DELETE CASCADE,
      activity_name TEXT NOT NULL,
      status TEXT NOT NULL,
      record TEXT NOT NULL
    );
    CREATE INDEX activity_runs_by_run ON activity_runs (pipeline_run_id, seq);
    CREATE TABLE journal (
      run_id TEXT NOT NULL REFERENCES pipeline_runs (run_id) ON DELETE CASCADE,
      key TEXT NOT NULL,
      value TEXT NOT NULL,
      updated_ms BIGINT,
      PRIMARY KEY (run_id, key)
    );
    CREATE TABLE trigger_runs (
      scope TEXT NOT NULL,
      trigger_key TEXT NOT NULL,        -- the trigger's name in lower case
      trigger_name TEXT NOT NULL,
      scheduled_ms BIGINT NOT NULL,     -- the fire time (a tumbling window: its start)
      trigger_run_id TEXT NOT NULL UNIQUE,
      trigger_type TEXT NOT NULL,
      status TEXT NOT NULL,
      record TEXT NOT NULL,
      updated_ms BIGINT,
      owner TEXT,                       -- the scheduler that claimed the fire time (JSON)
      owner_host TEXT,
      lease_until BIGINT,               -- renewed while the fire time is in progress there
      PRIMARY KEY (scope, trigger_key, scheduled_ms)
    );
    CREATE INDEX trigger_runs_by_status ON trigger_runs (status, scope);
    CREATE TABLE trigger_states (
      scope TEXT NOT NULL,
      trigger_key TEXT NOT NULL,
      runtime_state TEXT,
      checked_ms BIGINT,
      PRIMARY KEY (scope, trigger_key)
    );
    CREATE TABLE blobs_seen (
      scope TEXT NOT NULL,
      trigger_key TEXT NOT NULL,
      blob TEXT NOT NULL,
      etag TEXT,
      PRIMARY KEY (scope, trigger_key, blob)
    );
  ]],
}
M.LATEST = #M.migrations

local function newer(where, found)
  return E.new{kind = "runs", code = "newer_schema", message = string.format(
    "the run store %s has schema version %d, written by a newer lufa; this lufa knows versions up to %d. " ..
    "Nothing was changed: use the newer lufa, or another store (--store URL)", where, found, M.LATEST)}
end

local function version(conn)
  local row = conn:first("SELECT to_regclass('lufa_schema') IS NOT NULL AS present")
  if not row.present then return 0 end
  row = conn:first("SELECT version FROM lufa_schema")
  return row and row.version or 0
end

--- Brings the store to the latest schema (in one transaction), or raises a lufa.error.
-- @param conn a lufa.postgres connection; `where` names the store in messages (no password)
function M.migrate(conn, where)
  local v = version(conn)
  if v > M.LATEST then error(newer(where, v), 0) end
  if v == M.LATEST then return end
  -- the lock is taken before the transaction begins, so the transaction sees the tables another host's
  -- migration made (the catalog is read afresh when a transaction starts, not when a lock is granted)
  conn:query("SELECT pg_advisory_lock($1)", M.LOCK_KEY)
  local ok, err = pcall(conn.transaction, conn, function()
    local now = version(conn)  -- another host may have migrated meanwhile
    if now > M.LATEST then error(newer(where, now), 0) end
    if now == M.LATEST then return end
    if now == 0 then conn:exec("CREATE TABLE lufa_schema (version INTEGER NOT NULL)") end
    for i = now + 1, M.LATEST do conn:exec(M.migrations[i]) end
    conn:query("DELETE FROM lufa_schema")
    conn:query("INSERT INTO lufa_schema (version) VALUES ($1)", M.LATEST)
  end)
  conn:query("SELECT pg_advisory_unlock($1)", M.LOCK_KEY)
  if not ok then error(err, 0) end
end

return M
