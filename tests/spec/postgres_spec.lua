-- lufa.postgres against a real server (started for this file): parameters and the types that come back,
-- NULL, transactions and savepoints, what it refuses (secrets, NUL bytes, other tasks inside a transaction),
-- errors with their SQLSTATE, and a password that appears in no error.
local lufa = require "lufa"
local json = require "lufa.json"
local secret = require "lufa.secret"
local postgres = require "lufa.postgres"
local pg = require "tests.support.postgres"

local server, conn

local function connect(password)
  return postgres.connect{host = "127.0.0.1", port = server.port, user = "lufa", dbname = "postgres",
    password = password or secret(server.password)}
end

setup(function()
  server = pg.start()
  conn = assert(connect())
  conn:exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, ratio DOUBLE PRECISION, big BIGINT, ok BOOLEAN)")
end)
teardown(function()
  conn:close()
  server:stop()
end)
before_each(function() conn:query("DELETE FROM t") end)

describe("lufa.postgres", function()
  it("binds parameters and gives rows keyed by column, typed by the column's type", function()
    local _, n = conn:query("INSERT INTO t VALUES ($1, $2, $3, $4, $5)", 1, "it's; DROP TABLE t --", 0.25,
      math.maxinteger, true)
    assert.are.equal(1, n)
    local rows = conn:query("SELECT * FROM t WHERE name = $1", "it's; DROP TABLE t --")
    assert.are.equal(1, #rows)
    assert.are.same({id = 1, name = "it's; DROP TABLE t --", ratio = 0.25, big = math.maxinteger, ok = true}, rows[1])
    assert.are.equal("integer", math.type(rows[1].id))
    assert.are.equal(1, conn:first("SELECT count(*) AS n FROM t").n)
  end)

  it("takes nil and json.null for NULL, and leaves NULL columns out of the row", function()
    conn:query("INSERT INTO t (id, name, ok) VALUES ($1, $2, $3)", 2, nil, json.null)
    local row = conn:first("SELECT * FROM t WHERE id = $1", 2)
    assert.are.same({id = 2}, row)
    assert.is_nil(conn:first("SELECT * FROM t WHERE id = $1", 99))
  end)

  it("commits a transaction's writes together, and rolls all back on an error", function()
    local got = conn:transaction(function(c)
      c:query("INSERT INTO t (id) VALUES (1)")
      c:query("INSERT INTO t (id) VALUES (2)")
      return "done"
    end)
    assert.are.equal("done", got)
    local ok, err = pcall(conn.transaction, conn, function(c)
      c:query("INSERT INTO t (id) VALUES (3)")
      c:query("INSERT INTO t (id) VALUES (1)")  -- a duplicate key
    end)
    assert.is_false(ok)
    assert.are.equal("postgres", err.kind)
    assert.are.equal("23505", err.sqlstate)
    assert.matches("duplicate key", err.message)
    assert.are.equal(2, conn:first("SELECT count(*) AS n FROM t").n)
  end)

  it("makes an inner transaction a savepoint", function()
    conn:transaction(function(c)
      c:query("INSERT INTO t (id) VALUES (1)")
      assert.is_false(pcall(c.transaction, c, function()
        c:query("INSERT INTO t (id) VALUES (2)")
        error("inner fails")
      end))
      c:query("INSERT INTO t (id) VALUES (3)")
    end)
    local ids = {}
    for _, r in ipairs(conn:query("SELECT id FROM t ORDER BY id")) do ids[#ids + 1] = r.id end
    assert.are.same({1, 3}, ids)
  end)

  it("keeps other tasks out of a transaction whose function waits", function()
    local other
    local ok = pcall(conn.transaction, conn, function(c)
      c:query("INSERT INTO t (id) VALUES (1)")
      lufa.spawn(function() other = {pcall(c.query, c, "INSERT INTO t (id) VALUES (2)")} end)
      lufa.sleep(0.01)  -- cannot yield here: the wait runs the loop, and the other task with it
      error("undo")
    end)
    assert.is_false(ok)
    assert.is_false(other[1])
    assert.are.equal("busy", other[2].code)
    assert.are.equal(0, conn:first("SELECT count(*) AS n FROM t").n)
  end)

  it("refuses a secret, a NUL byte and a table as parameters", function()
    local ok, err = pcall(conn.query, conn, "INSERT INTO t (id, name) VALUES (1, $1)", secret("s3cr3t-value"))
    assert.is_false(ok)
    assert.are.equal("secret", err.code)
    ok, err = pcall(conn.query, conn, "SELECT $1::text", "a\0b")
    assert.is_false(ok)
    assert.matches("parameter 1: PostgreSQL text cannot hold a NUL byte", tostring(err))
    ok, err = pcall(conn.query, conn, "SELECT $1::text", {})
    assert.is_false(ok)
    assert.matches("parameter 1: cannot store a table", tostring(err))
  end)

  it("raises SQL errors with the server's message and SQLSTATE", function()
    local ok, err = pcall(conn.query, conn, "SELEC 1")
    assert.is_false(ok)
    assert.are.equal("42601", err.sqlstate)
    assert.matches("syntax error", err.message)
  end)

  it("connects with a password given as a secret or a string; a wrong one appears in no error", function()
    local c = assert(connect(server.password))
    assert.is_true(c:server_version() >= 100000)
    c:close()
    local wrong = "wrong-password-7f3a9c"
    local none, err = connect(secret(wrong))
    assert.is_nil(none)
    assert.are.equal("connect", err.code)
    assert.matches("password authentication failed", err.message)
    none, err = connect(wrong)
    assert.is_nil(none)
    assert.is_nil(tostring(err):find(wrong, 1, true))
  end)

  it("says which server did not answer", function()
    local none, err = postgres.connect{host = "127.0.0.1", port = 1, user = "lufa", dbname = "x", connect_timeout = 2}
    assert.is_nil(none)
    assert.matches("127%.0%.0%.1", err.message)
    assert.matches("port 1", err.message)
  end)

  it("refuses calls on a closed connection", function()
    local c = assert(connect())
    c:close()
    c:close()
    local ok, err = pcall(c.query, c, "SELECT 1")
    assert.is_false(ok)
    assert.are.equal("closed", err.code)
  end)
end)
