-- lufa.http against the local test server (tests/support/httpd.mjs): requests, streaming to and from
-- files, transport errors, TLS, connection reuse, concurrency, retries and secrets.
local lufa = require "lufa"
local http = require "lufa.http"
local secret = require "lufa.secret"
local E = require "lufa.error"
local server = require "tests.support.server"

local decode = server.decode

-- ---- helpers ----

local util = require "tests.support.util"
local sh_quote = util.shell_quote

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local function sha256_file(path)
  return capture("sha256sum " .. sh_quote(path)):match("^(%x+)")
end

local write_file = util.write_file

local read_file = util.read_file

local function sha256(data)
  local tmp = os.tmpname()
  write_file(tmp, data)
  local h = sha256_file(tmp)
  os.remove(tmp)
  return h
end

local function make_dir()
  return capture("mktemp -d"):match("^(%S+)")
end

local function list_dir(dir)
  local names = {}
  for name in capture("ls -A " .. sh_quote(dir)):gmatch("[^\n]+") do names[#names + 1] = name end
  table.sort(names)
  return names
end

local function remove_dir(dir)
  if dir and dir:match("^/tmp/") then os.execute("rm -rf " .. sh_quote(dir)) end
end

local function lufa_binary()
  return capture("readlink /proc/" .. server.own_pid() .. "/exe"):match("^(.-)%s*$")
end

-- Runs a Lua script in a fresh lufa process with the given arguments: exit status, stdout+stderr.
local function run_lufa(code, args, env)
  local file = os.tmpname()
  write_file(file, code)
  local argv = {}
  for _, a in ipairs(args or {}) do argv[#argv + 1] = sh_quote(a) end
  local envs = {}
  for k, v in pairs(env or {}) do envs[#envs + 1] = k .. "=" .. sh_quote(v) end
  local out = capture(string.format("env %s %s %s %s 2>&1; echo \"exit=$?\"", table.concat(envs, " "),
    sh_quote(lufa_binary()), sh_quote(file), table.concat(argv, " ")))
  os.remove(file)
  return tonumber(out:match("exit=(%d+)%s*$")), out:gsub("exit=%d+%s*$", "")
end

local wait_until = util.wait_until

local function expect_error(code, res, err)
  assert.is_nil(res)
  assert.is_true(E.is(err), "expected a lufa.error, got " .. tostring(err))
  assert.are.equal("http", err.kind)
  assert.are.equal(code, err.code, "error was: " .. tostring(err))
  assert.are.equal("string", type(err.message))
  assert.are_not.equal("", err.message)
  assert.is_nil(tostring(err):match("^table: "), "tostring(err) must give the message")
  return err
end

local srv

setup(function() srv = server.start() end)
teardown(function() if srv then srv:stop() end end)

local function get(path, extra) return http.request(srv:opts(path, extra)) end

describe("lufa.http requests", function()
  it("sends each method as given", function()
    for _, method in ipairs { "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" } do
      local res = assert(get("/echo", { method = method }))
      assert.are.equal(200, res.status)
      assert.are.equal(method, decode(res.body).method)
    end
  end)

  it("HEAD gets the headers and no body", function()
    local res = assert(get("/bytes?n=1000", { method = "HEAD" }))
    assert.are.equal(200, res.status)
    assert.are.equal("1000", res.headers["content-length"])
    assert.are.equal("", res.body)
  end)

  it("defaults to GET, or to POST when there is a body", function()
    assert.are.equal("GET", decode(assert(get("/echo")).body).method)
    assert.are.equal("POST", decode(assert(get("/echo", { body = "x" })).body).method)
  end)

  it("sends request headers and adds no content type of its own", function()
    local res = assert(get("/echo", {
      method = "POST",
      body = "{}",
      headers = { ["X-Trace-Id"] = "abc-123", ["X-Number"] = 42, ["X-Empty"] = "" },
    }))
    local seen = decode(res.body).headers
    assert.are.equal("abc-123", seen["x-trace-id"])
    assert.are.equal("42", seen["x-number"])
    assert.are.equal("", seen["x-empty"])
    assert.is_nil(seen["content-type"])
    assert.is_nil(seen["expect"])
    local typed = decode(assert(get("/echo", { body = "{}", headers = { ["Content-Type"] = "application/json" } })).body)
    assert.are.equal("application/json", typed.headers["content-type"])
  end)

  it("looks response headers up in any case and joins repeated fields", function()
    local res = assert(get("/respond-headers?X-Custom=abc&X-Multi=1&X-Multi=2"))
    assert.are.equal("abc", res.headers["x-custom"])
    assert.are.equal("abc", res.headers["X-Custom"])
    assert.are.equal("abc", res.headers["X-CUSTOM"])
    assert.are.equal("1, 2", res.headers["x-multi"])
    assert.is_nil(res.headers["x-absent"])
  end)

  it("sends string bodies byte for byte, zeros included", function()
    for _, body in ipairs { "", "hello", "\0\1\2\255 binary\r\n\0", string.rep("0123456789", 100000) } do
      local seen = decode(assert(get("/echo", { method = "PUT", body = body })).body)
      assert.are.equal(#body, seen.body_length)
      assert.are.equal(sha256(body), seen.body_sha256)
    end
  end)

  it("sends secret bodies and header values (unwrapped only on the wire)", function()
    local token = secret("Bearer very-secret-token")
    local body = secret('{"password":"hunter2"}')
    local seen = decode(assert(get("/echo", { body = body, headers = { Authorization = token } })).body)
    assert.are.equal("Bearer very-secret-token", seen.headers.authorization)
    assert.are.equal(sha256('{"password":"hunter2"}'), seen.body_sha256)
  end)

  it("returns HTTP error statuses as responses, not errors", function()
    for _, status in ipairs { 400, 404, 429, 500, 503 } do
      local res, err = get("/status/" .. status)
      assert.is_nil(err)
      assert.are.equal(status, res.status)
      assert.are.equal("status " .. status .. "\n", res.body)
    end
  end)

  it("reads a chunked response", function()
    local res = assert(get("/chunked?chunks=4&size=3&delay_ms=5"))
    assert.are.equal(200, res.status)
    assert.are.equal("chunked", res.headers["transfer-encoding"])
    assert.are.equal("aaabbbcccddd", res.body)
  end)

  it("keeps a large body in memory intact, with and without a length", function()
    local n = 5 * 1024 * 1024 + 17
    local want = srv:json("/bytes-sha256?n=" .. n .. "&seed=3").sha256
    for _, chunked in ipairs { "0", "1" } do
      local res = assert(get("/bytes?n=" .. n .. "&seed=3&chunked=" .. chunked))
      assert.are.equal(n, #res.body)
      assert.are.equal(want, sha256(res.body))
    end
  end)

  it("keeps a large body as 32 KiB parts with body_parts, made one per step while other tasks run", function()
    local n = 20 * 1024 * 1024 + 5  -- large enough to be faulted in by a worker, with a short last part
    local want = srv:json("/bytes-sha256?n=" .. n .. "&seed=4").sha256
    for _, chunked in ipairs { "0", "1" } do
      local request = lufa.spawn(function()
        return get("/bytes?n=" .. n .. "&seed=4&chunked=" .. chunked, { body_parts = true })
      end)
      -- between two parts the request's task is queued ("ready"), not waiting for the transfer
      local queued = 0
      local watcher = lufa.spawn(function()
        while request:status() ~= "done" and request:status() ~= "failed" do
          if request:status() == "ready" then queued = queued + 1 end
          coroutine.yield()
        end
      end)
      local res = assert(request:wait())
      watcher:wait()
      assert.is_nil(res.body)
      assert.are.equal(n, res.size)
      local parts = res.body_parts
      assert.are.equal(math.ceil(n / 32768), #parts)
      for i = 1, #parts - 1 do assert.are.equal(32768, #parts[i]) end
      assert.are.equal(n % 32768, #parts[#parts])
      assert.are.equal(want, sha256(table.concat(parts)))
      assert.is_true(queued >= #parts - 1, "queued " .. queued .. " times for " .. #parts .. " parts")
    end
  end)

  it("refuses a body larger than max_body", function()
    local err = expect_error("too_large", get("/bytes?n=2000000", { max_body = 1000000 }))
    assert.matches("max_body", err.message)
  end)

  it("reports whether the connection was reused and how long it took", function()
    local res = assert(get("/echo"))
    assert.are.equal("boolean", type(res.reused))
    assert.are.equal("float", math.type(res.time))
  end)

  it("waits inside tasks without blocking the others", function()
    local t = lufa.spawn(function() return get("/delay?ms=50") end)
    local other_ran = false
    local o = lufa.spawn(function() other_ran = true end)
    o:wait()
    assert.is_true(other_ran)
    assert.are.equal(200, t:wait().status)
  end)
end)

describe("lufa.http with files", function()
  local dir
  before_each(function() dir = make_dir() end)
  after_each(function() remove_dir(dir) end)

  it("uploads body_file, whole or a range of it", function()
    local data = {}
    for i = 1, 5000 do data[i] = string.format("%08d", i) end
    data = table.concat(data)
    local path = dir .. "/in.bin"
    write_file(path, data)
    local whole = decode(assert(get("/upload", { method = "PUT", body_file = path })).body)
    assert.are.equal(#data, whole.length)
    assert.are.equal(sha256(data), whole.sha256)
    local part = decode(assert(get("/upload", { method = "PUT", body_file = path, body_offset = 1000,
      body_length = 12345 })).body)
    assert.are.equal(12345, part.length)
    assert.are.equal(sha256(data:sub(1001, 1000 + 12345)), part.sha256)
    local tail = decode(assert(get("/upload", { body_file = path, body_offset = 39000 })).body)
    assert.are.equal(1000, tail.length)
    assert.are.equal(sha256(data:sub(39001)), tail.sha256)
    local empty = decode(assert(get("/upload", { body_file = path, body_offset = #data })).body)
    assert.are.equal(0, empty.length)
  end)

  it("fails with code 'file' for an unreadable body_file, naming it", function()
    local err = expect_error("file", get("/upload", { body_file = dir .. "/missing.bin" }))
    assert.matches("missing%.bin", err.message)
    err = expect_error("file", get("/upload", { body_file = dir }))
    assert.matches("not a regular file", err.message)
    write_file(dir .. "/small", "0123456789")
    expect_error("file", get("/upload", { body_file = dir .. "/small", body_offset = 11 }))
    expect_error("file", get("/upload", { body_file = dir .. "/small", body_offset = 5, body_length = 6 }))
    assert.are.equal(0, srv:stats().in_flight)
  end)

  it("streams a download to output_file", function()
    local n = 3 * 1024 * 1024 + 5
    local out = dir .. "/download.bin"
    local res = assert(get("/bytes?n=" .. n .. "&seed=9", { output_file = out }))
    assert.are.equal(200, res.status)
    assert.are.equal(out, res.file)
    assert.are.equal(n, res.size)
    assert.is_nil(res.body)
    assert.are.equal(srv:json("/bytes-sha256?n=" .. n .. "&seed=9").sha256, sha256_file(out))
    assert.are.same({ "download.bin" }, list_dir(dir))
  end)

  it("creates an empty output_file for an empty body", function()
    local out = dir .. "/empty"
    local res = assert(get("/bytes?n=0", { output_file = out }))
    assert.are.equal(0, res.size)
    assert.are.equal("", read_file(out))
  end)

  it("replaces an existing output_file only on success", function()
    local out = dir .. "/dest"
    write_file(out, "original")
    assert(get("/bytes?n=10&seed=1", { output_file = out }))
    assert.are.equal(10, #read_file(out))
  end)

  it("leaves no partial file when the connection resets mid-body", function()
    local out = dir .. "/partial"
    expect_error("reset", get("/reset?when=mid&n=4000000", { output_file = out }))
    assert.are.same({}, list_dir(dir))
  end)

  it("leaves an existing destination untouched when the transfer fails", function()
    local out = dir .. "/keep"
    write_file(out, "precious")
    expect_error("reset", get("/reset?when=mid&n=4000000", { output_file = out }))
    assert.are.equal("precious", read_file(out))
    expect_error("reset", get("/reset", { output_file = out }))
    assert.are.equal("precious", read_file(out))
    assert.are.same({ "keep" }, list_dir(dir))
  end)

  it("does not write the file for an HTTP error status: the body stays in memory", function()
    local out = dir .. "/keep"
    write_file(out, "precious")
    local res = assert(get("/status/404", { output_file = out }))
    assert.are.equal(404, res.status)
    assert.are.equal("status 404\n", res.body)
    assert.is_nil(res.file)
    assert.are.equal("precious", read_file(out))
    local res2 = assert(get("/status/500", { output_file = dir .. "/absent" }))
    assert.are.equal(500, res2.status)
    assert.are.same({ "keep" }, list_dir(dir))
  end)

  it("leaves no partial file when the task is cancelled mid-download", function()
    local out = dir .. "/cancelled"
    local t = lufa.spawn(function()
      return get("/chunked?chunks=400&size=65536&delay_ms=50", { output_file = out })
    end)
    -- wait until the download has begun writing its temporary file, then cancel
    wait_until(function() return #list_dir(dir) > 0 end)
    t:cancel()
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.are.equal("cancelled", err.code)
    assert.are.same({}, list_dir(dir))
  end)

  it("fails with code 'file' when output_file cannot be written, before sending anything", function()
    local before = srv:stats().requests
    local err = expect_error("file", get("/bytes?n=10", { output_file = dir .. "/no/such/dir/out" }))
    assert.matches("no/such/dir/out", err.message)
    assert.are.equal(before + 1, srv:stats().requests)  -- only the stats request itself
  end)

  it("writes in place at output_offset", function()
    local out = dir .. "/assembled"
    write_file(out, "..........")
    local res = assert(get("/echo?status=200", { output_file = out, output_offset = 0, method = "HEAD" }))
    assert.are.equal(200, res.status)
    assert(get("/chunked?chunks=1&size=3", { output_file = out, output_offset = 4 }))
    assert.are.equal("....aaa...", read_file(out))
  end)
end)

describe("lufa.http large bodies", function()
  it("streams 200 MB down to a file and back up in bounded memory", function()
    local dir = make_dir()
    local n = 200 * 1024 * 1024
    local status, out = run_lufa([[
      local http = require "lufa.http"
      local url, path, n = arg[1], arg[2], arg[3]
      local res = assert(http.request { url = url .. "/bytes?seed=42&n=" .. n, output_file = path })
      print("down", res.status, res.size)
      local up = assert(http.request { url = url .. "/upload", method = "PUT", body_file = path })
      print("up", up.status, up.body)
      for line in io.lines("/proc/self/status") do
        local kb = line:match("^VmHWM:%s*(%d+)")
        if kb then print("hwm_kb", kb) end
      end
    ]], { srv.url, dir .. "/big.bin", tostring(n) })
    local ok, err = pcall(function()
      assert.are.equal(0, status, out)
      assert.matches("down\t200\t" .. n, out)
      local want = srv:json("/bytes-sha256?seed=42&n=" .. n).sha256
      assert.are.equal(want, sha256_file(dir .. "/big.bin"))
      local up = decode(out:match("up\t200\t(%b{})"))
      assert.are.equal(n, up.length)
      assert.are.equal(want, up.sha256)
      local hwm_mb = tonumber(out:match("hwm_kb\t(%d+)")) / 1024
      -- the whole body would be 200 MB; streaming keeps the process far below that
      assert.is_true(hwm_mb < 100, string.format("peak RSS %.1f MB", hwm_mb))
    end)
    remove_dir(dir)
    assert(ok, err)
  end)

  it("waits for a slow reader during an upload", function()
    local dir = make_dir()
    local path = dir .. "/up.bin"
    assert(get("/bytes?n=4000000&seed=5", { output_file = path }))
    local res = assert(get("/upload?pause_ms=2", { method = "PUT", body_file = path }))
    local seen = decode(res.body)
    assert.are.equal(4000000, seen.length)
    assert.are.equal(sha256_file(path), seen.sha256)
    remove_dir(dir)
  end)
end)

describe("lufa.http transport errors", function()
  it("a connection reset before the response is 'reset'", function()
    expect_error("reset", get("/reset"))
  end)

  it("a connection reset mid-body is 'reset'", function()
    expect_error("reset", get("/reset?when=mid&n=4000000"))
  end)

  it("a request slower than timeout is 'timeout'", function()
    local err = expect_error("timeout", get("/delay?ms=10000", { timeout = 0.2 }))
    assert.matches("/delay", err.message)
  end)

  it("a stalled body past low_speed_time is 'timeout'", function()
    expect_error("timeout", get("/chunked?chunks=3&size=1&delay_ms=5000", { low_speed_time = 1 }))
  end)

  it("a refused connection is 'connect'", function()
    expect_error("connect", http.request { url = "http://127.0.0.1:1/" })
  end)

  it("a bad URL is 'url'", function()
    expect_error("url", http.request { url = "not a url" })
    expect_error("url", http.request { url = "http://" })
    expect_error("url", http.request { url = "ftp://127.0.0.1/" })
    expect_error("url", http.request { url = "file:///etc/passwd" })
  end)

  it("errors are lufa.error tables that print as one line", function()
    local _, err = http.request { url = "http://127.0.0.1:1/x" }
    local text = tostring(err)
    assert.matches("127%.0%.0%.1:1", text)
    assert.is_nil(text:find("\n"))
    assert.are.equal("string", type(err.curl_message))
    local ok, raised = pcall(error, err)
    assert.is_false(ok)
    assert.are.equal(err, raised)
  end)

  it("raises for misuse", function()
    assert.has_error(function() http.request("http://x/") end)
    assert.has_error(function() http.request {} end)
    assert.has_error(function() http.request { url = srv.url, body = "a", body_file = "/etc/hostname" } end)
    assert.has_error(function() http.request { url = srv.url, body = {} } end)
    assert.has_error(function() http.request { url = srv.url, headers = { ["X-A"] = "a\r\nX-Injected: 1" } } end)
    assert.has_error(function() http.request { url = srv.url, headers = { ["Bad:Name"] = "v" } } end)
    assert.has_error(function() http.request { url = srv.url, headers = { [1] = "v" } } end)
    assert.has_error(function() http.request { url = srv.url, timeout = "soon" } end)
    assert.has_error(function() http.request { url = srv.url, headers = "X-A: 1" } end)
  end)
end)

describe("lufa.http over TLS", function()
  local tls
  setup(function() tls = server.start { tls = true } end)
  teardown(function() if tls then tls:stop() end end)

  it("verifies the server with ca_file", function()
    local res = assert(http.request { url = tls.url .. "/echo", ca_file = tls.ca_file })
    assert.are.equal(200, res.status)
    local res2 = assert(http.request { url = tls.url:gsub("127%.0%.0%.1", "localhost") .. "/echo", ca_file = tls.ca_file })
    assert.are.equal(200, res2.status)
  end)

  it("fails with 'tls' when the CA is unknown", function()
    local err = expect_error("tls", http.request { url = tls.url .. "/echo" })
    assert.matches("certificate", err.message)
  end)

  it("fails with 'tls' for a CA file that does not exist", function()
    local err = expect_error("tls", http.request { url = tls.url .. "/echo", ca_file = "/nonexistent/ca.pem" })
    assert.are.equal("http", err.kind)
  end)

  it("tls_verify = false works and warns once per host on stderr", function()
    local status, out = run_lufa([[
      local http = require "lufa.http"
      for i = 1, 3 do
        local res = assert(http.request { url = arg[1] .. "/echo", tls_verify = false })
        print("status", res.status)
      end
    ]], { tls.url })
    assert.are.equal(0, status, out)
    local _, statuses = out:gsub("status\t200", "")
    assert.are.equal(3, statuses)
    local _, warnings = out:gsub("TLS certificate verification is off", "")
    assert.are.equal(1, warnings)
  end)

  it("takes its default CA from LUFA_CA_FILE", function()
    local status, out = run_lufa([[
      local res = assert(require("lufa.http").request { url = arg[1] .. "/echo" })
      print("status", res.status)
    ]], { tls.url }, { LUFA_CA_FILE = tls.ca_file })
    assert.are.equal(0, status, out)
    assert.matches("status\t200", out)
  end)

  it("reuses a TLS connection", function()
    local a = assert(http.request { url = tls.url .. "/echo", ca_file = tls.ca_file })
    local b = assert(http.request { url = tls.url .. "/echo", ca_file = tls.ca_file })
    assert.is_true(b.reused)
    assert.are.equal(decode(a.body).connection, decode(b.body).connection)
  end)
end)

describe("lufa.http connections and concurrency", function()
  it("reuses one connection for sequential requests", function()
    local before = srv:stats().connections
    local ids = {}
    for i = 1, 5 do
      local res = assert(get("/echo"))
      ids[i] = decode(res.body).connection
      if i > 1 then assert.is_true(res.reused, "request " .. i .. " was not reused") end
    end
    for i = 2, 5 do assert.are.equal(ids[1], ids[i]) end
    -- the stats requests themselves share the pool too: at most one new connection for all of it
    assert.is_true(srv:stats().connections - before <= 1)
  end)

  it("runs 100 tasks' requests concurrently (each answers after 300 ms)", function()
    local tasks = {}
    for i = 1, 100 do
      tasks[i] = lufa.spawn(function()
        return assert(get("/delay?ms=300&group=hundred&wait_for=100"))
      end)
    end
    for i = 1, 100 do
      local res = tasks[i]:wait()
      assert.are.equal(200, res.status)
      -- the server held every answer until all 100 requests were in flight together
      assert.is_true(decode(res.body).reached, "request " .. i .. " did not see the others")
    end
    local g = srv:stats("hundred")
    assert.are.equal(100, g.count)
    assert.are.equal(100, g.max_in_flight)
    assert.is_true(g.last_start <= g.first_end)
  end)
end)

describe("http.request_with_retry", function()
  local fast = { base_delay = 0.01, max_delay = 0.05 }
  local function with(policy)
    local p = {}
    for k, v in pairs(fast) do p[k] = v end
    for k, v in pairs(policy or {}) do p[k] = v end
    return p
  end
  local key_seq = 0
  local function key()
    key_seq = key_seq + 1
    return "k" .. key_seq .. "-" .. server.own_pid()
  end
  local function attempts(k) return srv:json("/attempts?key=" .. k).attempts end

  it("honours Retry-After in seconds on 429", function()
    local k = key()
    local delays = {}
    local res = assert(http.request_with_retry(srv:opts("/flaky?status=429&fail=1&retry_after=1&key=" .. k),
      with { on_retry = function(attempt, delay, r) delays[attempt] = { delay, r.status } end }))
    assert.are.equal(200, res.status)
    assert.are.equal(2, decode(res.body).attempts)
    assert.are.equal(2, attempts(k))
    assert.are.same({ { 1, 429 } }, delays)
  end)

  it("honours Retry-After as an HTTP date", function()
    local k = key()
    local delay
    local res = assert(http.request_with_retry(srv:opts("/flaky?status=503&fail=1&retry_after_date=1&key=" .. k),
      with { on_retry = function(_, d) delay = d end }))
    assert.are.equal(200, res.status)
    assert.is_true(delay >= 0 and delay <= 2, "delay " .. tostring(delay))
  end)

  it("retries 503 with growing, jittered delays until success", function()
    local k = key()
    local delays = {}
    local res = assert(http.request_with_retry(srv:opts("/flaky?status=503&fail=3&key=" .. k),
      { base_delay = 0.01, max_delay = 1, on_retry = function(a, d) delays[a] = d end }))
    assert.are.equal(200, res.status)
    assert.are.equal(4, attempts(k))
    assert.are.equal(3, #delays)
    for a, d in ipairs(delays) do
      local full = 0.01 * 2 ^ (a - 1)
      assert.is_true(d >= full / 2 and d <= full, string.format("attempt %d delay %g", a, d))
    end
  end)

  it("caps delays at max_delay", function()
    local k = key()
    local delays = {}
    assert(http.request_with_retry(srv:opts("/flaky?status=500&fail=3&key=" .. k),
      { base_delay = 0.02, max_delay = 0.02, on_retry = function(a, d) delays[a] = d end }))
    for _, d in ipairs(delays) do assert.is_true(d <= 0.02) end
  end)

  it("retries every listed status: 408 429 500 502 503 504", function()
    for _, status in ipairs { 408, 429, 500, 502, 503, 504 } do
      local k = key()
      local res = assert(http.request_with_retry(srv:opts("/flaky?fail=1&status=" .. status .. "&key=" .. k), with()))
      assert.are.equal(200, res.status)
      assert.are.equal(2, attempts(k))
    end
  end)

  it("does not retry other statuses", function()
    for _, status in ipairs { 400, 401, 404, 501 } do
      local k = key()
      local res = assert(http.request_with_retry(srv:opts("/flaky?fail=1&status=" .. status .. "&key=" .. k), with()))
      assert.are.equal(status, res.status)
      assert.are.equal(1, attempts(k))
    end
  end)

  it("does not retry POST unless retry_unsafe is set", function()
    local k = key()
    local res = assert(http.request_with_retry(srv:opts("/flaky?fail=1&key=" .. k, { method = "POST", body = "x" }), with()))
    assert.are.equal(503, res.status)
    assert.are.equal(1, attempts(k))
    local k2 = key()
    local res2 = assert(http.request_with_retry(srv:opts("/flaky?fail=1&key=" .. k2, { body = "x" }),
      with { retry_unsafe = true }))
    assert.are.equal(200, res2.status)
    assert.are.equal(2, attempts(k2))
  end)

  it("retries transport errors", function()
    local k = key()
    local res = assert(http.request_with_retry(srv:opts("/flaky?mode=reset&fail=2&key=" .. k), with()))
    assert.are.equal(200, res.status)
    assert.are.equal(3, attempts(k))
  end)

  it("does not retry a bad URL or an unreadable body_file", function()
    local retried = false
    local policy = with { on_retry = function() retried = true end }
    expect_error("url", http.request_with_retry({ url = "not a url" }, policy))
    expect_error("file", http.request_with_retry(srv:opts("/upload", { method = "PUT", body_file = "/nonexistent" }), policy))
    assert.is_false(retried)
  end)

  it("gives up after `attempts`, returning the last response", function()
    local k = key()
    local res = assert(http.request_with_retry(srv:opts("/flaky?fail=100&status=503&key=" .. k), with { attempts = 3 }))
    assert.are.equal(503, res.status)
    assert.are.equal(3, attempts(k))
    local res2, err = http.request_with_retry({ url = "http://127.0.0.1:1/" }, with { attempts = 2 })
    expect_error("connect", res2, err)
  end)

  it("stops when its task is cancelled during the backoff", function()
    local k = key()
    local t = lufa.spawn(function()
      return http.request_with_retry(srv:opts("/flaky?fail=100&status=503&retry_after=3600&key=" .. k),
        { max_retry_after = 3600 })
    end)
    wait_until(function() return attempts(k) == 1 end)
    lufa.sleep(0.01)
    t:cancel()
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.are.equal("cancelled", err.code)
    assert.are.equal(1, attempts(k))
  end)
end)

describe("http.retry_after", function()
  it("parses delta seconds", function()
    assert.are.equal(120, http.retry_after("120"))
    assert.are.equal(0, http.retry_after("0"))
    assert.are.equal(5, http.retry_after(" 5 "))
  end)

  it("parses an HTTP date relative to now", function()
    local now = 1445412480 - 10  -- 2015-10-21 07:27:50 UTC
    assert.are.equal(10, http.retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now))
    assert.are.equal(86400 + 10, http.retry_after("Thu, 22 Oct 2015 07:28:00 GMT", now))
    assert.are.equal(0, http.retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now))
    assert.are.equal(1 + 10, http.retry_after("Sun, 01 Mar 2015 00:00:01 GMT", 1425168000 - 10))  -- after Feb
    assert.are.equal(10, http.retry_after("Tue, 01 Mar 2016 00:00:00 GMT", 1456790400 - 10))  -- leap year
  end)

  it("returns nil for anything else", function()
    assert.is_nil(http.retry_after(nil))
    assert.is_nil(http.retry_after(""))
    assert.is_nil(http.retry_after("soon"))
    assert.is_nil(http.retry_after("-5"))
    assert.is_nil(http.retry_after("Wed, 21 Foo 2015 07:28:00 GMT"))
    assert.is_nil(http.retry_after(42))
  end)
end)

describe("secrets in lufa.http", function()
  local token = "tok-9f8e7d6c5b4a"
  local function assert_no_secret(err)
    for k, v in pairs(err) do
      assert.is_nil(tostring(v):find(token, 1, true), "field " .. tostring(k) .. " shows the secret")
    end
    assert.is_nil(tostring(err):find(token, 1, true))
  end

  it("never shows secret headers or bodies in transport errors", function()
    local opts = { headers = { Authorization = secret("Bearer " .. token) }, body = secret(token) }
    local _, err = http.request { url = "http://127.0.0.1:1/", headers = opts.headers, body = opts.body }
    assert_no_secret(expect_error("connect", nil, err))
    _, err = get("/delay?ms=5000", { timeout = 0.1, headers = opts.headers, body = opts.body })
    assert_no_secret(expect_error("timeout", nil, err))
    _, err = get("/reset", { headers = opts.headers, body = opts.body })
    assert_no_secret(expect_error("reset", nil, err))
  end)

  it("never shows a secret header value in a misuse error", function()
    local ok, msg = pcall(http.request, { url = srv.url, headers = { ["X-Key"] = secret(token .. "\r\nX-Evil: 1") } })
    assert.is_false(ok)
    assert.matches("X%-Key", tostring(msg))
    assert.is_nil(tostring(msg):find(token, 1, true))
  end)
end)
