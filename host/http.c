/*
** lufa.core.http: one request = one curl easy handle on the loop's multi handle.
** Bodies stream to and from files in bounded memory; secrets in headers and bodies are read only here.
** curl callbacks only copy bytes into C buffers or files (never Lua), see style anchors idiom 7.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <openssl/crypto.h>

#include "error.h"
#include "filecommit.h"
#include "filewriter.h"
#include "http.h"
#include "http_headers.h"
#include "log.h"
#include "loop.h"
#include "secret.h"
#include "task.h"

#define REQUEST_MT "lufa.http.request"
#define DEFAULT_MAX_BODY ((size_t)256 << 20)
#define DEFAULT_CONNECT_TIMEOUT_MS 30000L
/* Body bytes one transfer may take in one budgeted loop step (lufa_poll_budget). On a fast link curl would
** otherwise read a whole response in one call (50 MB: seconds); past this (or once the budget is spent) it
** is paused until the next step, so a step stays short and a frame loop's pump never stalls. */
#define STEP_QUOTA ((size_t)256 << 10)
/* Without a budget (lufa_run, lufa_poll) a step may take more: fewer pauses, each of which costs curl a copy. */
#define STEP_QUOTA_UNBUDGETED ((size_t)1 << 20)
/* body_parts: the size of each string; a task makes one per resume, so one per loop step */
#define PART_SIZE ((size_t)32 << 10)
/* Bodies at least this large have their pages faulted in, and given back, by a worker thread. */
#define HUGE_BODY ((size_t)8 << 20)

typedef struct {
  char *data;
  size_t len, cap;
} Buf;

typedef struct {
  LoopWait wait;
  LoopTransfer transfer;
  Loop *loop;
  CURL *easy;
  struct curl_slist *headers;
  int attached;
  CURLcode result;
  char errbuf[CURL_ERROR_SIZE];
  /* request body streamed from a file */
  FILE *in;
  curl_off_t in_left;
  /* response */
  Buf head;              /* header lines of the latest response (a redirect or 100 starts a new one) */
  Buf body;
  size_t max_body;
  int too_large;
  pthread_t populator;   /* faults a large body's pages in ahead of the transfer, while `populating` */
  int populating;
  int parts;             /* body_parts: the body becomes a list of strings, made across resumes */
  size_t parts_done;     /* body bytes already made into strings */
  /* output_file */
  char *out_path;        /* where the body must end up */
  char *tmp_path;        /* the temporary file renamed onto out_path on success */
  char *ca_file;         /* for the message when it cannot be used */
  int out_fd;
  curl_off_t out_pos;
  int out_decided, out_to_file;
  int out_errno;
  curl_off_t out_bytes;
  FileWriter writer;     /* the body's writes to out_fd, on a worker */
  FileCommit commit;     /* the finished file's fsync and rename, on a worker while `committing` */
  int committing;
  /* the step quota */
  unsigned long step;
  size_t step_bytes;
  LoopPrepare resume;    /* unpauses the transfer at the next step */
} Request;

/* ---- progress meters ---- */

/* A meter holds a transfer's byte counters. curl's progress callback only stores them; Lua reads the meter
** from a task of its own (lufa.http's `progress` option), so no Lua runs inside curl. */
#define METER_MT "lufa.http.meter"

typedef struct {
  curl_off_t up_now, up_total, down_now, down_total;
} Meter;

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  Meter *m = ud;
  m->down_total = dltotal;
  m->down_now = dlnow;
  m->up_total = ultotal;
  m->up_now = ulnow;
  return 0;
}

/** meter() → a meter to pass as the `meter` request option. */
static int http_meter(lua_State *L) {
  Meter *m = lua_newuserdatauv(L, sizeof *m, 0);
  memset(m, 0, sizeof *m);
  luaL_setmetatable(L, METER_MT);
  return 1;
}

/** meter:read() → bytes sent, bytes to send, bytes received, bytes to receive (0 when not known yet). */
static int meter_read(lua_State *L) {
  Meter *m = luaL_checkudata(L, 1, METER_MT);
  lua_pushinteger(L, (lua_Integer)m->up_now);
  lua_pushinteger(L, (lua_Integer)m->up_total);
  lua_pushinteger(L, (lua_Integer)m->down_now);
  lua_pushinteger(L, (lua_Integer)m->down_total);
  return 4;
}

/* ---- buffers ---- */

static int buf_add(Buf *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL) return 0;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 1;
}

static void buf_free(Buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* ---- curl callbacks: bytes only ---- */

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  Request *r = ud;
  size_t len = size * n;
  if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) r->head.len = 0;  /* a new response begins */
  return buf_add(&r->head, p, len) ? len : 0;
}

static int out_open(Request *r);

static void req_resume(LoopPrepare *p, int quiet) {
  Request *r = (Request *)((char *)p - offsetof(Request, resume));
  (void)quiet;
  loop_prepare_remove(r->loop, p);
  curl_easy_pause(r->easy, CURLPAUSE_CONT);  /* may deliver what curl kept at once: counted in this step */
}

/* Whether the transfer has had its share of this step; if so it is paused until the next one. */
static int over_quota(Request *r, size_t len) {
  unsigned long step = loop_steps(r->loop);
  if (step != r->step) {
    r->step = step;
    r->step_bytes = 0;
  }
  size_t quota = loop_budgeted(r->loop) ? STEP_QUOTA : STEP_QUOTA_UNBUDGETED;
  if (r->step_bytes > 0 && (r->step_bytes + len > quota || loop_over_budget(r->loop))) {
    loop_prepare_add(r->loop, &r->resume);
    return 1;
  }
  r->step_bytes += len;
  return 0;
}

static void *body_populate(void *arg) {
  Buf *b = arg;
#ifdef MADV_POPULATE_WRITE
  madvise(b->data, b->cap, MADV_POPULATE_WRITE);  /* page faults (and zeroing) here, not in the loop's step */
#endif
  return NULL;
}

static void *body_release(void *data) {
  free(data);
  return NULL;
}

/* Frees the body, after the worker faulting its pages in (if any) is done with it. A large one is freed on a
** detached thread: returning tens of MB of pages to the system takes milliseconds. */
static void body_free(Request *r) {
  if (r->populating) {
    pthread_join(r->populator, NULL);
    r->populating = 0;
  }
  pthread_t t;
  if (r->body.cap >= HUGE_BODY && pthread_create(&t, NULL, body_release, r->body.data) == 0) {
    pthread_detach(t);
    r->body.data = NULL;
  }
  buf_free(&r->body);
}

/* Sizes the in-memory body from Content-Length, so it is never copied to grow. A large one is asked to live
** on huge pages, which a worker faults in ahead of the transfer: first touches of fresh memory are the
** slowest part of filling a large buffer (on a virtual machine some 15 µs a 4 KiB page, 0.2 s for 50 MB). */
static int body_reserve(Request *r) {
  curl_off_t cl = -1;
  curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
  if (cl <= 0 || (size_t)cl > r->max_body || (size_t)cl + 1 <= r->body.cap || r->body.len > 0) return 1;
  size_t cap = (size_t)cl + 1;
  char *d;
  if (cap >= HUGE_BODY) {
    const size_t huge = (size_t)2 << 20;
    cap = (cap + huge - 1) / huge * huge;
    d = aligned_alloc(huge, cap);
#ifdef MADV_HUGEPAGE
    if (d) madvise(d, cap, MADV_HUGEPAGE);  /* advice only: without it the body is as usual */
#endif
  } else {
    d = malloc(cap);
  }
  if (d == NULL) return 0;
  free(r->body.data);
  r->body.data = d;
  r->body.cap = cap;
  if (cap >= HUGE_BODY && pthread_create(&r->populator, NULL, body_populate, &r->body) == 0) r->populating = 1;
  return 1;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud) {
  Request *r = ud;
  size_t len = size * n;
  if (over_quota(r, len)) return CURL_WRITEFUNC_PAUSE;  /* curl hands the same bytes again when unpaused */
  if (!r->out_decided) {
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    r->out_decided = 1;
    /* an error document never lands in the caller's file: it stays in memory for the response */
    r->out_to_file = r->out_path != NULL && status >= 200 && status < 300;
    if (r->out_to_file && !out_open(r)) return 0;
    if (!r->out_to_file && !body_reserve(r)) return 0;
  }
  if (r->out_to_file && r->writer.started) {
    int rc = filewriter_write(&r->writer, p, len, (off_t)r->out_pos);
    if (rc < 0) {
      r->out_errno = r->writer.err;
      return 0;
    }
    if (rc == 0) {  /* every buffer waits for the disk: try again next step */
      loop_prepare_add(r->loop, &r->resume);
      return CURL_WRITEFUNC_PAUSE;
    }
    r->out_pos += (curl_off_t)len;
    r->out_bytes += (curl_off_t)len;
    return len;
  }
  if (r->out_to_file) {  /* no worker could be started: written here */
    size_t done = 0;
    while (done < len) {
      ssize_t w = pwrite(r->out_fd, p + done, len - done, (off_t)(r->out_pos + (curl_off_t)done));
      if (w < 0) {
        if (errno == EINTR) continue;
        r->out_errno = errno;
        return 0;
      }
      done += (size_t)w;
    }
    r->out_pos += (curl_off_t)len;
    r->out_bytes += (curl_off_t)len;
    return len;
  }
  if (r->body.len + len > r->max_body) {
    r->too_large = 1;
    return 0;
  }
  if (r->populating && r->body.len + len + 1 > r->body.cap) {  /* longer than announced: it moves */
    pthread_join(r->populator, NULL);
    r->populating = 0;
  }
  return buf_add(&r->body, p, len) ? len : 0;
}

static size_t on_read(char *p, size_t size, size_t n, void *ud) {
  Request *r = ud;
  size_t want = size * n;
  if ((curl_off_t)want > r->in_left) want = (size_t)r->in_left;
  if (want == 0) return 0;
  size_t got = fread(p, 1, want, r->in);
  if (got == 0 && ferror(r->in)) return CURL_READFUNC_ABORT;
  r->in_left -= (curl_off_t)got;
  return got;
}

/* ---- the output file: written beside its destination, renamed into place only when complete ---- */

static int out_open(Request *r) {
  if (r->out_fd >= 0) return 1;
  if (r->tmp_path) {
    /* mkostemp makes 0600, and the finished file keeps it: a download may hold anything (docs/security.md) */
    r->out_fd = mkostemp(r->tmp_path, O_CLOEXEC);
  } else {
    r->out_fd = open(r->out_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);  /* an existing file keeps its mode */
  }
  if (r->out_fd < 0) {
    r->out_errno = errno;
    return 0;
  }
  filewriter_start(&r->writer, r->out_fd);  /* when it cannot start, on_write writes inline */
  return 1;
}

/* Waits for the writes still buffered (at most FILEWRITER_SLOTS buffers); 0 or their errno. */
static int out_drain(Request *r) {
  return filewriter_close(&r->writer);
}

static void out_discard(Request *r) {
  if (r->committing) return;  /* the worker owns the descriptor until it is done */
  out_drain(r);
  if (r->out_fd >= 0) {
    close(r->out_fd);
    r->out_fd = -1;
    if (r->tmp_path) unlink(r->tmp_path);
  }
}

/* ---- lifecycle ---- */

static void req_free_headers(Request *r) {
  for (struct curl_slist *h = r->headers; h; h = h->next) OPENSSL_cleanse(h->data, strlen(h->data));
  curl_slist_free_all(r->headers);
  r->headers = NULL;
}

static void req_close(Request *r) {
  loop_prepare_remove(r->loop, &r->resume);
  if (r->committing) {  /* freed while the worker commits: wait for it (the file is complete) */
    filecommit_abandon(&r->commit);
    r->committing = 0;
    r->out_fd = -1;
  }
  if (r->attached) {
    loop_remove_transfer(r->loop, r->easy);
    r->attached = 0;
  }
  if (r->easy) {
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
  }
  req_free_headers(r);
  if (r->in) {
    fclose(r->in);
    r->in = NULL;
  }
  out_discard(r);
  free(r->out_path);
  free(r->tmp_path);
  free(r->ca_file);
  r->out_path = r->tmp_path = r->ca_file = NULL;
  buf_free(&r->head);
  body_free(r);
}

static int req_gc(lua_State *L) {
  req_close((Request *)luaL_checkudata(L, 1, REQUEST_MT));
  return 0;
}

static void req_committed(FileCommit *c) {
  Request *r = (Request *)((char *)c - offsetof(Request, commit));
  r->committing = 0;
  r->out_fd = -1;
  if (c->err) {
    r->out_errno = c->err;
    r->result = CURLE_WRITE_ERROR;
  }
  loop_wake(r->loop, &r->wait);
}

static void req_done(LoopTransfer *t, CURLcode result) {
  Request *r = (Request *)((char *)t - offsetof(Request, transfer));
  r->attached = 0;
  r->result = result;
  long status = 0;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  if (r->out_path && result == CURLE_OK && status >= 200 && status < 300) {
    if (!r->out_decided) {  /* an empty body: the file must still exist, empty */
      r->out_decided = r->out_to_file = 1;
      if (!out_open(r)) r->result = CURLE_WRITE_ERROR;
    }
    if (r->result == CURLE_OK && r->tmp_path &&
        filecommit_start(r->loop, &r->commit, &r->writer, r->out_fd, r->tmp_path, r->out_path,
                         req_committed) == 0) {
      r->committing = 1;  /* req_committed wakes the task once the file is in place */
      return;
    }
    int werr = out_drain(r);  /* a range written in place (or no commit worker): its writes end here */
    if (werr && r->result == CURLE_OK) {
      r->out_errno = werr;
      r->result = CURLE_WRITE_ERROR;
    }
    if (r->result == CURLE_OK && r->tmp_path) {  /* no worker: commit here */
      if (fsync(r->out_fd) != 0 || close(r->out_fd) != 0) {
        r->out_errno = errno;
        r->result = CURLE_WRITE_ERROR;
        unlink(r->tmp_path);
      } else if (rename(r->tmp_path, r->out_path) != 0) {
        r->out_errno = errno;
        r->result = CURLE_WRITE_ERROR;
        unlink(r->tmp_path);
      }
      r->out_fd = -1;
    }
  }
  if (r->result != CURLE_OK) out_discard(r);
  loop_wake(r->loop, &r->wait);
}

static void req_cancel(LoopWait *w) {
  Request *r = (Request *)w;
  loop_prepare_remove(r->loop, &r->resume);
  if (r->attached) {
    loop_remove_transfer(r->loop, r->easy);
    r->attached = 0;
  }
  r->result = CURLE_ABORTED_BY_CALLBACK;
  out_discard(r);
}

/* ---- results ---- */

static const char *error_code(CURLcode rc) {
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_CONNECT: return "connect";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "dns";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE: return "tls";
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return "reset";
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return "url";
    case CURLE_TOO_MANY_REDIRECTS: return "redirect";
    case CURLE_ABORTED_BY_CALLBACK: return "cancelled";
    case CURLE_READ_ERROR: return "file";
    case CURLE_WRITE_ERROR: return "file";
    default: return "transfer";
  }
}

/* Pushes the URL fit for a message: no user info, no query or fragment (a SAS token lives in the query). */
static const char *push_safe_url(lua_State *L, const char *url) {
  if (url == NULL) return lua_pushliteral(L, "request");
  const char *scheme_end = strstr(url, "://");
  const char *host = scheme_end ? scheme_end + 3 : url;
  size_t host_len = strcspn(host, "/?#");
  const char *at = memchr(host, '@', host_len);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, url, (size_t)(host - url));
  if (at) host_len -= (size_t)(at + 1 - host), host = at + 1;
  luaL_addlstring(&b, host, host_len);
  const char *path = host + host_len;
  luaL_addlstring(&b, path, strcspn(path, "?#"));
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

static int push_error(lua_State *L, Request *r) {
  const char *code = error_code(r->result);
  char *raw_url = NULL;
  curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &raw_url);
  const char *url = push_safe_url(L, raw_url);
  if (r->too_large) {
    code = "too_large";
    lufa_error_fail(L, "http", code, "response body from %s exceeds max_body (%d bytes); use output_file",
                    url, (int)r->max_body);
  } else if (r->result == CURLE_WRITE_ERROR && r->out_errno) {
    lufa_error_fail(L, "http", code, "cannot write output_file '%s': %s", r->out_path ? r->out_path : "?",
                    strerror(r->out_errno));
  } else if (r->result == CURLE_SSL_CACERT_BADFILE) {
    lufa_error_fail(L, "http", code, "%s: cannot use the CA file '%s' (ca_file, or LUFA_CA_FILE): it must be a "
                    "readable PEM file of certificates", url, r->ca_file ? r->ca_file : "?");
  } else if (strcmp(code, "tls") == 0) {
    /* say what to do: trusting the server's CA is the fix; turning verification off is not offered here */
    const char *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result);
    lufa_error_fail(L, "http", code, "%s: TLS verification failed: %s. If the server's certificate comes from a "
                    "private CA (or is self-signed), give that CA's PEM file as ca_file or in LUFA_CA_FILE",
                    url, raw_url && strstr(why, raw_url) ? curl_easy_strerror(r->result) : why);
  } else {
    const char *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result);
    /* curl's own text may quote the URL: keep only what follows it */
    lufa_error_fail(L, "http", code, "%s: %s", url, raw_url && strstr(why, raw_url) ? curl_easy_strerror(r->result) : why);
  }
  lua_pushstring(L, curl_easy_strerror(r->result));
  lua_setfield(L, -2, "curl_message");
  return 2;
}

/* Fills res.body_parts (res at the top) with the body in PART_SIZE strings. Inside a task it yields after
** each one, so the copying (into fresh memory: page faults) is spread over loop steps, one part a step;
** the task is queued again at once and continues here. Elsewhere all parts are made at once. */
static int parts_fill(lua_State *L, int status, lua_KContext ctx) {
  Request *r = (Request *)ctx;
  (void)status;
  lua_getfield(L, -1, "body_parts");
  size_t made = 0;
  while (r->parts_done < r->body.len) {
    if (made > 0 && lua_isyieldable(L) && task_of(L)) {
      lua_pop(L, 1);
      return lua_yieldk(L, 0, ctx, parts_fill);
    }
    size_t n = r->body.len - r->parts_done < PART_SIZE ? r->body.len - r->parts_done : PART_SIZE;
    lua_pushlstring(L, r->body.data + r->parts_done, n);
    lua_rawseti(L, -2, (lua_Integer)(r->parts_done / PART_SIZE) + 1);
    r->parts_done += n;
    made += n;
  }
  lua_pop(L, 1);
  body_free(r);  /* every byte is in the strings now */
  return 1;
}

static int req_results(lua_State *L, LoopWait *w) {
  Request *r = (Request *)w;
  if (r->result != CURLE_OK) return push_error(L, r);
  long status = 0;
  curl_off_t connects = 0, total_us = 0;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &connects);
  curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &total_us);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  http_headers_push(L, r->head.data, r->head.len);
  lua_setfield(L, -2, "headers");
  if (r->out_to_file) {
    lua_pushstring(L, r->out_path);
    lua_setfield(L, -2, "file");
    lua_pushinteger(L, (lua_Integer)r->out_bytes);
    lua_setfield(L, -2, "size");
  } else if (r->parts) {
    lua_pushinteger(L, (lua_Integer)r->body.len);
    lua_setfield(L, -2, "size");
    lua_newtable(L);
    lua_setfield(L, -2, "body_parts");
    return parts_fill(L, 0, (lua_KContext)r);
  } else {
    lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    lua_setfield(L, -2, "body");
  }
  lua_pushboolean(L, connects == 0);
  lua_setfield(L, -2, "reused");
  lua_pushnumber(L, (double)total_us / 1e6);
  lua_setfield(L, -2, "time");
  return 1;
}

/* ---- building a request ---- */

static int opt_field(lua_State *L, const char *name, int type) {
  int t = lua_getfield(L, 1, name);
  if (t != LUA_TNIL && t != type && !(type == LUA_TSTRING && t == LUA_TNUMBER))
    return luaL_error(L, "bad request option '%s' (%s expected, got %s)", name, lua_typename(L, type),
                      luaL_typename(L, -1));
  return t != LUA_TNIL;
}

static const char *opt_string(lua_State *L, const char *name, const char *def) {
  const char *v = opt_field(L, name, LUA_TSTRING) ? lua_tostring(L, -1) : def;
  lua_pop(L, 1);
  return v;  /* the string stays alive in the options table */
}

static double opt_number(lua_State *L, const char *name, double def) {
  double v = opt_field(L, name, LUA_TNUMBER) ? lua_tonumber(L, -1) : def;
  lua_pop(L, 1);
  return v;
}

static int opt_bool(lua_State *L, const char *name, int def) {
  int v = opt_field(L, name, LUA_TBOOLEAN) ? lua_toboolean(L, -1) : def;
  lua_pop(L, 1);
  return v;
}

static int has_token(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 0;
  return 1;
}

/* Appends "Name: value" (value may be a secret) to the request's header list. */
static void add_header(lua_State *L, Request *r, const char *name, size_t nlen, int vidx, int *seen_ct, int *seen_expect) {
  size_t vlen;
  const char *v = lufa_secret_bytes(L, vidx, &vlen);
  if (v == NULL) {
    if (lua_type(L, vidx) != LUA_TSTRING && lua_type(L, vidx) != LUA_TNUMBER)
      luaL_error(L, "bad header '%s' (string or lufa.secret expected, got %s)", name, luaL_typename(L, vidx));
    v = lua_tolstring(L, vidx, &vlen);
  }
  if (nlen == 0 || !has_token(name, nlen) || memchr(name, ':', nlen) || !has_token(v, vlen))
    luaL_error(L, "bad header '%s': names and values cannot contain line breaks (or names a colon)", name);
  if (nlen == 12 && strncasecmp(name, "content-type", 12) == 0) *seen_ct = 1;
  if (nlen == 6 && strncasecmp(name, "expect", 6) == 0) *seen_expect = 1;
  char *line = malloc(nlen + vlen + 3);
  if (line == NULL) luaL_error(L, "not enough memory");
  memcpy(line, name, nlen);
  memcpy(line + nlen, vlen ? ": " : ";", vlen ? 2 : 1);  /* "Name;" sends an empty value */
  memcpy(line + nlen + (vlen ? 2 : 1), v, vlen);
  line[nlen + (vlen ? 2 : 1) + vlen] = '\0';
  struct curl_slist *h = curl_slist_append(r->headers, line);
  OPENSSL_cleanse(line, nlen + vlen + 2);
  free(line);
  if (h == NULL) luaL_error(L, "not enough memory");
  r->headers = h;
}

static void set_headers(lua_State *L, Request *r) {
  int seen_ct = 0, seen_expect = 0;
  if (opt_field(L, "headers", LUA_TTABLE)) {
    int t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) {
      if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "bad request option 'headers' (names must be strings)");
      size_t nlen;
      const char *name = lua_tolstring(L, -2, &nlen);
      add_header(L, r, name, nlen, lua_gettop(L), &seen_ct, &seen_expect);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  /* curl would otherwise add a form content type to bodies and wait for 100-continue on large uploads */
  if (!seen_expect) r->headers = curl_slist_append(r->headers, "Expect:");
  if (!seen_ct) r->headers = curl_slist_append(r->headers, "Content-Type:");
  curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
}

/* Warns once per host that TLS verification was turned off, so it never goes unnoticed. */
static void warn_tls_off(lua_State *L, const char *url) {
  lua_getfield(L, LUA_REGISTRYINDEX, "lufa.http.tls_warned");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "lufa.http.tls_warned");
  }
  const char *s = strstr(url, "://");
  s = s ? s + 3 : url;
  size_t n = strcspn(s, "/?#");
  lua_pushlstring(L, s, n);
  if (lua_rawget(L, -2) == LUA_TNIL) {
    host_log(L, "warn", "lufa.http: TLS certificate verification is off for %.*s", (int)n, s);
    lua_pushlstring(L, s, n);
    lua_pushboolean(L, 1);
    lua_rawset(L, -4);
  }
  lua_pop(L, 2);
}

/** request{...} → response, or nil, err. See docs/api/http.md. */
static int http_request(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  Loop *loop = loop_get(L);
  lua_getfield(L, 1, "url");
  const char *url = lufa_secret_bytes(L, -1, NULL);  /* a SAS URL is a secret; its bytes stay in C */
  if (url == NULL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "bad request option 'url' (string or lufa.secret expected, got %s)", luaL_typename(L, -1));
    url = lua_tostring(L, -1);
  }
  lua_pop(L, 1);  /* still referenced by the options table */
  const char *method = opt_string(L, "method", NULL);
  const char *body_file = opt_string(L, "body_file", NULL);
  const char *output_file = opt_string(L, "output_file", NULL);
  const char *ca_file = opt_string(L, "ca_file", NULL);
  double timeout = opt_number(L, "timeout", 0);
  double connect_timeout = opt_number(L, "connect_timeout", 0);
  double max_body = opt_number(L, "max_body", (double)DEFAULT_MAX_BODY);
  int tls_verify = opt_bool(L, "tls_verify", 1);
  int follow = opt_bool(L, "follow_redirects", 0);
  int no_proxy = opt_bool(L, "no_proxy", 0);
  int fresh = opt_bool(L, "fresh_connection", 0);
  double low_speed_time = opt_number(L, "low_speed_time", 0);
  int body_parts = opt_bool(L, "body_parts", 0);

  /* the userdata exists (closed) before any resource is acquired; __gc releases whatever was reached */
  Request *r = lua_newuserdatauv(L, sizeof *r, 2);  /* index 2; user values: the body and the meter, kept alive */
  memset(r, 0, sizeof *r);
  r->out_fd = -1;
  r->loop = loop;
  r->max_body = max_body > 0 ? (size_t)max_body : DEFAULT_MAX_BODY;
  r->parts = body_parts;
  r->transfer.done = req_done;
  r->resume.fn = req_resume;
  luaL_setmetatable(L, REQUEST_MT);
  loop_wait_init(L, &r->wait);
  r->wait.cancel = req_cancel;
  r->wait.results = req_results;
  r->easy = curl_easy_init();
  if (r->easy == NULL) return luaL_error(L, "cannot create a curl handle");
  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  /* one receive is one piece a budgeted step cannot cut: 64 KiB keeps it short, curl loops for more */
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 64L * 1024);
  curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   connect_timeout > 0 ? (long)(connect_timeout * 1000) : DEFAULT_CONNECT_TIMEOUT_MS);
  if (timeout > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000) > 0 ? (long)(timeout * 1000) : 1L);
  if (low_speed_time > 0) {
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)low_speed_time);
  }
  if (follow) {
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
  }
  if (ca_file) {
    curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
    r->ca_file = strdup(ca_file);  /* NULL when short of memory: the message then shows "?" */
  }
  curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);  /* never older than TLS 1.2 */
  if (no_proxy) curl_easy_setopt(e, CURLOPT_NOPROXY, "*");  /* e.g. the instance metadata service */
  /* curl silently sends a request again when a reused connection dies before the answer; on a new
  ** connection it does not, so a call that must not be repeated is sent at most once per attempt */
  if (fresh) curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  if (!tls_verify) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    warn_tls_off(L, url);  /* host only */
  }
  if (lua_getfield(L, 1, "meter") != LUA_TNIL) {
    Meter *m = luaL_testudata(L, -1, METER_MT);
    if (m == NULL) return luaL_error(L, "bad request option 'meter' (meter expected, got %s)", luaL_typename(L, -1));
    lua_setiuservalue(L, 2, 2);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, m);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  } else {
    lua_pop(L, 1);
  }

  /* the request body: a string or secret, a file (range), or nothing */
  int body_type = lua_getfield(L, 1, "body");
  int has_body = body_type != LUA_TNIL;
  if (has_body && body_file) return luaL_error(L, "bad request: give 'body' or 'body_file', not both");
  if (!method) method = (has_body || body_file) ? "POST" : "GET";
  if (has_body) {
    size_t len;
    const char *b = lufa_secret_bytes(L, -1, &len);
    if (b == NULL) {
      if (body_type != LUA_TSTRING) return luaL_error(L, "bad request option 'body' (string or lufa.secret expected, got %s)", luaL_typename(L, -1));
      b = lua_tolstring(L, -1, &len);
    }
    lua_setiuservalue(L, 2, 1);  /* the bytes stay valid while the request lives */
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, b);
  } else {
    lua_pop(L, 1);
  }
  if (body_file) {
    double off = opt_number(L, "body_offset", 0);
    double length = opt_number(L, "body_length", -1);
    struct stat st;
    r->in = fopen(body_file, "rb");
    if (r->in == NULL || fstat(fileno(r->in), &st) != 0)
      return lufa_error_fail(L, "http", "file", "cannot read body_file '%s': %s", body_file, strerror(errno));
    if (!S_ISREG(st.st_mode))
      return lufa_error_fail(L, "http", "file", "cannot read body_file '%s': not a regular file", body_file);
    if (off < 0 || off > (double)st.st_size)
      return lufa_error_fail(L, "http", "file", "body_offset %f is outside body_file '%s' (%d bytes)", off, body_file, (int)st.st_size);
    curl_off_t left = (curl_off_t)st.st_size - (curl_off_t)off;
    if (length >= 0) {
      if ((curl_off_t)length > left)
        return lufa_error_fail(L, "http", "file", "body_length runs past the end of body_file '%s'", body_file);
      left = (curl_off_t)length;
    }
    if (fseeko(r->in, (off_t)off, SEEK_SET) != 0)
      return lufa_error_fail(L, "http", "file", "cannot seek in body_file '%s': %s", body_file, strerror(errno));
    r->in_left = left;
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, r);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, left);
  }
  if (!has_body && !body_file && (strcasecmp(method, "PUT") == 0 || strcasecmp(method, "POST") == 0 ||
                                   strcasecmp(method, "PATCH") == 0)) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);  /* sends Content-Length: 0 */
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
  }
  if (strcasecmp(method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else if (strcasecmp(method, "GET") == 0 && !has_body) curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  else curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  set_headers(L, r);

  if (output_file) {
    double out_offset = opt_number(L, "output_offset", -1);
    r->out_path = strdup(output_file);
    if (out_offset >= 0) {
      r->out_pos = (curl_off_t)out_offset;  /* a range of a file the caller assembles: written in place */
    } else {
      size_t n = strlen(output_file);
      r->tmp_path = malloc(n + 16);
      if (r->tmp_path) snprintf(r->tmp_path, n + 16, "%s.part-XXXXXX", output_file);
    }
    if (r->out_path == NULL || (out_offset < 0 && r->tmp_path == NULL)) return luaL_error(L, "not enough memory");
    /* fail before sending anything when the destination cannot be written */
    char *slash = strrchr(r->out_path, '/');
    if (slash) *slash = '\0';
    int writable = access(slash ? (r->out_path[0] ? r->out_path : "/") : ".", W_OK) == 0;
    if (slash) *slash = '/';
    if (!writable)
      return lufa_error_fail(L, "http", "file", "cannot write output_file '%s': %s", output_file, strerror(errno));
  }

  CURLMcode mc = loop_add_transfer(loop, e, &r->transfer);
  if (mc != CURLM_OK) return luaL_error(L, "cannot start the request: %s", curl_multi_strerror(mc));
  r->attached = 1;
  return loop_wait(L, &r->wait);
}

/** urlencode(s) → s with every byte but RFC 3986 unreserved characters percent-encoded; secrets stay secret. */
static int http_urlencode(lua_State *L) {
  size_t n;
  int secret;
  const char *s = lufa_check_bytes(L, 1, &n, &secret);
  static const char hex[] = "0123456789ABCDEF";
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      luaL_addchar(&b, (char)c);
    } else {
      luaL_addchar(&b, '%');
      luaL_addchar(&b, hex[c >> 4]);
      luaL_addchar(&b, hex[c & 15]);
    }
  }
  luaL_pushresult(&b);
  if (secret) {
    size_t len;
    const char *enc = lua_tolstring(L, -1, &len);
    lufa_secret_push(L, enc, len);
  }
  return 1;
}

int luaopen_lufa_core_http(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"request", http_request},
    {"urlencode", http_urlencode},
    {"meter", http_meter},
    {NULL, NULL}
  };
  loop_get(L);
  if (luaL_newmetatable(L, REQUEST_MT)) {
    lua_pushcfunction(L, req_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, METER_MT)) {
    lua_pushcfunction(L, meter_read);
    lua_setfield(L, -2, "read");
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  http_headers_register(L);
  luaL_newlib(L, funcs);
  lua_pushstring(L, curl_version());
  lua_setfield(L, -2, "curl_version");
  return 1;
}
