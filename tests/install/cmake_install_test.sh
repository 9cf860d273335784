#!/usr/bin/env bash
# `cmake --install` of a build into a fresh prefix gives what a user and an embedder need: the lufa
# command finding its modules, the man page, the bash completion, lufa.pc for pkg-config and
# find_package(lufa) for CMake — each used by a separate program built against the prefix.
# Usage: tests/install/cmake_install_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
prefix=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT

cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; exit 1; }

# the command, from a clean environment, with its modules from the prefix
env -i PATH=/usr/bin:/bin "$prefix/bin/lufa" --version | grep -q '^lufa '
out=$(env -i PATH=/usr/bin:/bin HOME="$work" "$prefix/bin/lufa" -e 'print(package.searchpath("lufa.pipeline", package.path))')
case "$out" in "$prefix/share/lufa/lua/lufa/pipeline.lua") ;; *) echo "modules not found in the prefix: $out"; exit 1 ;; esac

# the man page renders and names the commands
man -P cat -l "$prefix/share/man/man1/lufa.1" 2>/dev/null | grep -q 'lufa schedule' ||
  { echo "man page missing or unreadable"; exit 1; }

# the bash completion completes a command
got=$(bash -c "source '$prefix/share/bash-completion/completions/lufa'; COMP_WORDS=(lufa vali); COMP_CWORD=1; _lufa; echo \"\${COMPREPLY[*]}\"")
[ "$got" = validate ] || { echo "bash completion gave '$got'"; exit 1; }
[ -f "$prefix/share/zsh/vendor-completions/_lufa" ] && [ -f "$prefix/share/fish/vendor_completions.d/lufa.fish" ]

# an embedding program: runs a task on lufa's loop
cat >"$work/embed.c" <<'C'
#include <stdio.h>
#include <lufa.h>
int main(void) {
  lufa_host *host = lufa_host_new();
  if (!host) return 1;
  if (lufa_spawn_string(host, "local lufa = require 'lufa'; lufa.sleep(0.01); print('task done')", "embed") != LUFA_OK) return 2;
  int rc = lufa_run(host);
  lufa_host_free(host);
  return rc == LUFA_OK ? 0 : 3;
}
C
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/$(gcc -print-multiarch 2>/dev/null)/pkgconfig"
cc -o "$work/embed-pc" "$work/embed.c" $(pkg-config --cflags --libs lufa)
[ "$(LD_LIBRARY_PATH="$(pkg-config --variable=libdir lufa)" "$work/embed-pc")" = "task done" ]

mkdir -p "$work/project"
cp "$work/embed.c" "$work/project/"
cat >"$work/project/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(embed_lufa C)
find_package(lufa 0.1 REQUIRED)
add_executable(embed embed.c)
target_link_libraries(embed PRIVATE lufa::liblufa)
CM
cmake -S "$work/project" -B "$work/project/build" -DCMAKE_PREFIX_PATH="$prefix" >"$work/cmake.log" 2>&1 ||
  { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/project/build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
[ "$(LD_LIBRARY_PATH="$(pkg-config --variable=libdir lufa)" "$work/project/build/embed")" = "task done" ]
echo "install: command, man page, completions, pkg-config and find_package(lufa) all work from $prefix"
