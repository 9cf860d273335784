--- The run store's schema and its forward migrations. `PRAGMA user_version` holds the version; a store
-- written by a newer lufa is refused before anything in it is touched.
-- @module lufa.runs.schema
local E = require "lufa.error"

local M = {}

-- Each entry takes the schema from the version before it to its own index.
M.migrations = {
  [1] = [[
    CREATE TABLE pipeline_runs (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      run_id TEXT NOT NULL UNIQUE,
      run_group_id TEXT NOT NULL,
      pipeline_name TEXT NOT NULL,
      status TEXT NOT NULL,
      start_ms INTEGER,
      duration_ms INTEGER,
      invoked_by_type TEXT,
      invoked_by_name TEXT,
      record TEXT NOT NULL,   -- the ADF-shaped pipeline run record (JSON, secrets redacted)
      origin TEXT,            -- how to load the run again: factory, override, parameters (JSON)
      owner TEXT,             -- the process executing it (JSON: host, pid, start, boot)
      lease_until INTEGER,    -- epoch ms; the owner renews it while the run executes
      cancel TEXT             -- a cancel request from another process: the reason
    );
    CREATE INDEX pipeline_runs_by_start ON pipeline_runs (start_ms, seq);
    CREATE INDEX pipeline_runs_by_pipeline ON pipeline_runs (pipeline_name COLLATE NOCASE, start_ms);
    CREATE INDEX pipeline_runs_by_status ON pipeline_runs (status COLLATE NOCASE, start_ms);
    CREATE INDEX pipeline_runs_by_group ON pipeline_runs (run_group_id);
    CREATE INDEX pipeline_runs_by_trigger ON pipeline_runs (invoked_by_name COLLATE NOCASE, start_ms);
    CREATE TABLE activity_runs (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      activity_run_id TEXT NOT NULL UNIQUE,
      pipeline_run_id TEXT NOT NULL REFERENCES pipeline_runs (run_id) ON DELETE CASCADE,
      activity_name TEXT NOT NULL,
      status TEXT NOT NULL,
      record TEXT NOT NULL
    );
    CREATE INDEX activity_runs_by_run ON activity_runs (pipeline_run_id, seq);
    CREATE TABLE journal (
      run_id TEXT NOT NULL REFERENCES pipeline_runs (run_id) ON DELETE CASCADE,
      key TEXT NOT NULL,      -- the activity (and iteration) and what it journals, e.g. "Train/bes.job"
      value TEXT NOT NULL,    -- JSON, no secrets
      updated_ms INTEGER,
      PRIMARY KEY (run_id, key)
    );
  ]],
  -- the scheduler: each fire time (trigger run) claimed once, triggers started or stopped, blobs seen
  [2] = [[
    CREATE TABLE trigger_runs (
      scope TEXT NOT NULL,              -- the factory folder or schedules file the trigger belongs to
      trigger_name TEXT NOT NULL COLLATE NOCASE,
      scheduled_ms INTEGER NOT NULL,    -- the fire time (a tumbling window: its start)
      trigger_run_id TEXT NOT NULL UNIQUE,
      trigger_type TEXT NOT NULL,
      status TEXT NOT NULL,
      record TEXT NOT NULL,             -- ADF's trigger run shape, with lufa's decision (JSON)
      updated_ms INTEGER,
      PRIMARY KEY (scope, trigger_name, scheduled_ms)
    );
    CREATE INDEX trigger_runs_by_status ON trigger_runs (status, scope);
    CREATE TABLE trigger_states (
      scope TEXT NOT NULL,
      trigger_name TEXT NOT NULL COLLATE NOCASE,
      runtime_state TEXT,               -- Started or Stopped as set by lufa trigger start|stop
      checked_ms INTEGER,               -- fire times up to here have been decided
      PRIMARY KEY (scope, trigger_name)
    );
    CREATE TABLE blobs_seen (
      scope TEXT NOT NULL,
      trigger_name TEXT NOT NULL COLLATE NOCASE,
      blob TEXT NOT NULL,
      etag TEXT,
      PRIMARY KEY (scope, trigger_name, blob)
    );
  ]],
}
M.LATEST = #M.migrations

local function newer(path, found)
  return E.new{kind = "runs", code = "newer_schema", message = string.format(
    "the run store %s has schema version %d, written by a newer lufa; this lufa knows versions up to %d. " ..
    "Nothing was changed: use the newer lufa, or another store (--store PATH)", path, found, M.LATEST)}
end

--- Brings the store to the latest schema (in one transaction), or raises a lufa.error.
function M.migrate(db, path, readonly)
  local v = db:user_version()
  if v > M.LATEST then error(newer(path, v), 0) end
  if v == M.LATEST then return end
  if readonly then
    error(E.new{kind = "runs", code = "old_schema", message = string.format(
      "the run store %s has schema version %d and needs migrating to %d, which a read-only open cannot do",
      path, v, M.LATEST)}, 0)
  end
  db:transaction(function()
    local now = db:user_version()  -- another process may have migrated meanwhile
    if now > M.LATEST then error(newer(path, now), 0) end
    for i = now + 1, M.LATEST do db:exec(M.migrations[i]) end
    db:user_version(M.LATEST)
  end)
end

return M
