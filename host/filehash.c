/*
** crypto.file_hasher("md5" | "sha256"): hashes regions of files, in the order they are fed, on a worker
** thread. Lua feeds regions as they become ready (e.g. ranges of a download landing in file order) and
** finally waits for the digest; the wait yields the task like any other, woken through an eventfd.
** The worker touches no Lua state: it only reads files, updates the digest and writes the eventfd.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <lauxlib.h>
#include <openssl/evp.h>

#include "error.h"
#include "filehash.h"
#include "loop.h"

#define HASHER_MT "lufa.crypto.file_hasher"
#define PIECE (1 << 20)

typedef struct Region {
  char *path;
  off_t offset, length;
  struct Region *next;
} Region;

typedef struct {
  LoopWait wait;              /* the task waiting in :finish() */
  LoopWatch watch;            /* the eventfd the worker writes when it is done */
  Loop *loop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  int started, sync_ready;
  Region *head, *tail;        /* regions fed and not yet hashed (guarded by mu) */
  int finishing, aborting, done;
  const EVP_MD *md;
  EVP_MD_CTX *ctx;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len;
  char err[512];              /* set by the worker on failure */
  int closed;
} Hasher;

static void region_free(Region *r) {
  while (r) {
    Region *next = r->next;
    free(r->path);
    free(r);
    r = next;
  }
}

/* Hashes one region; returns 0, or -1 with h->err set. Runs on the worker. */
static int hash_region(Hasher *h, Region *r, unsigned char *buf) {
  int fd = open(r->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(h->err, sizeof h->err, "cannot read '%s': %s", r->path, strerror(errno));
    return -1;
  }
  off_t pos = r->offset, end = r->offset + r->length;
  while (pos < end) {
    size_t want = (size_t)(end - pos < PIECE ? end - pos : PIECE);
    ssize_t got = pread(fd, buf, want, pos);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      snprintf(h->err, sizeof h->err, "cannot read '%s' at %lld: %s", r->path, (long long)pos,
               got == 0 ? "the file is shorter than the region fed" : strerror(errno));
      close(fd);
      return -1;
    }
    EVP_DigestUpdate(h->ctx, buf, (size_t)got);
    pos += got;
    pthread_mutex_lock(&h->mu);
    int abort_now = h->aborting;
    pthread_mutex_unlock(&h->mu);
    if (abort_now) break;
  }
  close(fd);
  return 0;
}

static void *worker(void *arg) {
  Hasher *h = arg;
  unsigned char *buf = malloc(PIECE);
  int failed = buf == NULL;
  if (failed) snprintf(h->err, sizeof h->err, "not enough memory to hash");
  for (;;) {
    pthread_mutex_lock(&h->mu);
    while (!h->head && !h->finishing && !h->aborting) pthread_cond_wait(&h->cv, &h->mu);
    Region *r = h->head;
    if (r && !failed && !h->aborting) {
      h->head = r->next;
      if (!h->head) h->tail = NULL;
      pthread_mutex_unlock(&h->mu);
      r->next = NULL;
      failed = hash_region(h, r, buf) != 0;
      region_free(r);
      continue;
    }
    pthread_mutex_unlock(&h->mu);
    break;  /* nothing left and finishing, aborting, or failed */
  }
  free(buf);
  if (!failed && !h->aborting) EVP_DigestFinal_ex(h->ctx, h->digest, &h->digest_len);
  pthread_mutex_lock(&h->mu);
  h->done = 1;
  pthread_mutex_unlock(&h->mu);
  uint64_t one = 1;
  if (write(h->watch.fd, &one, sizeof one) < 0) { /* the loop is gone: nobody waits */ }
  return NULL;
}

static Hasher *check_hasher(lua_State *L) {
  Hasher *h = luaL_checkudata(L, 1, HASHER_MT);
  if (h->closed) luaL_error(L, "attempt to use a closed file hasher");
  return h;
}

/* Stops the worker (if any) and frees everything; idempotent, shared by __gc, __close and :close(). */
static void hasher_close(Hasher *h) {
  if (h->closed) return;
  h->closed = 1;
  if (h->started) {
    pthread_mutex_lock(&h->mu);
    h->aborting = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
  }
  if (h->watch.active) loop_unwatch(h->loop, &h->watch);
  if (h->watch.fd >= 0) close(h->watch.fd);
  if (h->sync_ready) {
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
  }
  region_free(h->head);
  h->head = h->tail = NULL;
  if (h->ctx) EVP_MD_CTX_free(h->ctx);
  h->ctx = NULL;
}

static int hasher_gc(lua_State *L) {
  hasher_close(luaL_checkudata(L, 1, HASHER_MT));
  return 0;
}

static int hasher_close_l(lua_State *L) {
  hasher_close(luaL_checkudata(L, 1, HASHER_MT));
  return 0;
}

/** hasher:feed(path, offset, length): queues a region; regions are hashed in the order fed. */
static int hasher_feed(lua_State *L) {
  Hasher *h = check_hasher(L);
  const char *path = luaL_checkstring(L, 2);
  lua_Integer offset = luaL_checkinteger(L, 3), length = luaL_checkinteger(L, 4);
  luaL_argcheck(L, offset >= 0, 3, "offset must not be negative");
  luaL_argcheck(L, length >= 0, 4, "length must not be negative");
  if (h->finishing) return luaL_error(L, "cannot feed a file hasher after finish");
  Region *r = calloc(1, sizeof *r);
  if (r == NULL || (r->path = strdup(path)) == NULL) {
    free(r);
    return luaL_error(L, "not enough memory");
  }
  r->offset = (off_t)offset;
  r->length = (off_t)length;
  pthread_mutex_lock(&h->mu);
  if (h->tail) h->tail->next = r;
  else h->head = r;
  h->tail = r;
  pthread_cond_signal(&h->cv);
  pthread_mutex_unlock(&h->mu);
  if (!h->started) {
    int rc = pthread_create(&h->thread, NULL, worker, h);
    if (rc != 0) return luaL_error(L, "cannot start a hashing thread: %s", strerror(rc));
    h->started = 1;
  }
  return 0;
}

static void hasher_ready(LoopWatch *w) {
  Hasher *h = (Hasher *)((char *)w - offsetof(Hasher, watch));
  uint64_t n;
  if (read(w->fd, &n, sizeof n) < 0) { /* already drained */ }
  loop_unwatch(h->loop, w);
  loop_wake(h->loop, &h->wait);
}

static int hasher_results(lua_State *L, LoopWait *w) {
  Hasher *h = (Hasher *)w;
  if (h->err[0]) return lufa_error_fail(L, "crypto", "io", "%s", h->err);
  lua_pushlstring(L, (const char *)h->digest, h->digest_len);
  return 1;
}

static void hasher_cancel(LoopWait *w) {
  Hasher *h = (Hasher *)w;
  if (h->watch.active) loop_unwatch(h->loop, &h->watch);
}

/** hasher:finish() → the raw digest of everything fed, or nil, err; waits without blocking other tasks. */
static int hasher_finish(lua_State *L) {
  Hasher *h = check_hasher(L);
  lua_settop(L, 1);
  if (h->finishing) return luaL_error(L, "file hasher already finished");
  if (!h->started) {  /* nothing fed: the digest of no bytes */
    EVP_DigestFinal_ex(h->ctx, h->digest, &h->digest_len);
    h->finishing = h->done = 1;
    lua_pushlstring(L, (const char *)h->digest, h->digest_len);
    return 1;
  }
  loop_wait_init(L, &h->wait);
  h->wait.results = hasher_results;
  h->wait.cancel = hasher_cancel;
  pthread_mutex_lock(&h->mu);
  h->finishing = 1;
  pthread_cond_signal(&h->cv);
  pthread_mutex_unlock(&h->mu);
  if (loop_watch(h->loop, &h->watch) != 0) return luaL_error(L, "cannot watch the hashing thread: %s", strerror(errno));
  return loop_wait(L, &h->wait);
}

/** crypto.file_hasher([algorithm]) → a hasher ("md5", the default, or "sha256"). */
static int file_hasher_new(lua_State *L) {
  static const char *const names[] = {"md5", "sha256", NULL};
  int alg = luaL_checkoption(L, 1, "md5", names);
  Loop *loop = loop_get(L);
  Hasher *h = lua_newuserdatauv(L, sizeof *h, 0);  /* closed until everything below exists */
  memset(h, 0, sizeof *h);
  h->closed = 1;
  h->watch.fd = -1;
  luaL_setmetatable(L, HASHER_MT);
  h->loop = loop;
  h->md = alg == 0 ? EVP_md5() : EVP_sha256();
  h->ctx = EVP_MD_CTX_new();
  h->watch.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  h->watch.ready = hasher_ready;
  h->closed = 0;
  if (h->ctx == NULL || h->watch.fd < 0 || EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1)
    return luaL_error(L, "cannot create a file hasher: %s", strerror(errno));
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  h->sync_ready = 1;
  return 1;
}

void lufa_filehash_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"feed", hasher_feed},
    {"finish", hasher_finish},
    {"close", hasher_close_l},
    {NULL, NULL}
  };
  if (luaL_newmetatable(L, HASHER_MT)) {
    lua_pushcfunction(L, hasher_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, hasher_gc);
    lua_setfield(L, -2, "__close");
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, file_hasher_new);
  lua_setfield(L, -2, "file_hasher");
}
