-- lufa.sqlite: the SQLite binding behind the durable run store. Files live in a private temporary
-- directory per test; a second connection (or a second process) shows what is really on disk.
local lufa = require "lufa"
local sqlite = require "lufa.sqlite"
local json = require "lufa.json"
local secret = require "lufa.secret"
local util = require "tests.support.util"

local q = util.shell_quote

local function mode_of(path)
  local p = assert(io.popen("stat -c %a " .. q(path)))
  local m = p:read("l")
  p:close()
  return m
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Runs fn expecting a raised error; returns the error value.
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

-- The shell words that run Lua code in a fresh lufa process (the build under test).
local function lufa_cmd(code)
  return q(util.lufa_binary()) .. " -e " .. q(code)
end

local function count(db, where)
  return db:first("SELECT count(*) AS n FROM t" .. (where and (" WHERE " .. where) or "")).n
end

describe("lufa.sqlite", function()
  local dir, path

  before_each(function()
    dir = util.tempdir()
    path = dir .. "/store.db"
  end)

  after_each(function()
    collectgarbage()  -- finalizes connections a failed test left open before their files go
    os.execute("rm -rf " .. q(dir))
  end)

  local function open_t(p, opts)
    local db = assert(sqlite.open(p or path, opts))
    db:exec("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v)")
    return db
  end

  describe("opening", function()
    it("creates a new file with mode 0600 even under umask 000, and its WAL files too", function()
      local code = ([[
        local db = assert(require("lufa.sqlite").open(%q))
        db:exec("CREATE TABLE t(v)")
        db:run("INSERT INTO t VALUES (1)")
        print(require("lufa.sqlite").version())
        os.execute("stat -c %%a " .. %q .. " " .. %q .. "-wal " .. %q .. "-shm")
      ]]):format(path, path, path, path)
      local p = assert(io.popen("umask 000; " .. lufa_cmd(code) .. " 2>&1"))
      local out = p:read("a")
      p:close()
      assert.are.equal(sqlite.version() .. "\n600\n600\n600\n", out)
      assert.are.equal("600", mode_of(path))
    end)

    it("keeps the mode of an existing file", function()
      util.write_file(path, "")
      os.execute("chmod 640 " .. q(path))
      local db = open_t()
      db:close()
      assert.are.equal("640", mode_of(path))
    end)

    it("uses WAL, synchronous NORMAL and foreign keys by default; options change them", function()
      local db = open_t()
      assert.are.equal("wal", db:first("PRAGMA journal_mode").journal_mode)
      assert.are.equal(1, db:first("PRAGMA synchronous").synchronous)
      assert.are.equal(1, db:first("PRAGMA foreign_keys").foreign_keys)
      db:close()
      local other = dir .. "/other.db"
      local db2 = assert(sqlite.open(other, { wal = false, synchronous = "FULL" }))
      assert.are.equal("delete", db2:first("PRAGMA journal_mode").journal_mode)
      assert.are.equal(2, db2:first("PRAGMA synchronous").synchronous)
      db2:close()
    end)

    it("opens :memory: databases, private to each connection", function()
      local a = open_t(":memory:")
      local b = open_t(":memory:")
      a:run("INSERT INTO t(v) VALUES (1)")
      assert.are.equal(1, count(a))
      assert.are.equal(0, count(b))
      assert.are.equal(":memory:", a:path())
      a:close()
      b:close()
      assert.is_false(exists(":memory:"))
    end)

    it("does not create a missing file with create = false", function()
      local db, err = sqlite.open(path, { create = false })
      assert.is_nil(db)
      assert.are.equal("sqlite", err.kind)
      assert.are.equal("cantopen", err.code)
      assert.matches(path, err.message, 1, true)
      assert.is_false(exists(path))
    end)

    it("reports a file that is not a database as notadb, naming the path", function()
      util.write_file(path, ("this is not a database\n"):rep(100))
      local db, err = sqlite.open(path)
      assert.is_nil(db)
      assert.are.equal("notadb", err.code)
      assert.are.equal(path, err.path)
      assert.matches(path, err.message, 1, true)
      assert.matches("not a database", err.message, 1, true)
      local db2, err2 = sqlite.open(path, { readonly = true })
      assert.is_nil(db2)
      assert.are.equal("notadb", err2.code)
    end)

    it("refuses bad options", function()
      assert.matches("busy_timeout", tostring(raised(sqlite.open, path, { busy_timeout = "soon" })))
      assert.matches("synchronous", tostring(raised(sqlite.open, path, { synchronous = "SOMETIMES" })))
      assert.matches("readonly", tostring(raised(sqlite.open, path, { readonly = "yes" })))
    end)

    it("gives the library version", function()
      assert.matches("^3%.%d+%.%d+$", sqlite.version())
    end)
  end)

  describe("values", function()
    it("round-trips integers, floats, text with NUL bytes, blobs, booleans and NULL", function()
      local db = open_t()
      local big = math.maxinteger
      local cases = {
        { big, "integer" }, { math.mininteger, "integer" }, { (1 << 53) + 1, "integer" }, { -7, "integer" },
        { 0.1, "real" }, { 1e300, "real" }, { -2.5, "real" }, { 3.0, "real" },
        { "", "text" }, { "a\0b\255\0", "text" }, { ("x"):rep(100000), "text" },
      }
      for i, c in ipairs(cases) do
        db:run("INSERT INTO t(id, v) VALUES (?, ?)", i, c[1])
        local row = db:first("SELECT v, typeof(v) AS ty FROM t WHERE id = ?", i)
        assert.are.equal(c[2], row.ty)
        assert.are.equal(math.type(c[1]) or "string", math.type(row.v) or type(row.v))
        assert.are.equal(c[1], row.v)
      end
      db:run("INSERT INTO t(id, v) VALUES (100, ?)", sqlite.blob("\0\1\2bin"))
      local b = db:first("SELECT v, typeof(v) AS ty FROM t WHERE id = 100")
      assert.are.same({ v = "\0\1\2bin", ty = "blob" }, b)
      db:run("INSERT INTO t(id, v) VALUES (101, ?), (102, ?)", true, false)
      assert.are.same({ 1, 0 }, { db:first("SELECT v FROM t WHERE id = 101").v, db:first("SELECT v FROM t WHERE id = 102").v })
      db:run("INSERT INTO t(id, v) VALUES (103, ?), (104, ?)", nil, json.null)
      for _, id in ipairs({ 103, 104 }) do
        local row = db:first("SELECT id, v, typeof(v) AS ty FROM t WHERE id = ?", id)
        assert.are.same({ id = id, ty = "null" }, row)  -- NULL columns are absent
      end
      db:close()
    end)

    it("binds positional and named parameters (:name, @name, $name)", function()
      local db = open_t()
      db:run("INSERT INTO t(id, v) VALUES (?, ?)", 1, "one")
      db:run("INSERT INTO t(id, v) VALUES (?2, ?1)", "two", 2)
      db:run("INSERT INTO t(id, v) VALUES (:id, :v)", { id = 3, v = "three" })
      db:run("INSERT INTO t(id, v) VALUES (@id, $v)", { id = 4, v = "four" })
      db:run("INSERT INTO t(id, v) VALUES (:id, :v)", { id = 5 })  -- an absent name binds NULL
      local rows = db:query("SELECT id, v FROM t ORDER BY id")
      assert.are.same({ { id = 1, v = "one" }, { id = 2, v = "two" }, { id = 3, v = "three" },
                        { id = 4, v = "four" }, { id = 5 } }, rows)
      assert.are.same({ id = 3, v = "three" }, db:first("SELECT * FROM t WHERE v = :v", { v = "three" }))
      db:close()
    end)

    it("refuses values it cannot store, naming the parameter", function()
      local db = open_t()
      local msg = tostring(raised(db.run, db, "INSERT INTO t(id, v) VALUES (?, ?)", 1, { 1 }))
      assert.matches("db:run: parameter 2: cannot store a table", msg, 1, true)
      msg = tostring(raised(db.first, db, "SELECT ?", print))
      assert.matches("db:first: parameter 1: cannot store a function", msg, 1, true)
      msg = tostring(raised(db.run, db, "INSERT INTO t(id, v) VALUES (:id, :v)", { id = 1, v = io.stdout }))
      assert.matches("parameter :v: cannot store a userdata", msg, 1, true)
      msg = tostring(raised(db.run, db, "INSERT INTO t(id, v) VALUES (:id, :v)", { id = 1, value = 2 }))
      assert.matches("parameter :value: the statement has no such parameter", msg, 1, true)
      msg = tostring(raised(db.run, db, "INSERT INTO t(id, v) VALUES (?, ?)", 1))
      assert.matches("takes 2 parameter(s), 1 given", msg, 1, true)
      msg = tostring(raised(db.run, db, "INSERT INTO t(id, v) VALUES (?, ?)", { 1, 2 }))
      assert.matches("positional parameter cannot be bound from a table", msg, 1, true)
      assert.are.equal(0, count(db))
      db:close()
    end)

    it("refuses to store a secret, positional or named, and writes nothing", function()
      local db = open_t()
      local s = secret("hunter2")
      local err = raised(db.run, db, "INSERT INTO t(v) VALUES (?)", s)
      assert.are.equal("sqlite", err.kind)
      assert.are.equal("secret", err.code)
      assert.matches("refusing to store a secret in the database", err.message, 1, true)
      err = raised(db.run, db, "INSERT INTO t(v) VALUES (:v)", { v = s })
      assert.are.equal("secret", err.code)
      local st = db:prepare("INSERT INTO t(v) VALUES (?)")
      assert.are.equal("secret", raised(st.bind, st, s).code)
      st:finalize()
      assert.are.equal(0, count(db))
      assert.is_nil(err.message:find("hunter2", 1, true))
      db:close()
    end)
  end)

  describe("statements", function()
    it("raises lufa.errors that name the SQL problem and the path", function()
      local db = open_t()
      local err = raised(db.run, db, "SELEC 1")
      assert.are.equal("sqlite", err.kind)
      assert.are.equal("error", err.code)
      assert.matches('near "SELEC": syntax error', err.message, 1, true)
      assert.matches(path, err.message, 1, true)
      err = raised(db.query, db, "SELECT * FROM missing_table")
      assert.matches("no such table: missing_table", err.message, 1, true)
      db:run("INSERT INTO t(id, v) VALUES (1, 'a')")
      err = raised(db.run, db, "INSERT INTO t(id, v) VALUES (1, 'b')")
      assert.are.equal("constraint", err.code)
      assert.matches("UNIQUE constraint failed: t.id", err.message, 1, true)
      err = raised(db.exec, db, "CREATE TABLE u(x); CREATE TABLE u(x)")
      assert.matches("table u already exists", err.message, 1, true)
      assert.matches("one SQL statement", raised(db.run, db, "SELECT 1; SELECT 2").message, 1, true)
      assert.are.same({ one = 1 }, db:first("SELECT 1 AS one; -- a trailing comment is fine"))
      db:close()
    end)

    it("run returns changes and the last rowid; first, query and rows read rows", function()
      local db = open_t()
      local changes, rowid = db:run("INSERT INTO t(v) VALUES ('a')")
      assert.are.same({ 1, 1 }, { changes, rowid })
      changes, rowid = db:run("INSERT INTO t(v) VALUES ('b'), ('c')")
      assert.are.same({ 2, 3 }, { changes, rowid })
      assert.are.same({ 2, 3 }, { db:changes(), db:last_insert_rowid() })
      assert.are.equal(3, (db:run("UPDATE t SET v = v || '!'")))
      assert.is_nil(db:first("SELECT * FROM t WHERE id = 99"))
      assert.are.same({}, db:query("SELECT * FROM t WHERE id = 99"))
      local seen = {}
      for row in db:rows("SELECT id, v FROM t WHERE id >= ? ORDER BY id", 2) do seen[#seen + 1] = row.v end
      assert.are.same({ "b!", "c!" }, seen)
      db:close()
    end)

    it("hands the statement back when a rows loop is left early", function()
      local db = open_t()
      for i = 1, 5 do db:run("INSERT INTO t(v) VALUES (?)", i) end
      -- an unfinished read keeps its table locked: DROP TABLE fails while one is open
      local iter, state = db:rows("SELECT v FROM t")
      assert.are.equal(1, iter(state).v)
      assert.are.equal("locked", raised(db.exec, db, "DROP TABLE t").code)
      getmetatable(state).__close(state)
      for row in db:rows("SELECT v FROM t") do
        if row.v == 2 then break end
      end
      assert.is_true(db:exec("DROP TABLE t"))
      db:close()
    end)

    it("serves nested uses of the same SQL and more SQL texts than the cache holds", function()
      local db = open_t()
      for i = 1, 3 do db:run("INSERT INTO t(v) VALUES (?)", i) end
      local pairs_seen = 0
      for a in db:rows("SELECT v FROM t WHERE v >= ?", 1) do
        for b in db:rows("SELECT v FROM t WHERE v >= ?", a.v) do pairs_seen = pairs_seen + 1 + 0 * b.v end
      end
      assert.are.equal(6, pairs_seen)
      for round = 1, 2 do
        for i = 1, 100 do
          assert.are.equal(i * round, db:first("SELECT ? * " .. round .. " AS x", i).x)
        end
      end
      db:close()
    end)

    it("prepares statements: bind, step, reset, columns, finalize", function()
      local db = open_t()
      local ins = db:prepare("INSERT INTO t(id, v) VALUES (:id, :v)")
      for i = 1, 3 do
        assert.are.equal(ins, ins:bind({ id = i, v = "v" .. i }))
        assert.is_nil(ins:step())
      end
      ins:finalize()
      ins:finalize()
      assert.matches("finalized", tostring(raised(ins.step, ins)))
      local sel = db:prepare("SELECT id, v AS value FROM t WHERE id >= ? ORDER BY id")
      assert.are.same({ "id", "value" }, sel:columns())
      sel:bind(2)
      assert.are.same({ id = 2, value = "v2" }, sel:step())
      assert.are.same({ id = 3, value = "v3" }, sel:step())
      assert.is_nil(sel:step())
      sel:reset()
      assert.are.same({ id = 2, value = "v2" }, sel:step())
      sel:reset():bind(3)
      assert.are.same({ id = 3, value = "v3" }, sel:step())
      db:close()
      assert.matches("closed", tostring(raised(sel.step, sel)))
    end)

    it("reads and writes the user version; checks integrity", function()
      local db = open_t()
      assert.are.equal(0, db:user_version())
      assert.are.equal(7, db:user_version(7))
      db:close()
      db = assert(sqlite.open(path))
      assert.are.equal(7, db:user_version())
      assert.are.equal("ok", db:integrity_check())
      db:close()
    end)
  end)

  describe("transactions", function()
    it("commits and returns the function's results", function()
      local db = open_t()
      local other = open_t()
      local a, b, c = db:transaction(function(x, y)
        db:run("INSERT INTO t(v) VALUES (?)", x)
        assert.are.equal(0, count(other))  -- not visible before COMMIT
        return x, y, nil
      end, "in", 2)
      assert.are.same({ "in", 2 }, { a, b })
      assert.is_nil(c)
      assert.are.equal(1, count(other))
      db:close()
      other:close()
    end)

    it("rolls back on error and raises the same error value", function()
      local db = open_t()
      local boom = { why = "boom" }
      local err = raised(db.transaction, db, function()
        db:run("INSERT INTO t(v) VALUES ('gone')")
        error(boom)
      end)
      assert.are.equal(boom, err)
      assert.are.equal(0, count(db))
      -- a failed statement inside rolls back the whole transaction too
      err = raised(db.transaction, db, function()
        db:run("INSERT INTO t(id, v) VALUES (1, 'x')")
        db:run("INSERT INTO t(id, v) VALUES (1, 'again')")
      end)
      assert.are.equal("constraint", err.code)
      assert.are.equal(0, count(db))
      db:close()
    end)

    it("nests as savepoints: an inner failure undoes only its own part", function()
      local db = open_t()
      db:transaction(function()
        db:run("INSERT INTO t(v) VALUES ('outer')")
        local ok = pcall(db.transaction, db, function()
          db:run("INSERT INTO t(v) VALUES ('inner')")
          error("inner fails")
        end)
        assert.is_false(ok)
        db:transaction(function() db:run("INSERT INTO t(v) VALUES ('inner2')") end)
      end)
      local vs = {}
      for row in db:rows("SELECT v FROM t ORDER BY id") do vs[#vs + 1] = row.v end
      assert.are.same({ "outer", "inner2" }, vs)
      db:close()
    end)

    it("rolls back when the function yields inside a task", function()
      local db = open_t()
      local t = lufa.spawn(function()
        return pcall(db.transaction, db, function()
          db:run("INSERT INTO t(v) VALUES ('yielded')")
          coroutine.yield()
        end)
      end)
      local ok, err = t:wait()
      assert.is_false(ok)
      assert.matches("attempt to yield across a C%-call boundary", tostring(err))
      assert.are.equal(0, count(db))
      assert.is_true(db:transaction(function() return true end))  -- the connection is usable again
      db:close()
    end)

    it("rolls back when the function waits, and refuses other tasks meanwhile", function()
      local db = open_t()
      local t = lufa.spawn(function()
        return pcall(db.transaction, db, function()
          db:run("INSERT INTO t(v) VALUES ('waited')")
          lufa.sleep(0.02)
          return "not reached"
        end)
      end)
      local other = lufa.spawn(function()
        lufa.sleep(0.005)
        return pcall(db.run, db, "INSERT INTO t(v) VALUES ('other task')")
      end)
      local ok, err = t:wait()
      local ok2, err2 = other:wait()
      assert.is_false(ok)
      assert.are.equal("misuse", err.code)
      assert.matches("must not wait", err.message, 1, true)
      assert.is_false(ok2)
      assert.matches("must not wait", err2.message, 1, true)
      assert.are.equal(0, count(db))
      db:run("INSERT INTO t(v) VALUES ('after')")
      assert.are.equal(1, count(db))
      db:close()
    end)
  end)

  describe("batches", function()
    it("inside a task: invisible to another connection until the loop steps", function()
      local db = open_t()
      local reader = open_t()
      local t = lufa.spawn(function()
        assert.is_true(db:batch())
        assert.is_true(db:batch())  -- again: nothing changes
        db:run("INSERT INTO t(v) VALUES ('batched')")
        local before, inside = count(reader), db:in_batch()
        lufa.sleep(0.01)
        return before, inside, count(reader), db:in_batch()
      end)
      assert.are.same({ 0, true, 1, false }, { t:wait() })
      db:close()
      reader:close()
    end)

    it("in the main chunk: committed by the next wait", function()
      local db = open_t()
      local reader = open_t()
      db:batch()
      db:run("INSERT INTO t(v) VALUES ('main')")
      assert.are.equal(0, count(reader))
      lufa.sleep(0)
      assert.are.equal(1, count(reader))
      assert.is_false(db:in_batch())
      db:close()
      reader:close()
    end)

    it("groups the writes of every task of one loop turn into one commit", function()
      local db = open_t()
      local reader = open_t()
      local a = lufa.spawn(function()
        db:batch()
        db:run("INSERT INTO t(v) VALUES ('a')")
      end)
      local b = lufa.spawn(function()
        db:batch()
        db:run("INSERT INTO t(v) VALUES ('b')")
        return count(reader), count(db)  -- a's write is in the same open transaction
      end)
      a:wait()
      local seen_by_reader, seen_by_writer = b:wait()
      assert.are.same({ 0, 2 }, { seen_by_reader, seen_by_writer })
      lufa.sleep(0)
      assert.are.equal(2, count(reader))
      db:close()
      reader:close()
    end)

    it("spans steps in which tasks are ready and no request starts, for at most 20 ms", function()
      local db = open_t()
      local reader = open_t()
      local seen = {}
      local writer = lufa.spawn(function()
        db:batch()
        db:run("INSERT INTO t(v) VALUES ('w')")
        for _ = 1, 5 do coroutine.yield() end  -- stays ready: nothing acts on the write yet
      end)
      local watcher = lufa.spawn(function()
        for _ = 1, 5 do
          seen[#seen + 1] = count(reader)
          lufa.sleep(0)
        end
      end)
      writer:wait()
      watcher:wait()
      assert.are.same({ 0, 0, 0, 0, 0 }, seen)
      -- busy steps past the bound commit it all the same
      local spin = lufa.spawn(function()
        local t0 = lufa.now()
        while lufa.now() - t0 < 0.05 do coroutine.yield() end
      end)
      spin:wait()
      assert.are.equal(1, count(reader))
      db:close()
      reader:close()
    end)

    it("is committed before a request that a task starts is sent", function()
      local db = open_t()
      local reader = open_t()
      local t = lufa.spawn(function()
        db:batch()
        db:run("INSERT INTO t(v) VALUES ('before the request')")
        local other = lufa.spawn(function() for _ = 1, 100 do coroutine.yield() end end)  -- keeps tasks ready
        -- port 9 on loopback: nothing listens, the request fails at once; what matters is that it started
        require("lufa.http").request{ url = "http://127.0.0.1:9/", timeout = 5 }
        other:cancel("done")
        pcall(other.wait, other)
        return count(reader)
      end)
      assert.are.equal(1, t:wait())
      db:close()
      reader:close()
    end)

    it("commits at flush, close and collection", function()
      local db = open_t()
      local reader = open_t()
      db:batch()
      db:run("INSERT INTO t(v) VALUES (1)")
      assert.is_true(db:flush())
      assert.is_false(db:in_batch())
      assert.are.equal(1, count(reader))
      db:batch()
      db:run("INSERT INTO t(v) VALUES (2)")
      db:close()
      assert.are.equal(2, count(reader))
      local db2 = open_t()
      db2:batch()
      db2:run("INSERT INTO t(v) VALUES (3)")
      db2 = nil  -- luacheck: ignore 311
      collectgarbage()
      collectgarbage()
      assert.are.equal(3, count(reader))
      reader:close()
    end)

    it("is committed when the process ends right after the write", function()
      local code = ([[
        local db = assert(require("lufa.sqlite").open(%q))
        db:exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
        db:batch()
        db:run("INSERT INTO t(v) VALUES ('last words')")
      ]]):format(path)
      local p = assert(io.popen(lufa_cmd(code) .. " 2>&1"))
      local out = p:read("a")
      p:close()
      assert.are.equal("", out)
      local db = assert(sqlite.open(path))
      assert.are.same({ v = "last words" }, db:first("SELECT v FROM t"))
      db:close()
    end)

    it("turns a db:transaction inside it into a savepoint", function()
      local db = open_t()
      local reader = open_t()
      db:batch()
      db:run("INSERT INTO t(v) VALUES ('kept')")
      assert.is_false(pcall(db.transaction, db, function()
        db:run("INSERT INTO t(v) VALUES ('undone')")
        error("fails")
      end))
      db:transaction(function() db:run("INSERT INTO t(v) VALUES ('also kept')") end)
      assert.is_true(db:in_batch())
      assert.are.equal(0, count(reader))
      db:flush()
      assert.are.equal(2, count(reader))
      assert.are.equal(0, count(reader, "v = 'undone'"))
      db:close()
      reader:close()
    end)

    it("raises a commit failure from the hook at the next call", function()
      local db = assert(sqlite.open(path))
      db:exec([[
        CREATE TABLE parent(id INTEGER PRIMARY KEY);
        CREATE TABLE child(pid INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
      ]])
      db:batch()
      db:run("INSERT INTO child VALUES (42)")  -- checked only at COMMIT
      lufa.sleep(0)
      local err = raised(db.first, db, "SELECT count(*) AS n FROM child")
      assert.are.equal("sqlite", err.kind)
      assert.are.equal("constraint", err.code)
      assert.is_true(err.batch_lost)
      assert.matches("batch commit failed", err.message, 1, true)
      assert.matches("FOREIGN KEY constraint failed", err.message, 1, true)
      -- raised once; the connection works and the write is gone
      assert.are.equal(0, db:first("SELECT count(*) AS n FROM child").n)
      db:close()
    end)
  end)

  describe("concurrency", function()
    -- Starts a lufa process that holds the write lock for `hold` seconds; returns its pipe once it does.
    local function hold_lock(hold)
      local ready = dir .. "/locked"
      local code = ([[
        local lufa = require "lufa"
        local db = assert(require("lufa.sqlite").open(%q))
        db:exec("BEGIN IMMEDIATE")
        db:run("INSERT INTO t(v) VALUES ('holder')")
        io.open(%q, "w"):close()
        lufa.sleep(%s)
        db:exec("COMMIT")
        print("released")
      ]]):format(path, ready, hold)
      local p = assert(io.popen(lufa_cmd(code) .. " 2>&1"))
      util.wait_until(function() return exists(ready) end, 30)
      return p
    end

    it("waits up to busy_timeout for another process's write lock", function()
      open_t():close()
      local p = hold_lock(0.3)
      local db = open_t(path, { busy_timeout = 2000 })
      local t0 = lufa.now()
      db:run("INSERT INTO t(v) VALUES ('waited')")
      local waited = lufa.now() - t0
      assert.are.equal("released\n", p:read("a"))
      p:close()
      assert.is_true(waited > 0.1, "the write did not wait for the lock: " .. waited)
      assert.are.equal(2, count(db))
      db:close()
    end)

    it("fails with code busy when the lock outlasts busy_timeout", function()
      open_t():close()
      local p = hold_lock(1.5)
      local db = open_t(path, { busy_timeout = 50 })
      local t0 = lufa.now()
      local err = raised(db.run, db, "INSERT INTO t(v) VALUES ('too late')")
      local waited = lufa.now() - t0
      assert.are.equal("busy", err.code)
      assert.is_true(waited < 1.0, "waited far beyond busy_timeout: " .. waited)
      assert.are.equal("released\n", p:read("a"))
      p:close()
      assert.are.equal(1, count(db))
      assert.are.equal(0, count(db, "v = 'too late'"))
      db:close()
    end)

    it("four processes incrementing one counter in transactions lose no update", function()
      local db = assert(sqlite.open(path))
      db:exec("CREATE TABLE counter(id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counter VALUES (1, 0)")
      local code = ([[
        local db = assert(require("lufa.sqlite").open(%q, { busy_timeout = 20000 }))
        for _ = 1, 200 do
          db:transaction(function()
            local n = db:first("SELECT n FROM counter WHERE id = 1").n
            db:run("UPDATE counter SET n = ? WHERE id = 1", n + 1)
          end)
        end
        db:close()
        print("done")
      ]]):format(path)
      local line = {}
      for i = 1, 4 do line[i] = lufa_cmd(code) .. " 2>&1 &" end
      local p = assert(io.popen(table.concat(line, " ") .. " wait"))
      local out = p:read("a")
      p:close()
      assert.are.equal(("done\n"):rep(4), out)
      assert.are.equal(800, db:first("SELECT n FROM counter WHERE id = 1").n)
      assert.are.equal("ok", db:integrity_check())
      db:close()
    end)
  end)

  describe("read-only and closed connections", function()
    it("refuses writes on a read-only connection", function()
      local w = open_t()
      w:run("INSERT INTO t(v) VALUES ('x')")
      w:close()
      local db = assert(sqlite.open(path, { readonly = true }))
      assert.are.equal(1, count(db))
      local err = raised(db.run, db, "INSERT INTO t(v) VALUES ('y')")
      assert.are.equal("readonly", err.code)
      assert.matches("readonly", raised(db.batch, db).code)
      db:close()
      local missing, err2 = sqlite.open(dir .. "/none.db", { readonly = true })
      assert.is_nil(missing)
      assert.are.equal("cantopen", err2.code)
      assert.is_false(exists(dir .. "/none.db"))
    end)

    it("closes idempotently; use after close raises a clear error", function()
      local db = open_t()
      local st = db:prepare("SELECT 1 AS one")
      local iter, state = db:rows("SELECT v FROM t")
      assert.is_true(db:close())
      assert.is_true(db:close())
      assert.matches("closed", tostring(db))
      assert.are.equal(path, db:path())
      for _, call in ipairs({
        function() return db:run("SELECT 1") end,
        function() return db:first("SELECT 1") end,
        function() return db:exec("SELECT 1") end,
        function() return db:transaction(function() end) end,
        function() return db:batch() end,
      }) do
        local err = raised(call)
        assert.are.equal("misuse", err.code)
        assert.matches("the database is closed", err.message, 1, true)
      end
      assert.matches("closed", tostring(raised(st.step, st)))
      assert.matches("closed", tostring(raised(iter, state)))
      st:finalize()
    end)

    it("refuses to close inside its own transaction", function()
      local db = open_t()
      local err = raised(db.transaction, db, function()
        db:run("INSERT INTO t(v) VALUES ('x')")
        db:close()
      end)
      assert.matches("inside db:transaction", err.message, 1, true)
      assert.are.equal(0, count(db))
      db:close()
    end)
  end)
end)
