#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <lauxlib.h>

#include "error.h"
#include "systemd.h"

/** systemd.notify(state) → true when sent, false without NOTIFY_SOCKET, or nil, err.
** `state` is the protocol's text, e.g. "READY=1\nSTATUS=scheduling 3 triggers" or "STOPPING=1". */
static int notify(lua_State *L) {
  size_t len;
  const char *state = luaL_checklstring(L, 1, &len);
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || !*path) {
    lua_pushboolean(L, 0);
    return 1;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  size_t plen = strlen(path);
  if ((path[0] != '/' && path[0] != '@') || plen >= sizeof addr.sun_path)
    return lufa_error_fail(L, "systemd", "EINVAL", "NOTIFY_SOCKET '%s' is not a socket path", path);
  memcpy(addr.sun_path, path, plen);
  if (path[0] == '@') addr.sun_path[0] = '\0';  /* an abstract socket */
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return lufa_error_fail(L, "systemd", "socket", "cannot open a socket: %s", strerror(errno));
  ssize_t n = sendto(fd, state, len, MSG_NOSIGNAL, (struct sockaddr *)&addr, alen);
  int e = errno;
  close(fd);
  if (n < 0 || (size_t)n != len)
    return lufa_error_fail(L, "systemd", "send", "cannot notify %s: %s", path, n < 0 ? strerror(e) : "short write");
  lua_pushboolean(L, 1);
  return 1;
}

int luaopen_lufa_systemd(lua_State *L) {
  static const luaL_Reg funcs[] = {{"notify", notify}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
