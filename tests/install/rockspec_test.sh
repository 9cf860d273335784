#!/usr/bin/env bash
# `luarocks lint` accepts the rockspec; `luarocks make` builds lufa for a stock lua5.4 into a private tree,
# offline; then lua5.4 requires it and runs a task, JSON, a secret and an HTTP module load through it; and
# the rock's lufa command runs.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
tree=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$tree" "$work"' EXIT
# the rockspec is well formed: luarocks lint names an unknown or missing field and fails
luarocks --lua-version 5.4 lint "$src/rockspec/lufa-scm-1.rockspec"
# build from a copy so the rock's build files never land in the source tree
git -C "$src" ls-files -z --cached --others --exclude-standard | (cd "$src" && xargs -0 cp --parents -t "$work" 2>/dev/null || true)
cd "$work"
luarocks --lua-version 5.4 make --tree "$tree" rockspec/lufa-scm-1.rockspec >"$tree/build.log" 2>&1 ||
  { cat "$tree/build.log"; exit 1; }
eval "$(luarocks --lua-version 5.4 --tree "$tree" path)"
cd /
out=$(lua5.4 -e '
  local lufa = require "lufa"
  local json = require "lufa.json"
  local secret = require "lufa.secret"
  require "lufa.http"
  local t = lufa.spawn(function(x) lufa.sleep(0.01) return x * 2 end, 21)
  lufa.run()
  print(t:wait(), json.encode(json.decode("[1,2.5,{}]")), tostring(secret("s3cr3t")))')
echo "$out"
[ "$out" = $'42\t[1,2.5,{}]\t<redacted>' ]

# the rock also installs the lufa command, which finds its modules in the rock tree from a clean shell
[ -x "$tree/bin/lufa" ] || { echo "no lufa command in $tree/bin"; ls -R "$tree/bin" 2>/dev/null; exit 1; }
env -i PATH=/usr/bin:/bin "$tree/bin/lufa" --version | grep -q '^lufa '
cmd_out=$(env -i PATH=/usr/bin:/bin HOME="$work" "$tree/bin/lufa" -e 'print(require("lufa.json").encode(require("lufa.pipeline") and {1, 2}))')
echo "$cmd_out"
[ "$cmd_out" = '[1,2]' ]
