-- Transfer progress: lufa.http's `progress` option against the loopback test server, the tracker that adds
-- up the parts of a blob transfer, the bar's lines, and lufa.term's rules (NO_COLOR, TERM=dumb, no tty).
local http = require "lufa.http"
local progress = require "lufa.progress"
local term = require "lufa.term"
local server = require "tests.support.server"

local function env(t) return function(name) return t[name] end end
local function yes() return true end
local function no() return false end

local function collector()
  local calls = {}
  return calls, function(done, total, rate) calls[#calls + 1] = { done, total, rate } end
end

local function assert_monotonic(calls, total)
  assert.is_true(#calls >= 1)
  for i = 2, #calls do
    assert.is_true(calls[i][1] >= calls[i - 1][1], "went backwards at call " .. i)
  end
  assert.are.equal(total, calls[#calls][1])
  assert.are.equal(total, calls[#calls][2])
  for _, c in ipairs(calls) do assert.is_true(c[1] <= total and c[3] >= 0) end
end

describe("lufa.http progress", function()
  local srv, interval
  setup(function()
    srv = server.start()
    interval = http.progress_interval
    http.progress_interval = 0.005
  end)
  teardown(function()
    http.progress_interval = interval
    srv:stop()
  end)

  it("sees a download's counters grow to its length", function()
    local calls, fn = collector()
    local res = assert(http.request { url = srv.url .. "/chunked?chunks=20&size=50000&delay_ms=10", progress = fn })
    assert.are.equal(1000000, #res.body)
    assert_monotonic(calls, 1000000)
    assert.is_true(#calls >= 3, "only " .. #calls .. " calls")  -- the counters were read while it ran
    assert.is_true(calls[1][1] < 1000000)
  end)

  it("counts a download with a length, streamed to a file", function()
    local path = os.tmpname()
    local calls, fn = collector()
    local res = assert(http.request { url = srv.url .. "/bytes?n=3000000", output_file = path, progress = fn })
    os.remove(path)
    assert.are.equal(3000000, res.size)
    assert_monotonic(calls, 3000000)
    -- before the headers the total is unknown (nil); from then on Content-Length gives it
    local known = false
    for _, c in ipairs(calls) do
      if c[2] ~= nil then known = true end
      if known then assert.are.equal(3000000, c[2]) end
    end
  end)

  it("counts an upload from a file", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(string.rep("u", 2500000))
    f:close()
    local calls, fn = collector()
    local res = assert(http.request { url = srv.url .. "/upload", method = "PUT", body_file = path, progress = fn })
    os.remove(path)
    assert.are.equal(200, res.status)
    assert_monotonic(calls, 2500000)
  end)

  it("raises an error of the function after the request, and refuses a non-function", function()
    local ok, err = pcall(http.request, { url = srv.url .. "/bytes?n=1000", progress = function() error("stop here") end })
    assert.is_false(ok)
    assert.matches("stop here", err)
    ok, err = pcall(http.request, { url = srv.url .. "/bytes?n=10", progress = true })
    assert.is_false(ok)
    assert.matches("progress_spec.lua:%d+: bad request option 'progress' %(function expected, got boolean%)", err)
    ok, err = pcall(http.request, { url = srv.url .. "/bytes?n=10", meter = {} })
    assert.is_false(ok)
    assert.matches("bad request option 'meter'", err)
  end)

  it("leaves no ticker task behind", function()
    local lufa = require "lufa"
    local before = lufa.tasks()
    assert(http.request { url = srv.url .. "/bytes?n=100", progress = function() end })
    assert.are.equal(before, lufa.tasks())
  end)
end)

describe("the progress tracker", function()
  local clock = 0
  local function now() return clock end

  it("adds up parts, never goes backwards when a part starts again, and ends at the total", function()
    local calls, fn = collector()
    local t = progress.tracker(fn, { total = 300, now = now })
    t:tell(true)
    local a, b = t:part("a"), t:part("b")
    clock = 1; a(50)
    clock = 2; b(80)
    clock = 3; b(0)  -- b retried: starts from 0 again
    clock = 4; t:complete("a", 100)
    clock = 5; b(100)
    clock = 6; t:complete("b", 100)
    clock = 7; t:complete("c", 100)
    local dones = {}
    for i, c in ipairs(calls) do dones[i] = c[1] end
    assert.are.same({ 0, 50, 130, 130, 200, 200, 300 }, dones)
    assert.are.equal(300, calls[#calls][2])
    assert.are.equal(300 / 7, calls[#calls][3])
  end)

  it("tells a function at most every interval, but always at a part's end", function()
    local calls, fn = collector()
    clock = 10
    local t = progress.tracker(fn, { total = 1000, now = now })
    local p = t:part(1)
    for i = 1, 99 do
      clock = 10 + i * 0.001
      p(i * 10)
    end
    assert.are.equal(1, #calls)  -- less than 0.1 s passed: only the first call
    t:complete(1, 990)
    assert.are.equal(2, #calls)  -- a part's end is always told to a function
    clock = 10.101
    t:part(2)(10)  -- the last bytes: the total is always told, however soon
    assert.are.equal(3, #calls)
    assert.are.same({ 1000, 1000 }, { calls[3][1], calls[3][2] })
  end)

  it("redraws a bar or the live view at most every interval, also when parts end faster", function()
    local seen = {}
    progress.observe(function(t, ended) if not ended then seen[#seen + 1] = t.done end end)
    clock = 100
    local t = progress.tracker(nil, { total = 100, now = now })
    progress.observe(nil)
    t:tell(true)
    for i = 1, 10 do
      clock = 100 + i * 0.001
      t:complete(i, 10)
    end
    assert.are.same({ 0, 100 }, seen)  -- the start and the end, nothing of the 9 parts between
  end)

  it("takes the total of a part that is the whole transfer", function()
    local calls, fn = collector()
    clock = 200
    local t = progress.tracker(fn, { now = now })
    local p = t:part(1, true)
    p(0, nil)
    clock = 201
    p(10, 40)
    assert.are.same({ { 0, nil }, { 10, 40 } }, { { calls[1][1], calls[1][2] }, { calls[2][1], calls[2][2] } })
  end)

  it("does nothing without a sink and refuses a wrong one", function()
    local t = progress.tracker(nil)
    assert.is_false(t:active())
    assert.is_nil(t:part(1))
    t:complete(1, 10)
    t:finish()
    assert.has_error(function() progress.tracker(42) end)
  end)
end)

describe("the progress bar", function()
  local function stream()
    local s = { text = "" }
    function s:write(...) for _, v in ipairs({ ... }) do self.text = self.text .. v end return self end
    function s:flush() end
    return s
  end

  it("shows name, size, percent, rate and time left", function()
    assert.are.equal("model.bin [##########..........]  50% 5.0 MiB/10.0 MiB 1.0 MiB/s ETA 0:05",
      progress.line("model.bin", 5 * 1048576, 10 * 1048576, 1048576))
    assert.are.equal("model.bin  50% 5.0 MiB/10.0 MiB 1.0 MiB/s ETA 0:05",
      progress.line("model.bin", 5 * 1048576, 10 * 1048576, 1048576, true))
    assert.are.equal("x 512 B", progress.line("x", 512, nil, 0))
    assert.are.equal("x [....................]   0% 0 B/3.6 KiB 1 B/s ETA 1:01:01", progress.line("x", 0, 3661, 1))
  end)

  it("redraws in place on a terminal and ends with a newline", function()
    local s = stream()
    local bar = progress.bar("f", { stream = s, caps = { tty = true, redraw = true, color = true } })
    bar.draw(1, 2, 1)
    bar.draw(2, 2, 1)
    bar.finish()
    assert.are.equal("\r\27[2Kf [##########..........]  50% 1 B/2 B 1 B/s ETA 0:01" ..
      "\r\27[2Kf [####################] 100% 2 B/2 B 1 B/s\n", s.text)
  end)

  it("is plain and narrow with TERM=dumb: no escape at all", function()
    local s = stream()
    local bar = progress.bar("f", { stream = s, caps = term.caps(2, env { TERM = "dumb" }, yes) })
    bar.draw(1, 4, 0)
    bar.draw(4, 4, 0)
    bar.finish()
    assert.is_nil(s.text:find("\27", 1, true))
    assert.are.equal("\rf  25% 1 B/4 B\rf 100% 4 B/4 B\n", s.text)
  end)

  it("is off without a terminal, with CI set, and at log level error", function()
    local tty = { tty = true, redraw = true, color = true }
    assert.is_true(progress.enabled(tty, env {}))
    assert.is_false(progress.enabled({ tty = false }, env {}))
    assert.is_false(progress.enabled(tty, env { CI = "true" }))
    assert.is_true(progress.enabled(tty, env { CI = "" }))
    local log = require "lufa.log"
    local level = log.level()
    log.configure { level = "error" }
    local quiet = progress.enabled(tty, env {})
    log.configure { level = level }
    assert.is_false(quiet)
  end)
end)

describe("lufa.term", function()
  it("colours and redraws a terminal", function()
    assert.are.same({ tty = true, redraw = true, color = true }, term.caps(2, env { TERM = "xterm" }, yes))
    assert.are.equal("\27[31mx\27[0m", term.paint(term.caps(2, env { TERM = "xterm" }, yes), "red", "x"))
  end)

  it("does not colour with NO_COLOR set to anything but empty", function()
    assert.are.same({ tty = true, redraw = true, color = false }, term.caps(2, env { TERM = "xterm", NO_COLOR = "0" }, yes))
    assert.are.same({ tty = true, redraw = true, color = true }, term.caps(2, env { TERM = "xterm", NO_COLOR = "" }, yes))
  end)

  it("neither colours nor redraws with TERM=dumb or without a terminal", function()
    local dumb = term.caps(2, env { TERM = "dumb" }, yes)
    assert.are.same({ tty = true, redraw = false, color = false }, dumb)
    assert.are.equal("x", term.paint(dumb, "red", "x"))
    assert.are.equal("", term.up(dumb, 3))
    assert.are.equal("\r", term.clear_line(dumb))
    assert.are.same({ tty = false, redraw = false, color = false }, term.caps(2, env { TERM = "xterm" }, no))
  end)
end)
