/*
** lufa.fs: listing, stat, folders, and whole-file reads and writes, by system calls alone.
**
** Nothing here runs a shell or another program, so no byte of a path is ever interpreted. Created files
** and folders get exactly the mode asked for (fchmod after creation: the umask does not apply), private by
** default. An atomic write goes to a new temporary file in the target's folder (O_EXCL), is synced,
** renamed over the target and the folder synced, so a reader sees the old content or the new, never part.
** Misuse (a wrong argument type, a NUL byte in a path) raises; a failing call returns nil and a lufa.error
** of kind "fs" with the errno name as code, a message naming the path, and the fields `path` and `errno`.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <lauxlib.h>

#include "error.h"
#include "fs.h"
#include "options.h"
#include "secret.h"

#define FS_NAMES_MT "lufa.fs.names"
#define FS_FD_MT "lufa.fs.fd"
#define FS_CHUNK 65536
#define FS_TMP_BASE_MAX 160  /* bytes of the target's name kept in a temporary name (NAME_MAX is 255) */

/* ------------------------------------------------------------------------------------------------------ */
/* Errors and arguments                                                                                   */
/* ------------------------------------------------------------------------------------------------------ */

/* nil, err for a failed call on `path`: "cannot <what> '<path>': <strerror>". */
static int fs_fail(lua_State *L, int e, const char *what, const char *path) {
  lufa_error_push_errno_name(L, e);
  const char *code = lua_tostring(L, -1);
  lufa_error_fail(L, "fs", code, "cannot %s '%s': %s", what, path, strerror(e));
  lua_remove(L, -3);  /* the code string */
  lufa_error_setstr(L, -1, "path", path);
  lufa_error_setint(L, -1, "errno", e);
  return 2;
}

static const char *path_arg(lua_State *L, int arg) {
  size_t len;
  const char *p = luaL_checklstring(L, arg, &len);
  if (strlen(p) != len) luaL_argerror(L, arg, "path contains a NUL byte");
  if (len == 0) luaL_argerror(L, arg, "path is empty");
  return p;
}

/* A mode: an integer, or octal digits in a string ("750"), since Lua has no octal literals (0750 is 750). */
static mode_t mode_at(lua_State *L, int idx, int arg, mode_t def) {
  lua_Integer mode = def;
  if (lua_type(L, idx) == LUA_TSTRING) {
    const char *p = lua_tostring(L, idx);
    char *end;
    mode = (lua_Integer)strtol(p, &end, 8);
    if (*p == '\0' || *end != '\0') mode = -1;
  } else if (!lua_isnoneornil(L, idx)) {
    int isnum;
    mode = lua_tointegerx(L, idx, &isnum);
    if (!isnum) mode = -1;
  }
  luaL_argcheck(L, mode >= 0 && mode <= 07777, arg,
                "mode must be permission bits: an integer, or octal digits in a string such as \"750\"");
  return (mode_t)mode;
}

/* A file descriptor owned by the Lua stack, closed by __gc if a Lua error unwinds past it. */
typedef struct {
  int fd;
} FdGuard;

static int fd_gc(lua_State *L) {
  FdGuard *g = (FdGuard *)luaL_checkudata(L, 1, FS_FD_MT);
  if (g->fd >= 0) close(g->fd);
  g->fd = -1;
  return 0;
}

static FdGuard *push_guard(lua_State *L) {
  FdGuard *g = (FdGuard *)lua_newuserdatauv(L, sizeof *g, 0);
  g->fd = -1;
  luaL_setmetatable(L, FS_FD_MT);
  return g;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Listing and stat                                                                                       */
/* ------------------------------------------------------------------------------------------------------ */

/* Entry names collected before sorting; a userdata so a memory error cannot leak them. */
typedef struct {
  char **v;
  size_t n, cap;
} Names;

static int names_gc(lua_State *L) {
  Names *ns = (Names *)luaL_checkudata(L, 1, FS_NAMES_MT);
  for (size_t i = 0; i < ns->n; i++) free(ns->v[i]);
  free(ns->v);
  ns->v = NULL;
  ns->n = ns->cap = 0;
  return 0;
}

static int names_add(Names *ns, const char *name) {
  if (ns->n == ns->cap) {
    size_t cap = ns->cap ? ns->cap * 2 : 32;
    char **v = (char **)realloc(ns->v, cap * sizeof *v);
    if (v == NULL) return -1;
    ns->v = v;
    ns->cap = cap;
  }
  char *copy = strdup(name);
  if (copy == NULL) return -1;
  ns->v[ns->n++] = copy;
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/***
 * The names in a folder, sorted by bytes; hidden entries included, "." and ".." not.
 * @function list
 * @tparam string dir
 * @treturn table|nil array of names, or nil, err
 */
static int fs_list(lua_State *L) {
  const char *path = path_arg(L, 1);
  Names *ns = (Names *)lua_newuserdatauv(L, sizeof *ns, 0);
  memset(ns, 0, sizeof *ns);
  luaL_setmetatable(L, FS_NAMES_MT);
  DIR *d = opendir(path);
  if (d == NULL) return fs_fail(L, errno, "list", path);
  struct dirent *de;
  int oom = 0;
  for (;;) {
    errno = 0;
    de = readdir(d);
    if (de == NULL) break;
    const char *n = de->d_name;
    if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'))) continue;
    if (names_add(ns, n) != 0) {
      oom = 1;
      break;
    }
  }
  int e = errno;
  closedir(d);
  if (oom) return luaL_error(L, "not enough memory to list '%s'", path);
  if (e) return fs_fail(L, e, "list", path);
  if (ns->n > 1) qsort(ns->v, ns->n, sizeof *ns->v, cmp_names);  /* an empty folder has no array at all */
  lua_createtable(L, ns->n > INT_MAX ? INT_MAX : (int)ns->n, 0);
  for (size_t i = 0; i < ns->n; i++) {
    lua_pushstring(L, ns->v[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static const char *type_name(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "directory";
  if (S_ISLNK(m)) return "link";
  return "other";
}

static int push_stat(lua_State *L, int follow) {
  const char *path = path_arg(L, 1);
  struct stat st;
  if ((follow ? stat(path, &st) : lstat(path, &st)) != 0) return fs_fail(L, errno, "stat", path);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, type_name(st.st_mode));
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + (lua_Number)st.st_mtim.tv_nsec / 1e9);
  lua_setfield(L, -2, "mtime");
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  lua_setfield(L, -2, "mode");
  return 1;
}

/***
 * What a path names, following symbolic links.
 * @function stat
 * @tparam string path
 * @treturn table|nil `{type = "file"|"directory"|"link"|"other", size, mtime (seconds, float), mode}`, or
 *   nil, err
 */
static int fs_stat(lua_State *L) {
  return push_stat(L, 1);
}

/***
 * Like stat, but a symbolic link is described itself (type "link").
 * @function lstat
 */
static int fs_lstat(lua_State *L) {
  return push_stat(L, 0);
}

/* The mode of what path names (links followed), or 0 when there is nothing there: predicates take any
** string, and a name that cannot exist (empty, with a NUL byte) is simply not a folder or a file. */
static mode_t mode_of(lua_State *L) {
  size_t len;
  const char *p = luaL_checklstring(L, 1, &len);
  struct stat st;
  if (len == 0 || strlen(p) != len || stat(p, &st) != 0) return 0;
  return st.st_mode;
}

/***
 * Whether path names a folder (links followed).
 * @function is_dir
 * @tparam string path
 * @treturn boolean
 */
static int fs_is_dir(lua_State *L) {
  lua_pushboolean(L, S_ISDIR(mode_of(L)));
  return 1;
}

/***
 * Whether path names a regular file (links followed).
 * @function is_file
 * @tparam string path
 * @treturn boolean
 */
static int fs_is_file(lua_State *L) {
  lua_pushboolean(L, S_ISREG(mode_of(L)));
  return 1;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Folders and names                                                                                      */
/* ------------------------------------------------------------------------------------------------------ */

/* Creates one folder with exactly `mode`; an existing folder is fine (and keeps its mode). 0 or an errno. */
static int mkdir_one(const char *p, mode_t mode) {
  if (mkdir(p, mode) != 0) {
    int e = errno;
    struct stat st;
    if (e == EEXIST && stat(p, &st) == 0) return S_ISDIR(st.st_mode) ? 0 : EEXIST;
    return e;
  }
  /* through a descriptor of the folder itself: a name swapped for a link meanwhile is not followed */
  int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  int rc = fchmod(fd, mode) == 0 ? 0 : errno;
  close(fd);
  return rc;
}

/***
 * Creates a folder, by default with its missing parents; an existing folder is not an error.
 * Folders created get exactly `mode` (the umask does not apply); existing ones are left as they are.
 * @function mkdir
 * @tparam string path
 * @tparam[opt=0700] integer|string mode an integer, or octal digits in a string ("750")
 * @tparam[opt=true] boolean parents
 * @treturn true|nil true, or nil, err
 */
static int fs_mkdir(lua_State *L) {
  const char *path = path_arg(L, 1);
  mode_t mode = mode_at(L, 2, 2, 0700);
  int parents = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
  int e = 0;
  if (parents) {
    size_t len = strlen(path);
    char *buf = (char *)lua_newuserdatauv(L, len + 1, 0);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len && e == 0; i++) {
      if (buf[i] != '/' && buf[i] != '\0') continue;
      if (buf[i - 1] == '/') continue;  /* "a//b" and a trailing "/" */
      char saved = buf[i];
      buf[i] = '\0';
      e = mkdir_one(buf, mode);
      buf[i] = saved;
    }
  } else {
    e = mkdir_one(path, mode);
  }
  if (e) return fs_fail(L, e, "create the folder", path);
  lua_pushboolean(L, 1);
  return 1;
}

/***
 * Removes a file or an empty folder.
 * @function remove
 * @tparam string path
 * @treturn true|nil true, or nil, err
 */
static int fs_remove(lua_State *L) {
  const char *path = path_arg(L, 1);
  if (remove(path) != 0) return fs_fail(L, errno, "remove", path);
  lua_pushboolean(L, 1);
  return 1;
}

/***
 * Renames (moves) a file or folder, replacing a file at `to` (rename(2)).
 * @function rename
 * @tparam string from
 * @tparam string to
 * @treturn true|nil true, or nil, err
 */
static int fs_rename(lua_State *L) {
  const char *from = path_arg(L, 1);
  const char *to = path_arg(L, 2);
  if (rename(from, to) != 0) {
    int e = errno;
    lua_pushfstring(L, "rename '%s' to", from);
    fs_fail(L, e, lua_tostring(L, -1), to);
    lufa_error_setstr(L, -1, "path", from);
    lufa_error_setstr(L, -1, "to", to);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/***
 * The absolute path with every symbolic link, "." and ".." resolved; the path must exist.
 * @function realpath
 * @tparam string path
 * @treturn string|nil
 */
static int fs_realpath(lua_State *L) {
  const char *path = path_arg(L, 1);
  char *r = realpath(path, NULL);
  if (r == NULL) return fs_fail(L, errno, "resolve", path);
  lua_pushstring(L, r);
  free(r);
  return 1;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Whole files                                                                                            */
/* ------------------------------------------------------------------------------------------------------ */

/***
 * The whole content of a file.
 * @function read_file
 * @tparam string path
 * @treturn string|nil the bytes, or nil, err
 */
static int fs_read_file(lua_State *L) {
  const char *path = path_arg(L, 1);
  FdGuard *g = push_guard(L);
  g->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (g->fd < 0) return fs_fail(L, errno, "read", path);
  struct stat st;
  if (fstat(g->fd, &st) != 0) return fs_fail(L, errno, "read", path);
  if (S_ISDIR(st.st_mode)) return fs_fail(L, EISDIR, "read", path);
  luaL_Buffer b;
  /* regular files say their size; /proc and pipes say 0 and are read to their end */
  size_t want = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : FS_CHUNK;
  luaL_buffinitsize(L, &b, want);
  for (;;) {
    char *p = luaL_prepbuffsize(&b, want);
    ssize_t n = read(g->fd, p, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(g->fd);
      g->fd = -1;
      return fs_fail(L, e, "read", path);
    }
    if (n == 0) break;
    luaL_addsize(&b, (size_t)n);
    want = FS_CHUNK;
  }
  close(g->fd);
  g->fd = -1;
  luaL_pushresult(&b);
  return 1;
}

/* Pushes "<dir>/.<name>.tmp.<pid>.<n>" for the target path; *dir_len gets the length of its folder part. */
static void push_temp_name(lua_State *L, const char *path, unsigned n, size_t *dir_len) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t base_len = strlen(base);
  if (base_len > FS_TMP_BASE_MAX) base_len = FS_TMP_BASE_MAX;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (slash) {
    luaL_addlstring(&b, path, (size_t)(slash - path) + 1);
    *dir_len = slash == path ? 1 : (size_t)(slash - path);
  } else {
    *dir_len = 0;
  }
  luaL_addchar(&b, '.');
  luaL_addlstring(&b, base, base_len);
  lua_pushfstring(L, ".tmp.%d.%d", (int)getpid(), (int)n);
  luaL_addvalue(&b);
  luaL_pushresult(&b);
}

/* Writes data to a fresh temporary file next to path and renames it over path. 0 or an errno; *what
** names the step that failed. */
static int write_atomic(lua_State *L, const char *path, const char *data, size_t len, mode_t mode,
                        const char **what) {
  static unsigned counter;
  const char *slash = strrchr(path, '/');
  if ((slash ? slash[1] : path[0]) == '\0') {
    *what = "write";
    return EISDIR;
  }
  const char *tmp = NULL;
  size_t dir_len = 0;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    if (tmp) lua_pop(L, 1);
    push_temp_name(L, path, __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED), &dir_len);
    tmp = lua_tostring(L, -1);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 && errno != EEXIST) break;
  }
  *what = "write";
  if (fd < 0) return errno;
  int e = 0;
  if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) e = errno;
  if (close(fd) != 0 && e == 0) e = errno;
  if (e == 0 && rename(tmp, path) != 0) {
    e = errno;
    *what = "replace";
  }
  if (e) {
    unlink(tmp);
    return e;
  }
  /* the rename itself is durable only once the folder is synced */
  lua_pushlstring(L, dir_len ? path : ".", dir_len ? dir_len : 1);
  int dfd = open(lua_tostring(L, -1), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    if (fsync(dfd) != 0 && errno != EINVAL) e = errno;
    close(dfd);
  }
  if (e) *what = "sync the folder of";
  return e;
}

static int write_direct(const char *path, const char *data, size_t len, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return errno;
  int e = 0;
  if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0) e = errno;
  if (close(fd) != 0 && e == 0) e = errno;
  return e;
}

/***
 * Writes a whole file (a string or a lufa.secret) with exactly `mode`.
 * Atomic by default: a temporary file in the same folder (created with O_EXCL), fsync, rename over the
 * target, fsync of the folder; on failure the temporary file is removed and the old content is intact.
 * @function write_file
 * @tparam string path
 * @tparam string|secret data
 * @tparam[opt] table opts `mode` (default 0600; an integer, or octal digits in a string), `atomic`
 *   (default true)
 * @treturn true|nil true, or nil, err
 */
static int fs_write_file(lua_State *L) {
  const char *path = path_arg(L, 1);
  size_t len;
  const char *data = lufa_check_bytes(L, 2, &len, NULL);
  mode_t mode = 0600;
  int atomic = 1;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    static const char *const known[] = {"mode", "atomic", NULL};
    host_check_options(L, 3, known, "fs.write_file");
    lua_getfield(L, 3, "mode");
    mode = mode_at(L, -1, 3, 0600);
    if (lua_getfield(L, 3, "atomic") != LUA_TNIL) atomic = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  const char *what = "write";
  int e = atomic ? write_atomic(L, path, data, len, mode, &what) : write_direct(path, data, len, mode);
  if (e) return fs_fail(L, e, what, path);
  lua_pushboolean(L, 1);
  return 1;
}

int luaopen_lufa_fs(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"list", fs_list},
    {"stat", fs_stat},
    {"lstat", fs_lstat},
    {"is_dir", fs_is_dir},
    {"is_file", fs_is_file},
    {"mkdir", fs_mkdir},
    {"remove", fs_remove},
    {"rename", fs_rename},
    {"realpath", fs_realpath},
    {"read_file", fs_read_file},
    {"write_file", fs_write_file},
    {NULL, NULL}
  };
  if (luaL_newmetatable(L, FS_NAMES_MT)) {
    lua_pushcfunction(L, names_gc);
    lua_setfield(L, -2, "__gc");
  }
  if (luaL_newmetatable(L, FS_FD_MT)) {
    lua_pushcfunction(L, fd_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 2);
  luaL_newlib(L, funcs);
  return 1;
}
