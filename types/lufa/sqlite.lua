---@meta lufa.sqlite
--- SQLite databases on local files (host/sqlite.c), for state that must outlive the process. Every call is
--- synchronous. `sqlite.open` returns `nil, err`; every other failure raises a `lufa.error` of kind "sqlite"
--- with `code` (SQLite's primary result code in lower case: "error", "busy", "constraint", …, or lufa's own
--- "secret": secrets are never stored), `message = "PATH: what SQLite said"`, `path` and `sqlite_code`.
--- Parameters bind by position (`?`, `?NNN`, `:name`, …) or, given one table, by name. See docs/api/sqlite.md.
---
--- Example:
--- ```lua
--- local sqlite = require "lufa.sqlite"
--- local db = assert(sqlite.open(":memory:"))
--- db:exec("CREATE TABLE runs(id TEXT PRIMARY KEY, status TEXT NOT NULL)")
--- db:run("INSERT INTO runs(id, status) VALUES (:id, :status)", { id = "r1", status = "Queued" })
--- db:transaction(function()
---   db:run("UPDATE runs SET status = 'InProgress' WHERE id = ?", "r1")
--- end)
--- for row in db:rows("SELECT id, status FROM runs ORDER BY id") do print(row.id, row.status) end
--- db:close()
--- ```
--- ```text output
--- r1	InProgress
--- ```

---@class lufa.sqlite
local sqlite = {}

---@class lufa.sqlite.OpenOptions
---@field busy_timeout? integer milliseconds to wait for a lock held elsewhere (default 5000)
---@field readonly? boolean open read-only; the file must exist (default false)
---@field create? boolean create a missing file (default true)
---@field wal? boolean write-ahead logging (default true; not for :memory: or read-only)
---@field synchronous? "NORMAL"|"FULL"|"EXTRA"|"OFF" default "NORMAL"

--- Opens (by default creating, mode 0600) a database file; ":memory:" is a private in-memory database.
--- Foreign keys are enforced.
--- Errors: `nil, err` ("notadb" for a file that is not a database, "cantopen" for a missing one with
--- `create = false`).
---@param path string
---@param opts? lufa.sqlite.OpenOptions
---@return lufa.sqlite.db|nil db
---@return lufa.error? err
function sqlite.open(path, opts) end

--- The SQLite library version, e.g. "3.40.1".
---@nodiscard
---@return string version
function sqlite.version() end

--- Wraps `s` so that it binds as a BLOB (plain strings bind as TEXT).
---@nodiscard
---@param s string
---@return any blob
function sqlite.blob(s) end

--- A database connection (`sqlite.open`); closed by `<close>` and the collector too.
---@class lufa.sqlite.db
local db = {}

--- Runs one or more statements separated by `;`, without parameters (schema, migrations).
--- Errors: raises.
---@param sql string
---@return true
function db:exec(sql) end

--- Runs one statement to its end.
--- Errors: raises (also on a parameter that cannot be stored, naming it).
---@param sql string
---@param ... any parameters
---@return integer changes the rows changed
---@return integer last_insert_rowid
function db:run(sql, ...) end

--- The first row of the result, or nil.
--- Errors: raises.
---@param sql string
---@param ... any parameters
---@return table|nil row keyed by column name
function db:first(sql, ...) end

--- Every row of the result.
--- Errors: raises.
---@param sql string
---@param ... any parameters
---@return table[] rows
function db:query(sql, ...) end

--- An iterator over the rows, for large results: `for row in db:rows(sql, ...) do … end`; the statement
--- goes back to the cache when the loop ends, also by break or an error.
--- Errors: raises.
---@param sql string
---@param ... any parameters
---@return function iterator
function db:rows(sql, ...) end

--- A statement of your own.
--- Errors: raises.
---@param sql string
---@return lufa.sqlite.stmt stmt
function db:prepare(sql) end

--- Runs `fn(...)` between BEGIN IMMEDIATE and COMMIT (a savepoint when a transaction is open). `fn` must not
--- wait (no sleep, HTTP request or task:wait).
--- Errors: if `fn` raises, the transaction is rolled back and the same error raised again.
---@param fn function
---@param ... any arguments for `fn`
---@return any ... the results of `fn`
function db:transaction(fn, ...) end

--- Group commit: opens a transaction that the writes that follow, from any task, join; it is committed at
--- the next loop step that may wait for I/O, by `flush`, `close` or the end of the process.
--- Errors: raises "readonly" on a read-only connection; a failed commit is raised once by the next call, with
--- `batch_lost = true`.
---@return true
function db:batch() end

--- Commits the open batch now, if there is one.
--- Errors: raises as `batch`; raises inside `db:transaction` with a batch open.
---@return true
function db:flush() end

--- Whether a batch is open.
---@nodiscard
---@return boolean
function db:in_batch() end

--- The rows changed by the last INSERT, UPDATE or DELETE.
---@nodiscard
---@return integer
function db:changes() end

--- The rowid of the last inserted row.
---@nodiscard
---@return integer
function db:last_insert_rowid() end

--- The path given to `open`.
---@nodiscard
---@return string
function db:path() end

--- Commits an open batch, finalizes every statement and closes; closing again does nothing.
--- Errors: raises inside its own `db:transaction`.
---@return true
function db:close() end

--- "ok", or the problems PRAGMA integrity_check lists, one per line.
---@nodiscard
---@return string
function db:integrity_check() end

--- Reads PRAGMA user_version (the schema version kept in the file), after setting it to `n` if given.
---@param n? integer
---@return integer version
function db:user_version(n) end

--- A prepared statement (`db:prepare`); finalized by `<close>`, the collector and `db:close` too.
---@class lufa.sqlite.stmt
local stmt = {}

--- Resets the statement and replaces every binding (by position, or by name from one table).
--- Errors: raises on a value that cannot be stored or a wrong parameter count.
---@param ... any
---@return lufa.sqlite.stmt self
function stmt:bind(...) end

--- The next row, or nil when done (the statement is then reset).
--- Errors: raises.
---@return table|nil row
function stmt:step() end

--- Back to the start, bindings kept.
---@return lufa.sqlite.stmt self
function stmt:reset() end

--- The result column names, in order.
---@nodiscard
---@return string[] names
function stmt:columns() end

--- Releases the statement; later calls other than finalize raise.
function stmt:finalize() end

return sqlite
