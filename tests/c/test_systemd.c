/*
** test_systemd: lufa.systemd.notify sends its state as one datagram to NOTIFY_SOCKET (a path or an
** abstract '@name'), is a no-op without it, and reports a socket that is not there.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <lauxlib.h>
#include <lualib.h>

#include "check.h"
#include "error.h"
#include "systemd.h"

static const char *eval(lua_State *L, const char *code) {
  lua_settop(L, 0);
  if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    lua_pushfstring(L, "error: %s", lua_tostring(L, -1));
    return lua_tostring(L, -1);
  }
  return luaL_tolstring(L, -1, NULL);
}

/* A datagram socket bound to `name` (abstract when it starts with '@'). */
static int listen_on(const char *name) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  size_t len = strlen(name);
  memcpy(addr.sun_path, name, len);
  if (name[0] == '@') addr.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) != 0) {
    perror("bind");
    exit(1);
  }
  return fd;
}

static const char *receive(int fd) {
  static char buf[256];
  ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
  buf[n > 0 ? n : 0] = '\0';
  return buf;
}

int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "lufa.error", luaopen_lufa_error, 0);
  luaL_requiref(L, "lufa.systemd", luaopen_lufa_systemd, 0);
  lua_setglobal(L, "systemd");

  unsetenv("NOTIFY_SOCKET");
  CHECK_STR(eval(L, "return systemd.notify('READY=1')"), "false");

  char path[64];
  snprintf(path, sizeof path, "/tmp/lufa-notify-%d", (int)getpid());
  unlink(path);
  int fd = listen_on(path);
  setenv("NOTIFY_SOCKET", path, 1);
  CHECK_STR(eval(L, "return systemd.notify('READY=1\\nSTATUS=scheduling 2 triggers')"), "true");
  CHECK_STR(receive(fd), "READY=1\nSTATUS=scheduling 2 triggers");
  close(fd);
  unlink(path);

  char abstract[64];
  snprintf(abstract, sizeof abstract, "@lufa-notify-%d", (int)getpid());
  fd = listen_on(abstract);
  setenv("NOTIFY_SOCKET", abstract, 1);
  CHECK_STR(eval(L, "return systemd.notify('STOPPING=1')"), "true");
  CHECK_STR(receive(fd), "STOPPING=1");
  close(fd);

  setenv("NOTIFY_SOCKET", path, 1);  /* nobody listens there now */
  CHECK_STR(eval(L, "local ok, err = systemd.notify('READY=1'); return tostring(ok) .. ' ' .. err.code"), "nil send");
  setenv("NOTIFY_SOCKET", "relative/path", 1);
  CHECK_STR(eval(L, "local ok, err = systemd.notify('READY=1'); return err.code"), "EINVAL");
  lua_close(L);
  return check_summary();
}
