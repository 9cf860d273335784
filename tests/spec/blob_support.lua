-- Helpers for the blob specs: the local stand-ins, the SDK interop script, scratch files, and a tiny
-- misbehaving server. Every process started here listens on 127.0.0.1 on a port the OS picked.
local json = require "lufa.json"
local lufa = require "lufa"

local S = {}

function S.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs a shell command; returns its stdout, or raises with its output when it fails.
function S.run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, status = p:close()
  if not ok then error(("command failed (%s): %s\n%s"):format(tostring(status), cmd, out), 2) end
  return out
end

function S.tmpdir()
  return (S.run("mktemp -d /tmp/lufa-blob-spec.XXXXXX"):gsub("%s+$", ""))
end

function S.remove_tree(dir)
  if dir and dir:match("^/tmp/lufa%-blob%-spec%.") then os.execute("rm -rf " .. S.quote(dir)) end
end

--- Starts the stand-ins (optionally with TLS); returns the state dir and the env file as a table.
function S.start_emulators(tls)
  local dir = S.tmpdir()
  S.run("scripts/emulators/start --state " .. S.quote(dir) .. (tls and " --tls" or ""))
  local env = {}
  for line in io.lines(dir .. "/env") do
    local k, v = line:match("^([%w_]+)='(.*)'$")
    if k then env[k] = v:gsub("'\\''", "'") end
  end
  return dir, env
end

function S.stop_emulators(dir)
  if dir then os.execute("scripts/emulators/stop --state " .. S.quote(dir) .. " >/dev/null 2>&1") end
  S.remove_tree(dir)
end

--- Runs tests/support/blob_sdk.mjs; returns its JSON answer.
function S.sdk(command, args, env)
  local parts = { "node tests/support/blob_sdk.mjs", command }
  for k, v in pairs(args) do parts[#parts + 1] = "--" .. k .. " " .. S.quote(v) end
  local prefix = ""
  for k, v in pairs(env or {}) do prefix = prefix .. k .. "=" .. S.quote(v) .. " " end
  local out = S.run(prefix .. table.concat(parts, " "))
  local last = out:match("([^\n]+)\n*$") or ""
  local value, err = json.decode(last)
  if value == nil then error("blob_sdk.mjs " .. command .. " printed no JSON: " .. tostring(err) .. "\n" .. out, 2) end
  return value
end

--- Writes `size` random bytes to path (in 1 MiB pieces) and returns the file's SHA-256 (hex).
function S.random_file(path, size)
  S.run(("head -c %d /dev/urandom > %s"):format(size, S.quote(path)))
  return S.sha256(path)
end

function S.sha256(path)
  return (S.run("sha256sum " .. S.quote(path)):match("^(%x+)"))
end

function S.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- Names of files in dir matching a Lua pattern.
function S.files(dir, pattern)
  local out = {}
  for name in S.run("ls -A " .. S.quote(dir)):gmatch("[^\n]+") do
    if name:match(pattern) then out[#out + 1] = name end
  end
  return out
end

-- A server that looks like Blob Storage for reads but cuts every body short: it announces `size` bytes
-- (Content-Length, or Content-Range for ranged reads) and sends half of what it promised. With mode
-- "close" it omits Content-Length and closes the connection instead, so only a size check can notice.
-- Mode "busy" answers 503 ServerBusy twice, then the whole body; mode "bad" always answers 400.
-- GET /_count tells how many requests came before it.
local TRUNCATING_SERVER = [[
const http = require('node:http');
const size = Number(process.argv[2]), mode = process.argv[3];
let requests = 0;
const server = http.createServer((req, res) => {
  requests++;
  if (req.url.startsWith('/_count')) { res.end(String(requests - 1)); return; }
  const range = /bytes=(\d+)-(\d+)/.exec(req.headers['x-ms-range'] || '');
  let first = 0, last = size - 1, status = 200;
  const headers = { 'x-ms-request-id': 'req-' + requests, 'ETag': '"0x1"', 'Accept-Ranges': 'bytes' };
  if (range) {
    first = Number(range[1]); last = Math.min(Number(range[2]), size - 1); status = 206;
    headers['Content-Range'] = `bytes ${first}-${last}/${size}`;
  }
  const length = last - first + 1;
  if (mode === 'busy' && requests <= 2) {
    res.writeHead(503, { 'x-ms-error-code': 'ServerBusy', 'x-ms-request-id': 'req-' + requests, 'Content-Length': 0 });
    res.end();
    return;
  }
  if (mode === 'busy' || mode === 'bad') {
    const body = mode === 'busy' ? Buffer.alloc(size, 97)
      : Buffer.from('<?xml version="1.0" encoding="utf-8"?><Error><Code>InvalidHeaderValue</Code><Message>no.</Message></Error>');
    res.writeHead(mode === 'busy' ? 200 : 400, { ...headers, 'Content-Length': body.length,
      ...(mode === 'bad' ? { 'x-ms-error-code': 'InvalidHeaderValue' } : {}) });
    res.end(body);
    return;
  }
  if (req.method === 'HEAD') { headers['Content-Length'] = size; res.writeHead(200, headers); res.end(); return; }
  if (mode === 'close') headers['Connection'] = 'close'; else headers['Content-Length'] = length;
  res.writeHead(status, headers);
  res.write(Buffer.alloc(Math.floor(length / 2), 97), () => {
    if (mode === 'close') res.end(); else res.socket.destroy();
  });
});
server.listen(0, '127.0.0.1', () => { process.stdout.write(server.address().port + ' ' + process.pid + '\n'); });
// exit with the spec process that started us, even if it never gets to stop us
const owner = Number(process.argv[4]);
setInterval(() => { try { process.kill(owner, 0); } catch { process.exit(0); } }, 500).unref();
]]

--- The PID of this process (the lufa running the specs).
function S.own_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return math.tointeger(pid)
end

--- Starts the truncating server; returns its base URL and a function that stops it.
function S.truncating_server(size, mode)
  local dir = S.tmpdir()
  local script = dir .. "/server.js"
  local f = assert(io.open(script, "w"))
  f:write(TRUNCATING_SERVER)
  f:close()
  S.run(("node %s %d %s %d > %s/port 2>&1 &"):format(S.quote(script), size, mode or "cut", S.own_pid(),
    S.quote(dir)))
  local port, pid
  for _ = 1, 100 do
    local pf = io.open(dir .. "/port")
    if pf then
      port, pid = pf:read("n", "n")
      pf:close()
    end
    if port and pid then break end
    lufa.sleep(0.05)
  end
  assert(port and pid, "the truncating server did not start")
  return "http://127.0.0.1:" .. math.tointeger(port), function()
    os.execute(("kill %d 2>/dev/null"):format(math.tointeger(pid)))
    S.remove_tree(dir)
  end
end

return S
