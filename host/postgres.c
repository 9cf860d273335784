/*
** lufa.postgres: a binding of libpq for a run store that several lufa hosts share.
**
** A connection is a userdata (Conn) owning the PGconn. Values always travel as query parameters ($1, $2,
** ...), never spliced into the SQL text. Rows come back as tables keyed by column name, with integers,
** floats and booleans converted by their column type; NULL is an absent key.
**
** Why the calls are synchronous: the run store's statements are short, single-row writes and indexed reads
** (a claim, a lease renewal, a record), each one round trip on a LAN. Queuing the tasks of one loop on one
** connection would cost more than such a stall, and a transaction stays whole: conn:transaction calls its
** function from C, so a wait inside it cannot yield (it runs the loop in place), and while it is open the
** connection refuses every other task rather than let it write into the transaction. The stall is bounded:
** connecting by `connect_timeout`, statements by `statement_timeout` (both set by lufa.runs.postgres).
**
** The password is taken as a lufa.secret (or a string) and lives only in libpq; every message from libpq
** or the server goes through lufa.redact before it reaches Lua.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <libpq-fe.h>

#include "error.h"
#include "postgres.h"
#include "redact.h"
#include "secret.h"

#define CONN_MT "lufa.postgres.conn"
#define JSON_NULL_KEY "lufa.json.null"  /* the registry field where lufa.json keeps json.null (json.c) */
#define MAX_PARAMS 256
#define MAX_KEYWORDS 32

/* Type OIDs of the built-in types converted to Lua numbers and booleans (pg_type.h). */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_OID 26
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700

typedef struct {
  PGconn *pg;      /* NULL once closed */
  int depth;       /* conn:transaction calls in progress (inner ones are savepoints) */
  lua_State *owner;  /* the thread (task) whose transaction is open; others may not use the connection */
} Conn;

/* ---- errors ---- */

/* Raises a lufa.error {kind = "postgres", code, message, sqlstate?}; the message is redacted. */
static int raise_error(lua_State *L, const char *code, const char *sqlstate, const char *what, const char *detail) {
  char buf[2048];
  snprintf(buf, sizeof buf, "%s%s%s", what, detail && *detail ? ": " : "", detail ? detail : "");
  size_t n = strlen(buf);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = '\0';
  lufa_redact_push(L, buf, n);
  int idx = lufa_error_push(L, "postgres", code, "%s", lua_tostring(L, -1));
  if (sqlstate && *sqlstate) lufa_error_setstr(L, idx, "sqlstate", sqlstate);
  return lua_error(L);
}

static int raise_result(lua_State *L, PGconn *pg, PGresult *res, const char *what) {
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(pg);
  if (msg == NULL || *msg == '\0') msg = PQerrorMessage(pg);
  char state_copy[8] = "";
  if (state) snprintf(state_copy, sizeof state_copy, "%s", state);
  char *copy = strdup(msg ? msg : "");
  if (res) PQclear(res);
  const char *code = PQstatus(pg) == CONNECTION_BAD ? "connection" : "query";
  lua_pushstring(L, copy ? copy : "");
  free(copy);
  return raise_error(L, code, state_copy, what, lua_tostring(L, -1));
}

static Conn *check_conn(lua_State *L) {
  Conn *c = luaL_checkudata(L, 1, CONN_MT);
  if (c->pg == NULL) raise_error(L, "closed", NULL, "the PostgreSQL connection is closed", NULL);
  /* A broken connection (server restarted, network cut) is made again, but never inside a transaction:
  ** what that transaction did is gone, and the function must learn it. */
  if (PQstatus(c->pg) == CONNECTION_BAD && c->depth == 0) PQreset(c->pg);
  /* Outside a task a wait drives the loop, and other tasks run: they must not write into this transaction. */
  if (c->depth > 0 && c->owner != L)
    raise_error(L, "busy", NULL, "the PostgreSQL connection is inside another task's transaction", NULL);
  return c;
}

/* libpq prints notices (e.g. "relation already exists, skipping") on stderr unless told otherwise. */
static void ignore_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* ---- connecting ---- */

/** postgres.connect(opts) → conn, or nil, err. opts: libpq keywords (host, port, user, dbname,
** password as a lufa.secret or string, connect_timeout, options, sslmode, application_name, ...). */
static int l_connect(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *keys[MAX_KEYWORDS + 1], *vals[MAX_KEYWORDS + 1];
  char *password = NULL;
  int n = 0;
  lua_settop(L, 1);
  lua_newtable(L);  /* 2: keeps the text of numeric options alive until the connection is made */
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      free(password);
      return luaL_error(L, "postgres.connect: option names must be strings");
    }
    const char *key = lua_tostring(L, -2);
    if (n == MAX_KEYWORDS) {
      free(password);
      return luaL_error(L, "postgres.connect: more than %d options", MAX_KEYWORDS);
    }
    if (strcmp(key, "password") == 0) {
      size_t len;
      const char *bytes = lufa_secret_bytes(L, -1, &len);
      if (bytes == NULL && lua_type(L, -1) == LUA_TSTRING) bytes = lua_tolstring(L, -1, &len);
      if (bytes == NULL || memchr(bytes, '\0', len)) {
        free(password);
        return luaL_error(L, "postgres.connect: password must be a lufa.secret or a string without NUL bytes");
      }
      free(password);
      password = malloc(len + 1);
      if (password == NULL) return luaL_error(L, "not enough memory");
      memcpy(password, bytes, len);
      password[len] = '\0';
      keys[n] = "password";
      vals[n++] = password;
    } else if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
      lua_pushvalue(L, -1);
      keys[n] = key;
      vals[n++] = lua_tostring(L, -1);
      lua_rawseti(L, 2, n);
    } else {
      free(password);
      return luaL_error(L, "postgres.connect: option '%s' must be a string or a number", key);
    }
    lua_pop(L, 1);
  }
  keys[n] = vals[n] = NULL;
  Conn *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, CONN_MT);
  c->pg = PQconnectdbParams(keys, vals, 0);
  if (password) {
    memset(password, 0, strlen(password));
    free(password);
  }
  if (c->pg == NULL) return lufa_error_fail(L, "postgres", "connect", "cannot connect to PostgreSQL: not enough memory");
  if (PQstatus(c->pg) != CONNECTION_OK) {
    char *msg = strdup(PQerrorMessage(c->pg));
    PQfinish(c->pg);
    c->pg = NULL;
    size_t len = msg ? strlen(msg) : 0;
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' ')) msg[--len] = '\0';
    lufa_redact_push(L, msg ? msg : "", len);
    free(msg);
    return lufa_error_fail(L, "postgres", "connect", "cannot connect to PostgreSQL: %s", lua_tostring(L, -1));
  }
  PQsetNoticeProcessor(c->pg, ignore_notice, NULL);
  return 1;
}

/* ---- parameters and rows ---- */

static int is_json_null(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TLIGHTUSERDATA && lua_type(L, idx) != LUA_TUSERDATA) return 0;
  lua_getfield(L, LUA_REGISTRYINDEX, JSON_NULL_KEY);
  int same = lua_rawequal(L, idx, -1);
  lua_pop(L, 1);
  return same;
}

/* The text form of parameter `arg` (NULL for SQL NULL); numbers are converted in place on the stack. */
static const char *param_text(lua_State *L, const char *fn, int arg, int position) {
  switch (lua_type(L, arg)) {
    case LUA_TNIL: return NULL;
    case LUA_TBOOLEAN: return lua_toboolean(L, arg) ? "true" : "false";
    case LUA_TNUMBER:
      if (lua_isinteger(L, arg)) lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, arg));
      else {
        char buf[64];
        snprintf(buf, sizeof buf, "%.17g", lua_tonumber(L, arg));
        lua_pushstring(L, buf);
      }
      lua_replace(L, arg);
      return lua_tostring(L, arg);
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, arg, &len);
      if (memchr(s, '\0', len)) luaL_error(L, "%s: parameter %d: PostgreSQL text cannot hold a NUL byte", fn, position);
      return s;
    }
    default:
      if (is_json_null(L, arg)) return NULL;
      if (lufa_secret_bytes(L, arg, NULL))
        raise_error(L, "secret", NULL, "refusing to store a secret in the database", NULL);
      luaL_error(L, "%s: parameter %d: cannot store a %s", fn, position, luaL_typename(L, arg));
      return NULL;
  }
}

static void push_value(lua_State *L, PGresult *res, int row, int col) {
  const char *v = PQgetvalue(res, row, col);
  switch (PQftype(res, col)) {
    case OID_BOOL: lua_pushboolean(L, v[0] == 't'); return;
    case OID_INT2: case OID_INT4: case OID_INT8: case OID_OID:
      lua_pushinteger(L, (lua_Integer)strtoll(v, NULL, 10));
      return;
    case OID_FLOAT4: case OID_FLOAT8: case OID_NUMERIC:
      if (lua_stringtonumber(L, v) == 0) lua_pushstring(L, v);
      return;
    default:
      lua_pushlstring(L, v, (size_t)PQgetlength(res, row, col));
  }
}

static void push_rows(lua_State *L, PGresult *res) {
  int nrows = PQntuples(res), ncols = PQnfields(res);
  lua_createtable(L, nrows, 0);
  for (int r = 0; r < nrows; r++) {
    lua_createtable(L, 0, ncols);
    for (int c = 0; c < ncols; c++) {
      if (PQgetisnull(res, r, c)) continue;
      push_value(L, res, r, c);
      lua_setfield(L, -2, PQfname(res, c));
    }
    lua_rawseti(L, -2, r + 1);
  }
}

/* Runs sql with the parameters at stack positions first..top; pushes rows and the affected count. */
static int run_query(lua_State *L, Conn *c, const char *fn, const char *sql, int first) {
  int top = lua_gettop(L);
  int n = top - first + 1;
  if (n < 0) n = 0;
  if (n > MAX_PARAMS) return luaL_error(L, "%s: more than %d parameters", fn, MAX_PARAMS);
  const char *values[MAX_PARAMS];
  for (int i = 0; i < n; i++) values[i] = param_text(L, fn, first + i, i + 1);
  PGresult *res = PQexecParams(c->pg, sql, n, NULL, values, NULL, NULL, 0);
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) return raise_result(L, c->pg, res, "PostgreSQL");
  push_rows(L, res);
  const char *affected = PQcmdTuples(res);
  lua_pushinteger(L, affected && *affected ? (lua_Integer)strtoll(affected, NULL, 10) : 0);
  PQclear(res);
  return 2;
}

/** conn:query(sql, ...) → rows, affected: the values after sql bind to $1, $2, ... (nil and json.null
** are NULL). rows is a list of tables keyed by column name; affected the count of rows the statement
** changed (or returned). */
static int conn_query(lua_State *L) {
  Conn *c = check_conn(L);
  const char *sql = luaL_checkstring(L, 2);
  return run_query(L, c, "conn:query", sql, 3);
}

/** conn:first(sql, ...) → the first row, or nil. */
static int conn_first(lua_State *L) {
  Conn *c = check_conn(L);
  const char *sql = luaL_checkstring(L, 2);
  run_query(L, c, "conn:first", sql, 3);
  lua_pop(L, 1);
  lua_rawgeti(L, -1, 1);
  return 1;
}

/** conn:exec(script): statements without parameters, separated by semicolons (a schema migration). */
static int conn_exec(lua_State *L) {
  Conn *c = check_conn(L);
  const char *sql = luaL_checkstring(L, 2);
  PGresult *res = PQexec(c->pg, sql);
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY)
    return raise_result(L, c->pg, res, "PostgreSQL");
  PQclear(res);
  return 0;
}

/* ---- transactions ---- */

static void command(lua_State *L, Conn *c, const char *sql) {
  PGresult *res = PQexec(c->pg, sql);
  if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) raise_result(L, c->pg, res, "PostgreSQL");
  PQclear(res);
}

/** conn:transaction(fn) → fn's results: fn(conn) runs between BEGIN and COMMIT; an error rolls back and
** is raised again. Nested calls are savepoints. Other tasks that use the connection meanwhile get an error
** (code "busy"): none can write into it. */
static int conn_transaction(lua_State *L) {
  Conn *c = check_conn(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  int depth = c->depth;
  char sql[64];
  if (depth == 0) command(L, c, "BEGIN");
  else {
    snprintf(sql, sizeof sql, "SAVEPOINT lufa_tx_%d", depth);
    command(L, c, sql);
  }
  c->depth++;
  c->owner = L;
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  int rc = lua_pcall(L, 1, LUA_MULTRET, 0);
  c->depth--;
  if (c->pg == NULL) {
    if (rc != LUA_OK) return lua_error(L);
    return raise_error(L, "closed", NULL, "the PostgreSQL connection was closed inside its transaction", NULL);
  }
  if (rc != LUA_OK) {
    if (depth == 0) snprintf(sql, sizeof sql, "ROLLBACK");
    else snprintf(sql, sizeof sql, "ROLLBACK TO SAVEPOINT lufa_tx_%d", depth);
    PQclear(PQexec(c->pg, sql));  /* the first error is the one that matters */
    return lua_error(L);
  }
  if (depth == 0) command(L, c, "COMMIT");
  else {
    snprintf(sql, sizeof sql, "RELEASE SAVEPOINT lufa_tx_%d", depth);
    command(L, c, sql);
  }
  return lua_gettop(L) - 2;
}

/* ---- the rest ---- */

/** conn:close(): idempotent; a transaction left open is rolled back by the server. */
static int conn_close(lua_State *L) {
  Conn *c = luaL_checkudata(L, 1, CONN_MT);
  if (c->pg) PQfinish(c->pg);
  c->pg = NULL;
  return 0;
}

/** conn:server_version() → e.g. 150018. */
static int conn_server_version(lua_State *L) {
  Conn *c = check_conn(L);
  lua_pushinteger(L, PQserverVersion(c->pg));
  return 1;
}

static int conn_tostring(lua_State *L) {
  Conn *c = luaL_checkudata(L, 1, CONN_MT);
  if (c->pg == NULL) lua_pushstring(L, "lufa.postgres connection (closed)");
  else lua_pushfstring(L, "lufa.postgres connection (%s@%s:%s/%s)", PQuser(c->pg), PQhost(c->pg), PQport(c->pg),
    PQdb(c->pg));
  return 1;
}

/** postgres.version() → libpq's version, e.g. 150018. */
static int l_version(lua_State *L) {
  lua_pushinteger(L, PQlibVersion());
  return 1;
}

int luaopen_lufa_postgres(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"query", conn_query},
    {"first", conn_first},
    {"exec", conn_exec},
    {"transaction", conn_transaction},
    {"close", conn_close},
    {"server_version", conn_server_version},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", conn_close},
    {"__close", conn_close},
    {"__tostring", conn_tostring},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"connect", l_connect},
    {"version", l_version},
    {NULL, NULL}
  };
  if (luaL_newmetatable(L, CONN_MT)) {
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
