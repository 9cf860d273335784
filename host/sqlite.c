/*
** lufa.sqlite: a binding of SQLite for durable local state.
**
** A connection is a userdata (Db) that owns the sqlite3 handle, a cache of prepared statements keyed by
** their SQL text, and the list of statements and row iterators handed out to Lua, so that closing the
** connection can finalize everything it made. Failures are raised as lufa.error objects of kind "sqlite".
**
** Transactions: db:transaction runs a function between BEGIN IMMEDIATE and COMMIT (nested: a savepoint).
** db:batch opens a transaction that a loop prepare hook commits at the start of the next loop step, so the
** writes of every task in one loop turn share one commit. The same hook notices a loop step that happens
** while a db:transaction function runs: that function waited, other tasks could then write into its
** transaction, so the connection refuses every call until the transaction has been rolled back.
*/
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <sqlite3.h>

#include "error.h"
#include "loop.h"
#include "options.h"
#include "secret.h"
#include "sqlite.h"

#define DB_MT "lufa.sqlite.db"
#define STMT_MT "lufa.sqlite.stmt"
#define ROWS_MT "lufa.sqlite.rows"
#define BLOB_MT "lufa.sqlite.blob"
#define JSON_NULL_KEY "lufa.json.null"  /* the registry field where lufa.json keeps json.null (json.c) */
#define CACHE_SIZE 64
#define SAVEPOINT "lufa_tx"

typedef struct Stmt Stmt;

typedef struct {
  char *sql;            /* malloc'd copy of the key; NULL: free slot */
  size_t len;
  unsigned hash;
  sqlite3_stmt *s;
  unsigned long used;   /* for evicting the least recently used entry */
  int busy;             /* leased: a row iterator (or a call further up the stack) is using it */
} CacheEntry;

typedef struct {
  sqlite3 *db;          /* NULL once closed */
  char *path;
  Loop *loop;
  LoopPrepare hook;     /* commits the batch; notices waits inside db:transaction */
  int depth;            /* db:transaction calls in progress */
  int batch;            /* the open transaction is a batch that the hook commits */
  int batch_steps;      /* quiet loop steps the open batch has spanned */
  double batch_started; /* loop_now() when the batch began */
  int stalled;          /* the loop stepped while a db:transaction function ran */
  int deferred_rc;      /* a batch commit that failed in the hook: raised by the next call */
  char *deferred_msg;
  Stmt *stmts;          /* statements and row iterators handed out, finalized by close */
  unsigned long tick;
  CacheEntry cache[CACHE_SIZE];
} Db;

struct Stmt {
  sqlite3_stmt *s;      /* NULL once finished or finalized */
  Db *db;               /* NULL once unlinked */
  Stmt *prev, *next;
  int entry;            /* the cache slot s is leased from, or -1 when s is owned */
  int orphaned;         /* its connection was closed under it */
};

/* ---- errors ---- */

static const char *code_name(int rc) {
  switch (rc & 0xff) {
    case SQLITE_INTERNAL: return "internal";
    case SQLITE_PERM: return "perm";
    case SQLITE_ABORT: return "abort";
    case SQLITE_BUSY: return "busy";
    case SQLITE_LOCKED: return "locked";
    case SQLITE_NOMEM: return "nomem";
    case SQLITE_READONLY: return "readonly";
    case SQLITE_INTERRUPT: return "interrupt";
    case SQLITE_IOERR: return "ioerr";
    case SQLITE_CORRUPT: return "corrupt";
    case SQLITE_NOTFOUND: return "notfound";
    case SQLITE_FULL: return "full";
    case SQLITE_CANTOPEN: return "cantopen";
    case SQLITE_PROTOCOL: return "protocol";
    case SQLITE_SCHEMA: return "schema";
    case SQLITE_TOOBIG: return "toobig";
    case SQLITE_CONSTRAINT: return "constraint";
    case SQLITE_MISMATCH: return "mismatch";
    case SQLITE_MISUSE: return "misuse";
    case SQLITE_NOLFS: return "nolfs";
    case SQLITE_AUTH: return "auth";
    case SQLITE_RANGE: return "range";
    case SQLITE_NOTADB: return "notadb";
    default: return "error";
  }
}

/* Pushes the error {kind = "sqlite", code, message = "PATH: MSG", path, sqlite_code}. */
static int push_error(lua_State *L, const char *path, int rc, const char *msg) {
  int idx = lufa_error_push(L, "sqlite", code_name(rc), "%s: %s", path, msg);
  lufa_error_setint(L, idx, "sqlite_code", rc);
  lufa_error_setstr(L, idx, "path", path);
  return idx;
}

static int raise_misuse(lua_State *L, Db *d, const char *msg) {
  push_error(L, d->path, SQLITE_MISUSE, msg);
  return lua_error(L);
}

/* After a statement: an error may have made SQLite roll the whole transaction back, or SQL may have ended
** it (COMMIT, ROLLBACK). Either way no batch is open any more. Returns 1 when an open batch ended. */
static int batch_check(Db *d) {
  if (!d->batch || !sqlite3_get_autocommit(d->db)) return 0;
  d->batch = 0;
  return 1;
}

/* Pushes the error of the failed call that returned rc, with the connection's message. */
static int push_db_error(lua_State *L, Db *d, int rc) {
  const char *msg = d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc);
  if (d->db && batch_check(d)) {
    int idx = lufa_error_push(L, "sqlite", code_name(rc), "%s: %s (the open batch was rolled back with it)",
                              d->path, msg);
    lufa_error_setint(L, idx, "sqlite_code", rc);
    lufa_error_setstr(L, idx, "path", d->path);
    lua_pushboolean(L, 1);
    lua_setfield(L, idx, "batch_lost");
    return idx;
  }
  return push_error(L, d->path, rc, msg);
}

static int raise_db(lua_State *L, Db *d, int rc) {
  push_db_error(L, d, rc);
  return lua_error(L);
}

static void defer_error(Db *d, int rc, char *msg) {
  if (d->deferred_rc) {  /* the first failure is the one to report */
    free(msg);
    return;
  }
  d->deferred_rc = rc;
  d->deferred_msg = msg;
}

static int raise_deferred(lua_State *L, Db *d) {
  int rc = d->deferred_rc;
  lufa_error_push(L, "sqlite", code_name(rc), "%s: the batch commit failed and its writes were rolled back: %s",
                  d->path, d->deferred_msg ? d->deferred_msg : sqlite3_errstr(rc));
  lufa_error_setint(L, -1, "sqlite_code", rc);
  lufa_error_setstr(L, -1, "path", d->path);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "batch_lost");
  free(d->deferred_msg);
  d->deferred_msg = NULL;
  d->deferred_rc = 0;
  return lua_error(L);
}

static Db *check_db(lua_State *L) {
  return (Db *)luaL_checkudata(L, 1, DB_MT);
}

/* The connection d, open and not waiting inside a transaction; raises a failure kept from the hook. */
static Db *usable(lua_State *L, Db *d) {
  if (d->db == NULL) raise_misuse(L, d, "the database is closed");
  if (d->stalled)
    raise_misuse(L, d, "a transaction is open while its function waits for the event loop "
                       "(the function given to db:transaction must not wait); it will be rolled back");
  if (d->deferred_rc) raise_deferred(L, d);
  return d;
}

static Db *check_usable(lua_State *L) {
  return usable(L, check_db(L));
}

/* ---- the batch and its hook ---- */

/* Ends the open batch with COMMIT; on failure rolls it back and returns the code, the message in *msg
** (malloc'd, may be NULL). Runs no Lua: the hook calls it. */
static int batch_commit(Db *d, char **msg) {
  d->batch = 0;
  int rc = sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
  if (rc == SQLITE_OK) return rc;
  *msg = strdup(sqlite3_errmsg(d->db));
  if (!sqlite3_get_autocommit(d->db)) sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* A batch may span quiet steps (tasks ready, no request started: nothing acts on its writes yet), up to
** these bounds, so that other connections never wait long for the write lock. */
#define BATCH_MAX_STEPS 256
#define BATCH_MAX_SECONDS 0.02

static void db_hook(LoopPrepare *p, int quiet) {
  Db *d = (Db *)((char *)p - offsetof(Db, hook));
  if (d->depth > 0) {  /* the loop steps inside a db:transaction function: it waits */
    d->stalled = 1;
    return;
  }
  if (quiet && d->batch && ++d->batch_steps < BATCH_MAX_STEPS && loop_now() - d->batch_started < BATCH_MAX_SECONDS)
    return;
  loop_prepare_remove(d->loop, p);
  if (d->batch && d->db) {
    char *msg = NULL;
    int rc = batch_commit(d, &msg);
    if (rc != SQLITE_OK) defer_error(d, rc, msg);
  }
}

/* ---- statements ---- */

static int raise_one_statement(lua_State *L, Db *d) {
  return raise_misuse(L, d, "this call takes one SQL statement (db:exec runs several)");
}

/* Prepares the one statement in sql[0..len); raises on errors, on empty SQL and on several statements. */
static sqlite3_stmt *prepare_one(lua_State *L, Db *d, const char *sql, size_t len) {
  sqlite3_stmt *s = NULL;
  const char *tail = NULL, *end = sql + len;
  if (len >= INT_MAX) raise_misuse(L, d, "the SQL text is too long");
  int rc = sqlite3_prepare_v3(d->db, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &s, &tail);
  if (rc != SQLITE_OK) raise_db(L, d, rc);
  if (s == NULL) raise_misuse(L, d, "no SQL statement given");
  while (tail < end && (isspace((unsigned char)*tail) || *tail == ';')) tail++;
  if (tail < end) {  /* something follows: fine if it is only a comment */
    sqlite3_stmt *more = NULL;
    rc = sqlite3_prepare_v2(d->db, tail, (int)(end - tail), &more, NULL);
    sqlite3_finalize(more);
    if (rc != SQLITE_OK || more != NULL) {
      sqlite3_finalize(s);
      raise_one_statement(L, d);
    }
  }
  return s;
}

static unsigned sql_hash(const char *s, size_t n) {
  unsigned h = 2166136261u;  /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* A statement for sql from the cache, prepared and cached on a miss; *entry is its slot, or -1 when the
** statement is the caller's own (the cached one is in use further up the stack, or nothing could be
** evicted). Hand it back with give_back. */
static sqlite3_stmt *lease(lua_State *L, Db *d, const char *sql, size_t len, int *entry) {
  unsigned h = sql_hash(sql, len);
  int free_slot = -1, lru = -1, in_use = 0;
  for (int i = 0; i < CACHE_SIZE; i++) {
    CacheEntry *e = &d->cache[i];
    if (e->s == NULL) {
      if (free_slot < 0) free_slot = i;
      continue;
    }
    if (e->hash == h && e->len == len && memcmp(e->sql, sql, len) == 0) {
      if (e->busy) {
        in_use = 1;
        break;
      }
      e->busy = 1;
      e->used = ++d->tick;
      *entry = i;
      return e->s;
    }
    if (!e->busy && (lru < 0 || e->used < d->cache[lru].used)) lru = i;
  }
  sqlite3_stmt *s = prepare_one(L, d, sql, len);
  *entry = -1;
  int slot = free_slot >= 0 ? free_slot : lru;
  if (in_use || slot < 0) return s;
  char *copy = malloc(len ? len : 1);
  if (copy == NULL) return s;
  memcpy(copy, sql, len);
  CacheEntry *e = &d->cache[slot];
  if (e->s) {
    sqlite3_finalize(e->s);
    free(e->sql);
  }
  e->sql = copy;
  e->len = len;
  e->hash = h;
  e->s = s;
  e->used = ++d->tick;
  e->busy = 1;
  *entry = slot;
  return s;
}

static void give_back(Db *d, sqlite3_stmt *s, int entry) {
  if (entry < 0) {
    sqlite3_finalize(s);
    return;
  }
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  d->cache[entry].busy = 0;
}

static void stmt_link(Db *d, Stmt *st) {
  st->db = d;
  st->prev = NULL;
  st->next = d->stmts;
  if (d->stmts) d->stmts->prev = st;
  d->stmts = st;
}

static void stmt_unlink(Stmt *st) {
  Db *d = st->db;
  if (d == NULL) return;
  if (st->prev) st->prev->next = st->next;
  else d->stmts = st->next;
  if (st->next) st->next->prev = st->prev;
  st->prev = st->next = NULL;
  st->db = NULL;
}

/* ---- parameters ---- */

enum { BIND_SECRET = -1, BIND_TYPE = -2, BIND_USAGE = -3 };

/* Why binding failed; kept as text so the statement can be handed back before raising. */
typedef struct {
  int rc;             /* an SQLite code, or one of the BIND_ values */
  char param[80];     /* "2" or ":name" */
  char text[160];
} BindFail;

static int is_json_null(lua_State *L, int idx) {
  lua_getfield(L, LUA_REGISTRYINDEX, JSON_NULL_KEY);
  int is = lua_rawequal(L, idx, -1);
  lua_pop(L, 1);
  return is;
}

/* Binds the value at idx to parameter i. Calls no metamethods, so no Lua code runs while a statement is
** leased. Returns SQLITE_OK, an SQLite code, BIND_SECRET or BIND_TYPE. */
static int bind_value(lua_State *L, sqlite3_stmt *s, int i, int idx) {
  size_t n;
  const char *p;
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      return sqlite3_bind_null(s, i);
    case LUA_TBOOLEAN:
      return sqlite3_bind_int(s, i, lua_toboolean(L, idx));
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) return sqlite3_bind_int64(s, i, (sqlite3_int64)lua_tointeger(L, idx));
      return sqlite3_bind_double(s, i, (double)lua_tonumber(L, idx));
    case LUA_TSTRING:
      p = lua_tolstring(L, idx, &n);
      return sqlite3_bind_text64(s, i, p, (sqlite3_uint64)n, SQLITE_TRANSIENT, SQLITE_UTF8);
    case LUA_TUSERDATA:
      if (is_json_null(L, idx)) return sqlite3_bind_null(s, i);
      if (lufa_secret_bytes(L, idx, NULL) != NULL) return BIND_SECRET;
      if (luaL_testudata(L, idx, BLOB_MT)) {
        lua_getiuservalue(L, idx, 1);
        p = lua_tolstring(L, -1, &n);
        int rc = sqlite3_bind_blob64(s, i, p, (sqlite3_uint64)n, SQLITE_TRANSIENT);
        lua_pop(L, 1);
        return rc;
      }
      return BIND_TYPE;
    default:
      return BIND_TYPE;
  }
}

static int bind_failed(lua_State *L, BindFail *f, int rc, int idx) {
  f->rc = rc;
  if (rc == BIND_TYPE) snprintf(f->text, sizeof f->text, "cannot store a %s", luaL_typename(L, idx));
  else if (rc != BIND_SECRET) snprintf(f->text, sizeof f->text, "%s", sqlite3_errstr(rc));
  return rc;
}

static int has_param(sqlite3_stmt *s, const char *key) {
  char name[256];
  static const char prefixes[] = ":@$";
  for (int i = 0; i < 3; i++) {
    if ((size_t)snprintf(name, sizeof name, "%c%s", prefixes[i], key) >= sizeof name) return 0;
    if (sqlite3_bind_parameter_index(s, name) > 0) return 1;
  }
  return 0;
}

/* Binds the table at t by parameter name (:name, @name, $name; an absent key binds NULL). A key that
** names no parameter is an error: a misspelt key would otherwise store NULL without a word. */
static int bind_named(lua_State *L, sqlite3_stmt *s, int t, BindFail *f) {
  int count = sqlite3_bind_parameter_count(s);
  for (int i = 1; i <= count; i++) {
    const char *name = sqlite3_bind_parameter_name(s, i);
    if (name == NULL || name[0] == '?') {
      snprintf(f->param, sizeof f->param, "%s", name ? name : "?");
      snprintf(f->text, sizeof f->text, "a positional parameter cannot be bound from a table of names");
      return f->rc = BIND_USAGE;
    }
    snprintf(f->param, sizeof f->param, "%s", name);
    lua_pushstring(L, name + 1);
    lua_rawget(L, t);
    int rc = bind_value(L, s, i, -1);
    if (rc != SQLITE_OK) bind_failed(L, f, rc, -1);
    lua_pop(L, 1);
    if (rc != SQLITE_OK) return rc;
  }
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      snprintf(f->param, sizeof f->param, "(%s key)", luaL_typename(L, -1));
      snprintf(f->text, sizeof f->text, "named parameters need string keys");
      lua_pop(L, 1);
      return f->rc = BIND_USAGE;
    }
    const char *key = lua_tostring(L, -1);
    if (!has_param(s, key)) {
      snprintf(f->param, sizeof f->param, ":%s", key);
      snprintf(f->text, sizeof f->text, "the statement has no such parameter");
      lua_pop(L, 1);
      return f->rc = BIND_USAGE;
    }
  }
  return SQLITE_OK;
}

/* Binds the values at first..top: one plain table binds by name, anything else by position (as many
** values as the statement has parameters). Returns SQLITE_OK or the failure, described in f. */
static int bind_args(lua_State *L, sqlite3_stmt *s, int first, int top, BindFail *f) {
  int nargs = top - first + 1;
  if (nargs == 1 && lua_type(L, first) == LUA_TTABLE) return bind_named(L, s, first, f);
  int count = sqlite3_bind_parameter_count(s);
  if (nargs != count) {
    snprintf(f->text, sizeof f->text, "the statement takes %d parameter(s), %d given", count, nargs < 0 ? 0 : nargs);
    return f->rc = BIND_USAGE;
  }
  for (int i = 1; i <= count; i++) {
    int rc = bind_value(L, s, i, first + i - 1);
    if (rc != SQLITE_OK) {
      snprintf(f->param, sizeof f->param, "%d", i);
      return bind_failed(L, f, rc, first + i - 1);
    }
  }
  return SQLITE_OK;
}

static int raise_bind(lua_State *L, Db *d, const char *fname, BindFail *f) {
  if (f->rc == BIND_SECRET) {
    lufa_error_push(L, "sqlite", "secret", "%s: refusing to store a secret in the database (%s parameter %s)",
                    d->path, fname, f->param);
    lufa_error_setstr(L, -1, "path", d->path);
    return lua_error(L);
  }
  if (f->rc < 0 && f->param[0] == '\0') return luaL_error(L, "%s: %s", fname, f->text);
  if (f->rc < 0) return luaL_error(L, "%s: parameter %s: %s", fname, f->param, f->text);
  lufa_error_push(L, "sqlite", code_name(f->rc), "%s: %s parameter %s: %s", d->path, fname, f->param, f->text);
  lufa_error_setint(L, -1, "sqlite_code", f->rc);
  lufa_error_setstr(L, -1, "path", d->path);
  return lua_error(L);
}

/* ---- rows ---- */

/* Pushes the current row: column name -> integer, float or string; NULL columns stay absent. */
static void push_row(lua_State *L, sqlite3_stmt *s) {
  int n = sqlite3_column_count(s);
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    const char *name = sqlite3_column_name(s, i);
    const void *p;
    int len;
    if (name == NULL) continue;
    switch (sqlite3_column_type(s, i)) {
      case SQLITE_INTEGER:
        lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(s, i));
        break;
      case SQLITE_FLOAT:
        lua_pushnumber(L, (lua_Number)sqlite3_column_double(s, i));
        break;
      case SQLITE_TEXT:
        p = sqlite3_column_text(s, i);
        len = sqlite3_column_bytes(s, i);
        lua_pushlstring(L, p ? (const char *)p : "", p ? (size_t)len : 0);
        break;
      case SQLITE_BLOB:
        p = sqlite3_column_blob(s, i);
        len = sqlite3_column_bytes(s, i);
        lua_pushlstring(L, p ? (const char *)p : "", p ? (size_t)len : 0);
        break;
      default:
        continue;
    }
    lua_setfield(L, -2, name);
  }
}

/* Raises the failure rc of s after handing s back (the message is taken first: resetting changes it). */
static int fail_leased(lua_State *L, Db *d, sqlite3_stmt *s, int entry, int rc) {
  push_db_error(L, d, rc);
  give_back(d, s, entry);
  return lua_error(L);
}

/* Leases the statement for the SQL at index 2 and binds the arguments from index 3 on. */
static sqlite3_stmt *lease_bound(lua_State *L, Db *d, const char *fname, int *entry) {
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  sqlite3_stmt *s = lease(L, d, sql, len, entry);
  BindFail f;
  memset(&f, 0, sizeof f);
  if (bind_args(L, s, 3, lua_gettop(L), &f) != SQLITE_OK) {
    give_back(d, s, *entry);
    raise_bind(L, d, fname, &f);
  }
  return s;
}

/** db:exec(sql) → true: runs one or more statements without parameters. */
static int db_exec(lua_State *L) {
  Db *d = check_usable(L);
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  if (strlen(sql) != len) return raise_misuse(L, d, "the SQL text contains a NUL byte");
  int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) return raise_db(L, d, rc);
  batch_check(d);
  lua_pushboolean(L, 1);
  return 1;
}

/** db:run(sql, ...) → changes, last_insert_rowid. */
static int db_run(lua_State *L) {
  Db *d = check_usable(L);
  int entry, rc;
  sqlite3_stmt *s = lease_bound(L, d, "db:run", &entry);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {}
  if (rc != SQLITE_DONE) return fail_leased(L, d, s, entry, rc);
  give_back(d, s, entry);
  batch_check(d);
  lua_pushinteger(L, (lua_Integer)sqlite3_changes64(d->db));
  lua_pushinteger(L, (lua_Integer)sqlite3_last_insert_rowid(d->db));
  return 2;
}

/** db:first(sql, ...) → the first row, or nil. */
static int db_first(lua_State *L) {
  Db *d = check_usable(L);
  int entry;
  sqlite3_stmt *s = lease_bound(L, d, "db:first", &entry);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) push_row(L, s);
  else if (rc == SQLITE_DONE) lua_pushnil(L);
  else return fail_leased(L, d, s, entry, rc);
  give_back(d, s, entry);
  batch_check(d);
  return 1;
}

/** db:query(sql, ...) → an array of every row. */
static int db_query(lua_State *L) {
  Db *d = check_usable(L);
  int entry, rc;
  sqlite3_stmt *s = lease_bound(L, d, "db:query", &entry);
  lua_newtable(L);
  lua_Integer n = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    push_row(L, s);
    lua_rawseti(L, -2, ++n);
  }
  if (rc != SQLITE_DONE) return fail_leased(L, d, s, entry, rc);
  give_back(d, s, entry);
  batch_check(d);
  return 1;
}

static void rows_finish(Stmt *r) {
  if (r->s && r->db) give_back(r->db, r->s, r->entry);
  r->s = NULL;
  stmt_unlink(r);
}

static int rows_next(lua_State *L) {
  Stmt *r = (Stmt *)luaL_checkudata(L, 1, ROWS_MT);
  if (r->s == NULL) {
    if (r->orphaned) return luaL_error(L, "db:rows: the database was closed during the iteration");
    return 0;
  }
  Db *d = usable(L, r->db);
  int rc = sqlite3_step(r->s);
  if (rc == SQLITE_ROW) {
    push_row(L, r->s);
    return 1;
  }
  if (rc != SQLITE_DONE) push_db_error(L, d, rc);
  rows_finish(r);
  batch_check(d);
  if (rc != SQLITE_DONE) return lua_error(L);
  return 0;
}

static int rows_close(lua_State *L) {
  rows_finish((Stmt *)luaL_checkudata(L, 1, ROWS_MT));
  return 0;
}

/** db:rows(sql, ...) → iterator, for `for row in db:rows(sql) do`; the statement is handed back when the
** loop ends or is left (the fourth value is to-be-closed). */
static int db_rows(lua_State *L) {
  Db *d = check_usable(L);
  Stmt *r = (Stmt *)lua_newuserdatauv(L, sizeof *r, 1);  /* made first: nothing to undo if it fails */
  memset(r, 0, sizeof *r);
  r->entry = -1;
  luaL_setmetatable(L, ROWS_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);  /* keeps the connection alive while the iterator is */
  lua_rotate(L, 3, 1);          /* the iterator goes below the parameters */
  int ud = 3, entry;
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  sqlite3_stmt *s = lease(L, d, sql, len, &entry);
  BindFail f;
  memset(&f, 0, sizeof f);
  if (bind_args(L, s, ud + 1, lua_gettop(L), &f) != SQLITE_OK) {
    give_back(d, s, entry);
    return raise_bind(L, d, "db:rows", &f);
  }
  r->s = s;
  r->entry = entry;
  stmt_link(d, r);
  lua_pushcfunction(L, rows_next);
  lua_pushvalue(L, ud);
  lua_pushnil(L);
  lua_pushvalue(L, ud);
  return 4;
}

/* ---- prepared statements ---- */

static Stmt *check_stmt(lua_State *L) {
  Stmt *st = (Stmt *)luaL_checkudata(L, 1, STMT_MT);
  if (st->s == NULL)
    luaL_error(L, st->orphaned ? "statement: its database is closed" : "statement: already finalized");
  usable(L, st->db);
  return st;
}

/** db:prepare(sql) → stmt. */
static int db_prepare(lua_State *L) {
  Db *d = check_usable(L);
  size_t len;
  const char *sql = luaL_checklstring(L, 2, &len);
  Stmt *st = (Stmt *)lua_newuserdatauv(L, sizeof *st, 1);
  memset(st, 0, sizeof *st);
  st->entry = -1;
  luaL_setmetatable(L, STMT_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  st->s = prepare_one(L, d, sql, len);
  stmt_link(d, st);
  return 1;
}

/** stmt:bind(...) or stmt:bind{name = value} → stmt: replaces every binding; resets the statement. */
static int stmt_bind(lua_State *L) {
  Stmt *st = check_stmt(L);
  BindFail f;
  memset(&f, 0, sizeof f);
  sqlite3_reset(st->s);
  sqlite3_clear_bindings(st->s);
  if (bind_args(L, st->s, 2, lua_gettop(L), &f) != SQLITE_OK) {
    sqlite3_clear_bindings(st->s);
    return raise_bind(L, st->db, "stmt:bind", &f);
  }
  lua_settop(L, 1);
  return 1;
}

/** stmt:step() → the next row, or nil when done (the statement is then reset, ready to run again). */
static int stmt_step(lua_State *L) {
  Stmt *st = check_stmt(L);
  Db *d = st->db;
  int rc = sqlite3_step(st->s);
  if (rc == SQLITE_ROW) {
    push_row(L, st->s);
    return 1;
  }
  if (rc != SQLITE_DONE) push_db_error(L, d, rc);
  sqlite3_reset(st->s);
  batch_check(d);
  if (rc != SQLITE_DONE) return lua_error(L);
  lua_pushnil(L);
  return 1;
}

/** stmt:reset() → stmt: back to the start, bindings kept. */
static int stmt_reset(lua_State *L) {
  Stmt *st = check_stmt(L);
  sqlite3_reset(st->s);
  lua_settop(L, 1);
  return 1;
}

/** stmt:columns() → the result column names, in order. */
static int stmt_columns(lua_State *L) {
  Stmt *st = check_stmt(L);
  int n = sqlite3_column_count(st->s);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    const char *name = sqlite3_column_name(st->s, i);
    lua_pushstring(L, name ? name : "");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/** stmt:finalize(): releases the statement; later calls do nothing. */
static int stmt_finalize(lua_State *L) {
  Stmt *st = (Stmt *)luaL_checkudata(L, 1, STMT_MT);
  if (st->s) sqlite3_finalize(st->s);
  st->s = NULL;
  stmt_unlink(st);
  return 0;
}

static int stmt_tostring(lua_State *L) {
  Stmt *st = (Stmt *)luaL_checkudata(L, 1, STMT_MT);
  if (st->s) lua_pushfstring(L, "lufa.sqlite.stmt (%s)", sqlite3_sql(st->s));
  else lua_pushliteral(L, "lufa.sqlite.stmt (finalized)");
  return 1;
}

/* ---- transactions ---- */

/* Undoes the transaction level begun by db:transaction; SQLite may already have rolled everything back. */
static void rollback(Db *d, int outer) {
  if (sqlite3_get_autocommit(d->db)) return;
  if (outer) sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
  else sqlite3_exec(d->db, "ROLLBACK TO " SAVEPOINT "; RELEASE " SAVEPOINT, NULL, NULL, NULL);
}

/** db:transaction(fn, ...) → fn's results. BEGIN IMMEDIATE ... COMMIT, or a savepoint when a transaction
** (a batch, an enclosing db:transaction) is open. An error in fn rolls back and is raised again. */
static int db_transaction(lua_State *L) {
  Db *d = check_usable(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int outer = sqlite3_get_autocommit(d->db);
  int rc = sqlite3_exec(d->db, outer ? "BEGIN IMMEDIATE" : "SAVEPOINT " SAVEPOINT, NULL, NULL, NULL);
  if (rc != SQLITE_OK) return raise_db(L, d, rc);
  d->depth++;
  loop_prepare_add(d->loop, &d->hook);  /* a loop step from now until the end means fn waited */
  int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
  d->depth--;
  int stalled = d->stalled;
  if (d->depth == 0) d->stalled = 0;
  if (status == LUA_OK && !stalled) {
    rc = sqlite3_exec(d->db, outer ? "COMMIT" : "RELEASE " SAVEPOINT, NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
      batch_check(d);
      return lua_gettop(L) - 1;
    }
    push_db_error(L, d, rc);
  } else if (status == LUA_OK) {
    push_error(L, d->path, SQLITE_MISUSE,
               "the function given to db:transaction waited for the event loop (it must not wait); "
               "the transaction was rolled back");
  }
  rollback(d, outer);
  batch_check(d);
  return lua_error(L);  /* fn's own error value, unchanged */
}

/** db:batch() → true: opens a transaction that commits before the loop next waits or starts a request
** (or at db:flush, db:close). Inside an open transaction it does nothing. */
static int db_batch(lua_State *L) {
  Db *d = check_usable(L);
  if (sqlite3_db_readonly(d->db, "main") == 1) {  /* BEGIN IMMEDIATE would not say so */
    push_error(L, d->path, SQLITE_READONLY, "db:batch: the database is open read-only");
    return lua_error(L);
  }
  if (!d->batch && sqlite3_get_autocommit(d->db)) {
    int rc = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) return raise_db(L, d, rc);
    d->batch = 1;
    d->batch_steps = 0;
    d->batch_started = loop_now();
    loop_prepare_add(d->loop, &d->hook);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/** db:flush() → true: commits the open batch now. */
static int db_flush(lua_State *L) {
  Db *d = check_usable(L);
  if (d->batch) {
    if (d->depth > 0) return raise_misuse(L, d, "db:flush cannot commit the batch inside db:transaction");
    char *msg = NULL;
    int rc = batch_commit(d, &msg);
    loop_prepare_remove(d->loop, &d->hook);
    if (rc != SQLITE_OK) {
      lufa_error_push(L, "sqlite", code_name(rc), "%s: the batch commit failed and its writes were rolled back: %s",
                      d->path, msg ? msg : sqlite3_errstr(rc));
      free(msg);
      lufa_error_setint(L, -1, "sqlite_code", rc);
      lufa_error_setstr(L, -1, "path", d->path);
      return lua_error(L);
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

/** db:in_batch() → whether a batch is open. */
static int db_in_batch(lua_State *L) {
  Db *d = check_usable(L);
  lua_pushboolean(L, d->batch);
  return 1;
}

/* ---- the connection ---- */

/* Commits an open batch and closes; returns the commit's failure (message in *msg). Runs no Lua. */
static int close_db(Db *d, char **msg) {
  int rc = SQLITE_OK;
  char *ignored = NULL;
  if (msg == NULL) msg = &ignored;
  if (d->db == NULL) return rc;
  loop_prepare_remove(d->loop, &d->hook);
  if (d->batch) rc = batch_commit(d, msg);
  while (d->stmts) {
    Stmt *st = d->stmts;
    if (st->s && st->entry < 0) sqlite3_finalize(st->s);  /* leased ones go with the cache */
    st->s = NULL;
    st->orphaned = 1;
    stmt_unlink(st);
  }
  for (int i = 0; i < CACHE_SIZE; i++) {
    if (d->cache[i].s) sqlite3_finalize(d->cache[i].s);
    free(d->cache[i].sql);
    memset(&d->cache[i], 0, sizeof d->cache[i]);
  }
  sqlite3_stmt *stray;  /* statements lost to an error raised while they were leased */
  while ((stray = sqlite3_next_stmt(d->db, NULL)) != NULL) sqlite3_finalize(stray);
  sqlite3_close_v2(d->db);
  d->db = NULL;
  d->batch = 0;
  free(ignored);
  return rc;
}

/** db:close() → true: commits an open batch, then closes. Closing again does nothing. */
static int db_close(lua_State *L) {
  Db *d = check_db(L);
  if (d->db != NULL) {
    if (d->depth > 0) return raise_misuse(L, d, "db:close cannot close the database inside db:transaction");
    char *msg = NULL;
    int rc = close_db(d, &msg);
    if (rc != SQLITE_OK) defer_error(d, rc, msg);
  }
  if (d->deferred_rc) return raise_deferred(L, d);
  lua_pushboolean(L, 1);
  return 1;
}

static int db_gc(lua_State *L) {
  Db *d = check_db(L);
  char *msg = NULL;
  close_db(d, &msg);  /* nobody is left to tell about a failed commit */
  free(msg);
  free(d->deferred_msg);
  d->deferred_msg = NULL;
  free(d->path);
  d->path = NULL;
  return 0;
}

static int db_tostring(lua_State *L) {
  Db *d = check_db(L);
  lua_pushfstring(L, "lufa.sqlite.db (%s%s)", d->path ? d->path : "?", d->db ? "" : ", closed");
  return 1;
}

/** db:path() → the path given to sqlite.open. */
static int db_path(lua_State *L) {
  Db *d = check_db(L);
  lua_pushstring(L, d->path);
  return 1;
}

/** db:changes() → rows changed by the last INSERT, UPDATE or DELETE. */
static int db_changes(lua_State *L) {
  Db *d = check_usable(L);
  lua_pushinteger(L, (lua_Integer)sqlite3_changes64(d->db));
  return 1;
}

/** db:last_insert_rowid() → the rowid of the last inserted row. */
static int db_last_insert_rowid(lua_State *L) {
  Db *d = check_usable(L);
  lua_pushinteger(L, (lua_Integer)sqlite3_last_insert_rowid(d->db));
  return 1;
}

/** db:integrity_check() → "ok", or the problems PRAGMA integrity_check lists, one per line. */
static int db_integrity_check(lua_State *L) {
  Db *d = check_usable(L);
  int entry, rc;
  sqlite3_stmt *s = lease(L, d, "PRAGMA integrity_check", 22, &entry);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int first = 1;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *line = (const char *)sqlite3_column_text(s, 0);
    if (!first) luaL_addchar(&b, '\n');
    luaL_addstring(&b, line ? line : "");
    first = 0;
  }
  if (rc != SQLITE_DONE) return fail_leased(L, d, s, entry, rc);
  give_back(d, s, entry);
  luaL_pushresult(&b);
  return 1;
}

/** db:user_version([n]) → the schema version number kept in the file (set first when n is given). */
static int db_user_version(lua_State *L) {
  Db *d = check_usable(L);
  if (!lua_isnoneornil(L, 2)) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)luaL_checkinteger(L, 2));
    int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) return raise_db(L, d, rc);
  }
  int entry;
  sqlite3_stmt *s = lease(L, d, "PRAGMA user_version", 19, &entry);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) return fail_leased(L, d, s, entry, rc);
  lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(s, 0));
  give_back(d, s, entry);
  return 1;
}

/* ---- opening ---- */

typedef struct {
  int busy_timeout;
  int readonly, create, wal;
  const char *synchronous;
} OpenOpts;

static int opt_bool(lua_State *L, int t, const char *name, int dflt) {
  int type = lua_getfield(L, t, name);
  int v = dflt;
  if (type == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
  else if (type != LUA_TNIL) luaL_error(L, "sqlite.open: option '%s' must be a boolean", name);
  lua_pop(L, 1);
  return v;
}

static void read_opts(lua_State *L, OpenOpts *o) {
  o->busy_timeout = 5000;
  o->readonly = 0;
  o->create = 1;
  o->wal = 1;
  o->synchronous = "NORMAL";
  if (lua_isnoneornil(L, 2)) return;
  luaL_checktype(L, 2, LUA_TTABLE);
  static const char *const known[] = {"busy_timeout", "readonly", "create", "wal", "synchronous", NULL};
  host_check_options(L, 2, known, "sqlite.open");
  if (lua_getfield(L, 2, "busy_timeout") != LUA_TNIL) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > INT_MAX)
      luaL_error(L, "sqlite.open: option 'busy_timeout' must be a non-negative integer (milliseconds)");
    o->busy_timeout = (int)lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  o->readonly = opt_bool(L, 2, "readonly", 0);
  o->create = opt_bool(L, 2, "create", 1);
  o->wal = opt_bool(L, 2, "wal", 1);
  if (lua_getfield(L, 2, "synchronous") != LUA_TNIL) {
    static const char *const modes[] = {"OFF", "NORMAL", "FULL", "EXTRA", NULL};
    const char *v = lua_tostring(L, -1);
    int found = -1;
    for (int i = 0; v && modes[i]; i++)
      if (strcasecmp(v, modes[i]) == 0) found = i;
    if (lua_type(L, -1) != LUA_TSTRING || found < 0)
      luaL_error(L, "sqlite.open: option 'synchronous' must be \"OFF\", \"NORMAL\", \"FULL\" or \"EXTRA\"");
    o->synchronous = modes[found];
  }
  lua_pop(L, 1);
}

/* Runs sql during setup; returns its code (the message stays on the connection). */
static int setup_exec(sqlite3 *db, const char *sql) {
  return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* PRAGMA journal_mode=WAL answers with the mode in effect, which stays the old one when WAL is refused. */
static int enable_wal(lua_State *L, Db *d) {
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(d->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    const char *mode = (const char *)sqlite3_column_text(s, 0);
    rc = mode && strcasecmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
    if (rc != SQLITE_OK) {
      lufa_error_fail(L, "sqlite", "cantopen", "%s: cannot use write-ahead logging (journal mode stays %s)",
                      d->path, mode ? mode : "unknown");
      sqlite3_finalize(s);
      return -1;
    }
  }
  if (rc != SQLITE_OK) {
    lua_pushnil(L);
    push_error(L, d->path, rc, sqlite3_errmsg(d->db));
  }
  sqlite3_finalize(s);
  return rc == SQLITE_OK ? 0 : -1;
}

/** sqlite.open(path [, opts]) → db, or nil and a lufa.error. */
static int l_open(lua_State *L) {
  size_t plen;
  const char *path = luaL_checklstring(L, 1, &plen);
  OpenOpts o;
  if (strlen(path) != plen) return luaL_argerror(L, 1, "the path contains a NUL byte");
  read_opts(L, &o);
  lua_settop(L, 2);
  Db *d = (Db *)lua_newuserdatauv(L, sizeof *d, 0);
  memset(d, 0, sizeof *d);
  luaL_setmetatable(L, DB_MT);
  d->path = strdup(path);
  if (d->path == NULL) return luaL_error(L, "sqlite.open: out of memory");
  d->loop = loop_get(L);
  d->hook.fn = db_hook;
  int memory = plen == 0 || strcmp(path, ":memory:") == 0;
  if (!memory && !o.readonly && o.create) {
    /* Created here, not by SQLite, so a new store is private whatever the umask; the -wal and -shm files
    ** SQLite makes later copy the database file's mode. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      if (fchmod(fd, 0600) != 0) { /* the mode given to open already holds unless the umask is odd */ }
      close(fd);
    } else if (errno != EEXIST) {
      return lufa_error_fail(L, "sqlite", "cantopen", "%s: cannot create the database file: %s", path, strerror(errno));
    }
  }
  int flags = (o.readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | (o.create ? SQLITE_OPEN_CREATE : 0)) |
              SQLITE_OPEN_NOMUTEX;
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db, flags, NULL);
  if (rc != SQLITE_OK) {
    lua_pushnil(L);
    push_error(L, path, rc, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return 2;
  }
  d->db = db;
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, o.busy_timeout);
  char sync[40];
  snprintf(sync, sizeof sync, "PRAGMA synchronous=%s", o.synchronous);
  /* Reading the schema checks that the file is a database at all ("notadb"). */
  rc = setup_exec(db, "SELECT 1 FROM sqlite_schema LIMIT 1");
  if (rc == SQLITE_OK && !memory && o.wal && !o.readonly && enable_wal(L, d) != 0) {
    close_db(d, NULL);
    return 2;
  }
  if (rc == SQLITE_OK) rc = setup_exec(db, sync);
  if (rc == SQLITE_OK) rc = setup_exec(db, "PRAGMA foreign_keys=ON");
  if (rc != SQLITE_OK) {
    lua_pushnil(L);
    push_error(L, path, rc, sqlite3_errmsg(db));
    close_db(d, NULL);
    return 2;
  }
  lua_settop(L, 3);
  return 1;
}

/** sqlite.version() → the SQLite library version, e.g. "3.40.1". */
static int l_version(lua_State *L) {
  lua_pushstring(L, sqlite3_libversion());
  return 1;
}

/** sqlite.blob(s) → a value that binds s as a BLOB (plain strings bind as TEXT). */
static int l_blob(lua_State *L) {
  luaL_checktype(L, 1, LUA_TSTRING);
  lua_newuserdatauv(L, 0, 1);
  luaL_setmetatable(L, BLOB_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static int blob_tostring(lua_State *L) {
  lua_getiuservalue(L, 1, 1);
  lua_pushfstring(L, "lufa.sqlite.blob (%d bytes)", (int)luaL_len(L, -1));
  return 1;
}

static void new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, meta, 0);
  if (methods) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

int luaopen_lufa_sqlite(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"open", l_open},
    {"version", l_version},
    {"blob", l_blob},
    {NULL, NULL}
  };
  static const luaL_Reg db_methods[] = {
    {"exec", db_exec},
    {"run", db_run},
    {"first", db_first},
    {"query", db_query},
    {"rows", db_rows},
    {"prepare", db_prepare},
    {"transaction", db_transaction},
    {"batch", db_batch},
    {"flush", db_flush},
    {"in_batch", db_in_batch},
    {"changes", db_changes},
    {"last_insert_rowid", db_last_insert_rowid},
    {"path", db_path},
    {"close", db_close},
    {"integrity_check", db_integrity_check},
    {"user_version", db_user_version},
    {NULL, NULL}
  };
  static const luaL_Reg db_meta[] = {
    {"__gc", db_gc},
    {"__close", db_close},
    {"__tostring", db_tostring},
    {NULL, NULL}
  };
  static const luaL_Reg stmt_methods[] = {
    {"bind", stmt_bind},
    {"step", stmt_step},
    {"reset", stmt_reset},
    {"columns", stmt_columns},
    {"finalize", stmt_finalize},
    {NULL, NULL}
  };
  static const luaL_Reg stmt_meta[] = {
    {"__gc", stmt_finalize},
    {"__close", stmt_finalize},
    {"__tostring", stmt_tostring},
    {NULL, NULL}
  };
  static const luaL_Reg rows_meta[] = {
    {"__gc", rows_close},
    {"__close", rows_close},
    {NULL, NULL}
  };
  static const luaL_Reg blob_meta[] = {
    {"__tostring", blob_tostring},
    {NULL, NULL}
  };
  new_class(L, DB_MT, db_meta, db_methods);
  new_class(L, STMT_MT, stmt_meta, stmt_methods);
  new_class(L, ROWS_MT, rows_meta, NULL);
  new_class(L, BLOB_MT, blob_meta, NULL);
  luaL_newlib(L, funcs);
  return 1;
}
