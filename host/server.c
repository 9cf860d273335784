/*
** lufa.server (see server.h).
**   server.listen(address, port) → srv, or nil and a lufa.error (kind "server"); port 0 picks a free one
**   srv:port(), srv:close()
**   srv:accept() → request, conn: waits for the next complete request; nil once the server is closed.
**     request = {method =, target =, version = "1.1", headers = {lower-case name → value}, body =, peer =}
**   conn:send(bytes) → true, or nil and a lufa.error when the client has gone; waits while the socket is full
**   conn:close()
*/
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <lauxlib.h>

#include "error.h"
#include "http_request.h"
#include "loop.h"
#include "server.h"

#define SERVER_MT "lufa.server"
#define CONN_MT "lufa.server.conn"
#define MAX_PENDING 128           /* connections still sending their request; more are refused */
#define REQUEST_SECONDS 15.0      /* a request must arrive within this (slow clients hold no slot for long) */

typedef struct Server Server;

typedef struct Conn {
  LoopWatch watch;
  LoopTimer timer;
  LoopWait wait;              /* a task waiting in conn:send */
  Loop *loop;
  Server *srv;                /* while pending (reading or queued); NULL once handed to Lua */
  struct Conn *next;
  int fd;
  int queued;
  char *buf;
  size_t len, cap, need;      /* need: head + body, known once the head is parsed */
  HttpRequest req;
  const char *out;            /* conn:send's bytes (anchored on the waiting task's stack) */
  size_t out_len, out_pos;
  int send_errno;
  char peer[64];
} Conn;

struct Server {
  LoopWatch watch;
  LoopWait wait;              /* the task waiting in srv:accept */
  Loop *loop;
  int fd, port, waiting, npending;
  Conn *pending;              /* reading or queued, newest first */
};

static Conn *conn_of_timer(LoopTimer *t) { return (Conn *)((char *)t - offsetof(Conn, timer)); }
static Conn *conn_of_wait(LoopWait *w) { return (Conn *)((char *)w - offsetof(Conn, wait)); }
static Server *server_of_wait(LoopWait *w) { return (Server *)((char *)w - offsetof(Server, wait)); }

static void conn_free(Conn *c) {
  loop_unwatch(c->loop, &c->watch);
  loop_timer_stop(c->loop, &c->timer);
  if (c->fd >= 0) close(c->fd);
  free(c->buf);
  free(c);
}

static void pending_remove(Server *s, Conn *c) {
  for (Conn **p = &s->pending; *p; p = &(*p)->next) {
    if (*p == c) {
      *p = c->next;
      s->npending--;
      break;
    }
  }
  c->srv = NULL;
  c->next = NULL;
}

/* Best effort: the answer to a refused request is short and the socket's buffer is empty. */
static void refuse(Conn *c, int status) {
  char msg[256];
  const char *reason = http_reason(status);
  int body = snprintf(NULL, 0, "%d %s\n", status, reason);
  int n = snprintf(msg, sizeof msg, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: %d\r\nConnection: close\r\n\r\n%d %s\n", status, reason, body, status, reason);
  if (n > 0 && send(c->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) { /* the client has gone */ }
}

static void conn_drop(Conn *c, int status) {
  if (status) refuse(c, status);
  if (c->srv) pending_remove(c->srv, c);
  conn_free(c);
}

static Conn *queued_first(Server *s) {
  /* the oldest queued connection: the last one in the newest-first list */
  Conn *found = NULL;
  for (Conn *c = s->pending; c; c = c->next)
    if (c->queued) found = c;
  return found;
}

static void conn_timeout(LoopTimer *t) { conn_drop(conn_of_timer(t), 408); }

static void conn_readable(LoopWatch *w) {
  Conn *c = (Conn *)w;
  int eof = 0;
  for (;;) {
    size_t limit = c->need ? c->need : HTTP_MAX_HEAD;
    if (c->need && c->len >= c->need) break;
    if (c->len == c->cap) {
      size_t cap = c->cap ? c->cap * 2 : 4096;
      if (cap > limit) cap = limit;
      if (cap <= c->cap) break;   /* full: the head parser decides below */
      char *b = realloc(c->buf, cap);
      if (b == NULL) return conn_drop(c, 503);
      c->buf = b;
      c->cap = cap;
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n == 0) {   /* the client is done sending (it may still wait for the answer) */
      eof = 1;
      break;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return conn_drop(c, 0);
    }
    c->len += (size_t)n;
  }
  if (c->need == 0) {
    int r = http_parse_request(c->buf, c->len, &c->req);
    if (r == HTTP_PARSE_MORE) {
      if (eof) conn_drop(c, 0);   /* it closed before its request was complete */
      return;
    }
    if (r != HTTP_PARSE_DONE) return conn_drop(c, r);
    c->need = c->req.head_len + c->req.content_length;
    if (c->len < c->need) {
      /* the body follows: make room for all of it (bounded by HTTP_MAX_BODY) and read on */
      char *b = realloc(c->buf, c->need);
      if (b == NULL) return conn_drop(c, 503);
      c->buf = b;
      c->cap = c->need;
      http_parse_request(c->buf, c->len, &c->req);   /* the parsed fields point into the buffer */
      if (eof) return conn_drop(c, 400);            /* it announced more body than it sent */
      return conn_readable(w);
    }
  }
  if (c->len < c->need) {
    if (eof) conn_drop(c, 400);
    return;
  }
  loop_unwatch(c->loop, &c->watch);
  loop_timer_stop(c->loop, &c->timer);
  c->queued = 1;
  Server *s = c->srv;
  if (s->waiting) {
    s->waiting = 0;
    loop_wake(s->loop, &s->wait);
  }
}

static void server_readable(LoopWatch *w) {
  Server *s = (Server *)w;
  for (;;) {
    struct sockaddr_storage addr;
    socklen_t alen = sizeof addr;
    int fd = accept4(s->fd, (struct sockaddr *)&addr, &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;   /* EAGAIN, or out of descriptors: try again at the next readiness */
    }
    Conn *c = s->npending < MAX_PENDING ? calloc(1, sizeof *c) : NULL;
    if (c == NULL) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->loop = s->loop;
    c->srv = s;
    c->timer.index = -1;
    c->timer.fire = conn_timeout;
    c->watch.fd = fd;
    c->watch.ready = conn_readable;
    char host[INET6_ADDRSTRLEN] = "?";
    if (addr.ss_family == AF_INET)
      inet_ntop(AF_INET, &((struct sockaddr_in *)&addr)->sin_addr, host, sizeof host);
    else if (addr.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&addr)->sin6_addr, host, sizeof host);
    snprintf(c->peer, sizeof c->peer, "%s", host);
    if (loop_watch(s->loop, &c->watch) != 0) {
      conn_free(c);
      continue;
    }
    c->next = s->pending;
    s->pending = c;
    s->npending++;
    loop_timer_start(s->loop, &c->timer, REQUEST_SECONDS);
  }
}

/* ---------------------------------------------------------------- Lua: the server */

static Server *check_server(lua_State *L) { return luaL_checkudata(L, 1, SERVER_MT); }

static void server_shutdown(Server *s) {
  if (s->fd < 0) return;
  loop_unwatch(s->loop, &s->watch);
  close(s->fd);
  s->fd = -1;
  while (s->pending) conn_drop(s->pending, 0);
  if (s->waiting) {
    s->waiting = 0;
    loop_wake(s->loop, &s->wait);
  }
}

static int l_listen(lua_State *L) {
  const char *address = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  if (port < 0 || port > 65535) return luaL_argerror(L, 2, "a port is 0..65535");
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  hints.ai_socktype = SOCK_STREAM;
  char service[8];
  snprintf(service, sizeof service, "%d", (int)port);
  int gai = getaddrinfo(address, service, &hints, &ai);
  if (gai != 0)
    return lufa_error_fail(L, "server", "address", "cannot listen on '%s': not a numeric IP address (%s)",
      address, gai_strerror(gai));
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    freeaddrinfo(ai);
    return lufa_error_fail(L, "server", e == EADDRINUSE ? "in_use" : "listen", "cannot listen on %s port %d: %s",
      address, (int)port, strerror(e));
  }
  freeaddrinfo(ai);
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &blen);
  Server *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  s->fd = fd;
  s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
  s->loop = loop_get(L);
  s->watch.fd = fd;
  s->watch.ready = server_readable;
  luaL_setmetatable(L, SERVER_MT);
  if (loop_watch(s->loop, &s->watch) != 0) {
    int e = errno;
    server_shutdown(s);
    return lufa_error_fail(L, "server", "listen", "cannot watch the listening socket: %s", strerror(e));
  }
  return 1;
}

static int l_server_port(lua_State *L) {
  lua_pushinteger(L, check_server(L)->port);
  return 1;
}

static int l_server_close(lua_State *L) {
  server_shutdown(check_server(L));
  return 0;
}

static void push_request(lua_State *L, Conn *c) {
  const HttpRequest *r = &c->req;
  lua_createtable(L, 0, 6);
  lua_pushlstring(L, r->method, r->method_len);
  lua_setfield(L, -2, "method");
  lua_pushlstring(L, r->target, r->target_len);
  lua_setfield(L, -2, "target");
  lua_pushfstring(L, "1.%d", r->minor);
  lua_setfield(L, -2, "version");
  lua_createtable(L, 0, r->nheaders);
  for (int i = 0; i < r->nheaders; i++) {
    const HttpHeader *h = &r->headers[i];
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t k = 0; k < h->name_len; k++) {
      char ch = h->name[k];
      luaL_addchar(&b, (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch);
    }
    luaL_pushresult(&b);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TSTRING) {   /* repeated field: joined as RFC 9110 5.3 allows */
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, h->value, h->value_len);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, h->value, h->value_len);
    }
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, c->buf + r->head_len, r->content_length);
  lua_setfield(L, -2, "body");
  lua_pushstring(L, c->peer);
  lua_setfield(L, -2, "peer");
}

static int accept_results(lua_State *L, LoopWait *w) {
  Server *s = server_of_wait(w);
  Conn *c = s->fd >= 0 ? queued_first(s) : NULL;
  if (c == NULL) {
    lua_pushnil(L);
    return 1;
  }
  pending_remove(s, c);
  push_request(L, c);
  Conn **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = c;
  luaL_setmetatable(L, CONN_MT);
  return 2;
}

static void accept_cancel(LoopWait *w) { server_of_wait(w)->waiting = 0; }

static int l_server_accept(lua_State *L) {
  Server *s = check_server(L);
  if (s->waiting) return luaL_error(L, "srv:accept: another task is already accepting on this server");
  loop_wait_init(L, &s->wait);
  s->wait.cancel = accept_cancel;
  s->wait.results = accept_results;
  if (s->fd < 0 || queued_first(s)) {
    s->wait.done = 1;
    return accept_results(L, &s->wait);
  }
  s->waiting = 1;
  return loop_wait(L, &s->wait);
}

static int l_server_gc(lua_State *L) {
  server_shutdown(lua_touserdata(L, 1));
  return 0;
}

/* ---------------------------------------------------------------- Lua: a connection */

static Conn *check_conn(lua_State *L) {
  Conn **box = luaL_checkudata(L, 1, CONN_MT);
  if (*box == NULL) luaL_error(L, "the connection is closed");
  return *box;
}

/* Writes what the socket takes now; 1 when all is written or the write failed (send_errno set). */
static int send_some(Conn *c) {
  while (c->out_pos < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      c->send_errno = errno;
      return 1;
    }
    c->out_pos += (size_t)n;
  }
  return 1;
}

static void conn_writable(LoopWatch *w) {
  Conn *c = (Conn *)w;
  if (send_some(c)) {
    loop_unwatch(c->loop, &c->watch);
    loop_wake(c->loop, &c->wait);
  }
}

static int send_results(lua_State *L, LoopWait *w) {
  Conn *c = conn_of_wait(w);
  if (c->send_errno)
    return lufa_error_fail(L, "server", "send", "the client has gone (%s)", strerror(c->send_errno));
  lua_pushboolean(L, 1);
  return 1;
}

static void send_cancel(LoopWait *w) {
  Conn *c = conn_of_wait(w);
  loop_unwatch(c->loop, &c->watch);
}

static int l_conn_send(lua_State *L) {
  Conn *c = check_conn(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  lua_settop(L, 2);   /* data stays on this stack while the task waits */
  loop_wait_init(L, &c->wait);
  c->wait.cancel = send_cancel;
  c->wait.results = send_results;
  c->out = data;
  c->out_len = len;
  c->out_pos = 0;
  if (c->send_errno == 0 && !send_some(c)) {
    c->watch.writable = 1;
    c->watch.ready = conn_writable;
    if (loop_watch(c->loop, &c->watch) != 0) c->send_errno = errno;
    else return loop_wait(L, &c->wait);
  }
  return send_results(L, &c->wait);
}

static int l_conn_close(lua_State *L) {
  Conn **box = luaL_checkudata(L, 1, CONN_MT);
  if (*box) {
    shutdown((*box)->fd, SHUT_WR);
    conn_free(*box);
  }
  *box = NULL;
  return 0;
}

static int l_conn_peer(lua_State *L) {
  lua_pushstring(L, check_conn(L)->peer);
  return 1;
}

int luaopen_lufa_server(lua_State *L) {
  static const luaL_Reg server_methods[] = {
    {"accept", l_server_accept}, {"port", l_server_port}, {"close", l_server_close}, {NULL, NULL}};
  static const luaL_Reg conn_methods[] = {
    {"send", l_conn_send}, {"close", l_conn_close}, {"peer", l_conn_peer}, {NULL, NULL}};
  luaL_newmetatable(L, SERVER_MT);
  luaL_newlib(L, server_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_server_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, CONN_MT);
  luaL_newlib(L, conn_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_conn_close);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, l_listen);
  lua_setfield(L, -2, "listen");
  return 1;
}
