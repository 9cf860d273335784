---@meta lufa.postgres
--- A PostgreSQL client on libpq (host/postgres.c), for the shared run store and scripts' own data. Every
--- call is synchronous: it returns when the server has answered. `connect` returns `nil, err`; every other
--- failure raises a `lufa.error` of kind "postgres" with `code` ("connect", "query", "connection", "closed",
--- "busy" or "secret") and, from the server, `sqlstate`. Messages pass lufa.redact; a secret given as a query
--- parameter is refused. Values go as `$1`, `$2`, … after the SQL text. See docs/api/postgres.md.
---
--- Example:
--- ```lua fragment
--- local postgres = require "lufa.postgres"
--- local conn = assert(postgres.connect { host = "db.internal", user = "lufa", dbname = "lufa",
---   password = secret(os.getenv("PGPASSWORD_LUFA")) })
--- local rows = conn:query("SELECT run_id, status FROM pipeline_runs WHERE status = $1", "Failed")
--- conn:close()
--- ```

---@class lufa.postgres
local postgres = {}

--- Connects. `opts` are libpq's connection keywords (`host`, `port`, `user`, `dbname`, `password` as a
--- secret or a string, `connect_timeout`, `sslmode`, `options`, `application_name`, …), strings or numbers.
--- A broken connection is made again before the next call, except inside a transaction.
--- Errors: `nil, err` with code "connect".
---@param opts table<string, string|number|lufa.secret>
---@return lufa.postgres.conn|nil conn
---@return lufa.error? err
function postgres.connect(opts) end

--- libpq's version, e.g. 150018 for 15.18.
---@nodiscard
---@return integer
function postgres.version() end

--- A connection (`postgres.connect`); closed by `<close>` and the collector too.
---@class lufa.postgres.conn
local conn = {}

--- Runs one statement with `$1`, `$2`, … bound to the values after `sql`.
--- Errors: raises (code "query", with `sqlstate`).
---@param sql string
---@param ... any parameters
---@return table[] rows the rows returned (empty for none)
---@return integer affected the rows inserted, updated, deleted or returned
function conn:query(sql, ...) end

--- The first row of `conn:query`, or nil.
--- Errors: raises as `query`.
---@param sql string
---@param ... any
---@return table|nil row
function conn:first(sql, ...) end

--- Statements without parameters, separated by semicolons (a migration).
--- Errors: raises.
---@param script string
function conn:exec(script) end

--- Calls `fn(conn)` between BEGIN and COMMIT (a savepoint when nested); other tasks using the connection
--- meanwhile get code "busy".
--- Errors: an error inside rolls the transaction back and is raised again.
---@param fn fun(conn: lufa.postgres.conn): ...
---@return any ... the results of `fn`
function conn:transaction(fn) end

--- The server's version, e.g. 150018.
---@nodiscard
---@return integer
function conn:server_version() end

--- Closes the connection; an open transaction is rolled back by the server. Calling it again does nothing.
function conn:close() end

return postgres
