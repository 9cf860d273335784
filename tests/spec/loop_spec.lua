-- The event loop and tasks: lufa.spawn/sleep/now/run/current, task:wait/cancel/status.
-- Each `it` runs in the main chunk, so every wait here drives the loop itself until it is over.
local lufa = require "lufa"
local http = require "lufa.http"
local server = require "tests.support.server"

local function lufa_binary()
  local p = io.popen("readlink /proc/" .. server.own_pid() .. "/exe")
  local path = p:read("l")
  p:close()
  return path
end

-- Runs code in a fresh lufa process: returns its exit status and everything it printed (stdout + stderr).
local function run_lufa(code)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(code)
  f:close()
  local p = io.popen(string.format("'%s' %s 2>&1; echo \"exit=$?\"", lufa_binary(), file))
  local out = p:read("a")
  p:close()
  os.remove(file)
  local status = tonumber(out:match("exit=(%d+)%s*$"))
  return status, out:gsub("exit=%d+%s*$", "")
end

-- A to-be-closed value that records each close (and the error it was given) in `log`.
local function closer(log, name)
  return setmetatable({}, { __close = function(_, err) log[#log + 1] = { name = name, err = err } end })
end

local wait_until = require("tests.support.util").wait_until

describe("lufa tasks", function()
  it("wait returns every result of the task function, nils included", function()
    local t = lufa.spawn(function(a, b) return a + b, "x", nil end, 1, 2)
    local r = table.pack(t:wait())
    assert.are.equal(3, r.n)
    assert.are.equal(3, r[1])
    assert.are.equal("x", r[2])
    assert.is_nil(r[3])
    assert.are.equal("done", t:status())
    -- a finished task can be waited for again and gives the same results
    assert.are.same({ 3, "x" }, { t:wait() })
  end)

  it("passes spawn arguments through unchanged", function()
    local tbl = {}
    local t = lufa.spawn(function(...) return select("#", ...), ... end, nil, tbl, nil)
    local n, a, b, c = t:wait()
    assert.are.equal(3, n)
    assert.is_nil(a)
    assert.are.equal(tbl, b)
    assert.is_nil(c)
  end)

  it("wait raises the task's error; an error object keeps its identity", function()
    local t = lufa.spawn(function() lufa.sleep(0); error("boom-123") end)
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.matches("boom%-123", tostring(err))
    assert.are.equal("failed", t:status())

    local obj = { why = "custom" }
    local t2 = lufa.spawn(function() error(obj) end)
    local ok2, err2 = pcall(t2.wait, t2)
    assert.is_false(ok2)
    assert.are.equal(obj, err2)
    -- waiting again raises the same error again
    local ok3, err3 = pcall(t2.wait, t2)
    assert.is_false(ok3)
    assert.are.equal(obj, err3)
  end)

  it("reports its status through its life", function()
    local seen
    local t = lufa.spawn(function()
      seen = lufa.current():status()
      lufa.sleep(0.01)
    end)
    assert.are.equal("ready", t:status())
    lufa.sleep(0)
    assert.are.equal("running", seen)
    assert.are.equal("waiting", t:status())
    t:wait()
    assert.are.equal("done", t:status())
    assert.matches("^lufa%.task %(.*%): done$", tostring(t))
  end)

  it("lufa.current() is the running task, nil outside tasks and in plain coroutines", function()
    assert.is_nil(lufa.current())
    local inner
    local t
    t = lufa.spawn(function()
      inner = coroutine.wrap(function() return lufa.current() end)()
      return lufa.current()
    end)
    assert.are.equal(t, t:wait())
    assert.is_nil(inner)
  end)

  it("runs a task nobody references to the end (the loop anchors it)", function()
    local finished = false
    lufa.spawn(function() lufa.sleep(0.01); finished = true end)
    collectgarbage()
    collectgarbage()
    wait_until(function() return finished end)
    assert.is_true(finished)
  end)

  it("coroutine.yield() inside a task gives the other tasks a turn", function()
    local order = {}
    local function worker(name)
      return function()
        for i = 1, 3 do
          order[#order + 1] = name .. i
          coroutine.yield()
        end
      end
    end
    local a, b = lufa.spawn(worker("a")), lufa.spawn(worker("b"))
    a:wait()
    b:wait()
    assert.are.same({ "a1", "b1", "a2", "b2", "a3", "b3" }, order)
  end)

  it("a wait outside tasks drives the loop while other tasks progress", function()
    local ticks = 0
    local ticker = lufa.spawn(function()
      while ticks < 5 do
        lufa.sleep(0.001)
        ticks = ticks + 1
      end
    end)
    -- the main chunk waits for a task that needs the ticker to progress
    local watcher = lufa.spawn(function()
      while ticks < 5 do lufa.sleep(0) end
      return ticks
    end)
    assert.are.equal(5, watcher:wait())
    assert.are.equal("done", ticker:status())
  end)

  it("lufa.run() runs every task to its end", function()
    local done = {}
    for i = 1, 5 do lufa.spawn(function() lufa.sleep(0.001 * i); done[#done + 1] = i end) end
    lufa.run()
    assert.are.same({ 1, 2, 3, 4, 5 }, done)
    assert.are.equal(0, lufa.tasks())
  end)

  it("1,000 tasks sleep concurrently: every sleep overlaps every other", function()
    local starts, ends = {}, {}
    local tasks = {}
    for i = 1, 1000 do
      tasks[i] = lufa.spawn(function()
        starts[i] = lufa.now()
        lufa.sleep(0.2)
        ends[i] = lufa.now()
        return i
      end)
    end
    for i = 1, 1000 do assert.are.equal(i, tasks[i]:wait()) end
    local max_start, min_end = -math.huge, math.huge
    for i = 1, 1000 do
      max_start = math.max(max_start, starts[i])
      min_end = math.min(min_end, ends[i])
    end
    assert.is_true(max_start < min_end, "the last task started after the first one woke up")
  end)

  it("sleeps wake in deadline order, equal deadlines first-in first-out", function()
    local order = {}
    local ts = {}
    for i, d in ipairs { 0.03, 0.01, 0.02, 0.01 } do
      ts[i] = lufa.spawn(function() lufa.sleep(d); order[#order + 1] = i end)
    end
    for _, t in ipairs(ts) do t:wait() end
    assert.are.same({ 2, 4, 3, 1 }, order)
  end)

  it("lufa.now() is monotonic seconds", function()
    local a = lufa.now()
    lufa.sleep(0.01)
    local b = lufa.now()
    assert.are.equal("float", math.type(a))
    assert.is_true(b > a)
  end)
end)

describe("lufa task cancellation", function()
  it("interrupts a sleep; the task unwinds with a 'cancelled' lufa.error", function()
    local after = false
    local t = lufa.spawn(function() lufa.sleep(3600); after = true end)
    lufa.sleep(0)
    assert.are.equal("waiting", t:status())
    t:cancel("no longer needed")
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.are.equal("task", err.kind)
    assert.are.equal("cancelled", err.code)
    assert.matches("no longer needed", tostring(err))
    assert.are.equal("cancelled", t:status())
    assert.is_false(after)
    assert.are.equal(0, lufa.tasks())
  end)

  it("a task cancelled before it starts never runs its body", function()
    local ran = false
    local t = lufa.spawn(function() ran = true end)
    t:cancel()
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.are.equal("cancelled", err.code)
    assert.is_false(ran)
    assert.are.equal("cancelled", t:status())
  end)

  it("cancelling a finished task changes nothing", function()
    local t = lufa.spawn(function() return 7 end)
    assert.are.equal(7, t:wait())
    t:cancel()
    assert.are.equal("done", t:status())
    assert.are.equal(7, t:wait())
  end)

  it("a sleep of math.huge can be cancelled", function()
    local t = lufa.spawn(function() lufa.sleep(math.huge) end)
    lufa.sleep(0.01)
    assert.are.equal("waiting", t:status())
    t:cancel()
    assert.has_error(function() t:wait() end)
    assert.are.equal("cancelled", t:status())
  end)

  it("runs to-be-closed variables on cancel", function()
    local log = {}
    local t = lufa.spawn(function()
      local outer <close> = closer(log, "outer")
      do
        local inner <close> = closer(log, "inner")
        lufa.sleep(3600)
      end
    end)
    lufa.sleep(0)
    t:cancel()
    pcall(t.wait, t)
    assert.are.equal(2, #log)
    assert.are.equal("inner", log[1].name)
    assert.are.equal("outer", log[2].name)
  end)

  it("runs to-be-closed variables when the task fails", function()
    local log = {}
    local t = lufa.spawn(function()
      local v <close> = closer(log, "v")
      lufa.sleep(0)
      error("fails on purpose")
    end)
    local ok = pcall(t.wait, t)
    assert.is_false(ok)
    assert.are.equal(1, #log)
    assert.are.equal("v", log[1].name)
    assert.matches("fails on purpose", tostring(log[1].err))
  end)

  it("can be caught with pcall, after which every wait fails at once with 'cancelled'", function()
    local first, later_sleep, later_join, later_http
    local other = lufa.spawn(function() lufa.sleep(3600) end)
    local t = lufa.spawn(function()
      local ok, err = pcall(lufa.sleep, 3600)
      first = { ok = ok, code = err and err.code }
      local ok2, err2 = pcall(lufa.sleep, 0)
      later_sleep = { ok = ok2, code = err2 and err2.code }
      local ok3, err3 = pcall(other.wait, other)
      later_join = { ok = ok3, code = err3 and err3.code }
      local ok4, err4 = pcall(http.request, { url = "http://127.0.0.1:1/" })
      later_http = { ok = ok4, code = type(err4) == "table" and err4.code or err4 }
      return "unwound"
    end)
    lufa.sleep(0)
    t:cancel()
    pcall(t.wait, t)
    assert.are.same({ ok = false, code = "cancelled" }, first)
    assert.are.same({ ok = false, code = "cancelled" }, later_sleep)
    assert.are.same({ ok = false, code = "cancelled" }, later_join)
    assert.are.same({ ok = false, code = "cancelled" }, later_http)
    assert.are.equal("waiting", other:status())
    other:cancel()
    pcall(other.wait, other)
  end)

  it("a task waiting for a cancelled task gets the 'cancelled' error", function()
    local target = lufa.spawn(function() lufa.sleep(3600) end)
    local joiner = lufa.spawn(function()
      local ok, err = pcall(target.wait, target)
      return ok, err.code
    end)
    lufa.sleep(0)
    target:cancel()
    local ok, code = joiner:wait()
    assert.is_false(ok)
    assert.are.equal("cancelled", code)
  end)

  it("cancelling a task that waits for another leaves the other running", function()
    local target = lufa.spawn(function() lufa.sleep(0.02); return "target done" end)
    local joiner = lufa.spawn(function() return target:wait() end)
    lufa.sleep(0)
    joiner:cancel()
    assert.has_error(function() joiner:wait() end)
    assert.are.equal("target done", target:wait())
  end)

  describe("during an HTTP request", function()
    local srv
    setup(function() srv = server.start() end)
    teardown(function() if srv then srv:stop() end end)

    it("aborts the transfer: the server sees the connection go", function()
      local reached = false
      local t = lufa.spawn(function()
        local res, err = http.request { url = srv.url .. "/delay?ms=60000&group=cancel-me" }
        reached = true
        return res, err
      end)
      wait_until(function() return srv:stats("cancel-me").in_flight == 1 end)
      assert.are.equal("waiting", t:status())
      t:cancel("stop the download")
      local ok, err = pcall(t.wait, t)
      assert.is_false(ok)
      assert.are.equal("cancelled", err.code)
      assert.is_false(reached)
      -- the server notices the closed connection; its request ends long before its 60 s delay
      wait_until(function() return srv:stats().in_flight == 0 end)
      assert.are.equal(0, srv:stats().in_flight)
    end)

    it("runs to-be-closed variables of a task cancelled in a request", function()
      local log = {}
      local t = lufa.spawn(function()
        local c <close> = closer(log, "conn")
        http.request { url = srv.url .. "/delay?ms=60000&group=cancel-close" }
      end)
      wait_until(function() return srv:stats("cancel-close").in_flight == 1 end)
      t:cancel()
      pcall(t.wait, t)
      assert.are.equal(1, #log)
      assert.are.equal("conn", log[1].name)
    end)
  end)
end)

describe("lufa misuse and failures", function()
  it("spawn needs a function", function()
    assert.has_error(function() lufa.spawn(nil) end)
    assert.has_error(function() lufa.spawn("print(1)") end)
  end)

  it("a task cannot wait for itself", function()
    local t = lufa.spawn(function() return pcall(function() return lufa.current():wait() end) end)
    local ok, err = t:wait()
    assert.is_false(ok)
    assert.matches("cannot wait for itself", tostring(err))
  end)

  it("lufa.run() cannot be called from inside a task", function()
    local t = lufa.spawn(function() return pcall(lufa.run) end)
    local ok, err = t:wait()
    assert.is_false(ok)
    assert.matches("inside a task", tostring(err))
  end)

  it("methods check their receiver", function()
    local t = lufa.spawn(function() end)
    t:wait()
    assert.has_error(function() t.wait({}) end)
    assert.has_error(function() t.status(42) end)
  end)

  it("detects a deadlock when the main chunk waits (and lufa exits non-zero)", function()
    local status, out = run_lufa [[
      local lufa = require "lufa"
      local a, b
      a = lufa.spawn(function() lufa.sleep(0); return b:wait() end)
      b = lufa.spawn(function() lufa.sleep(0); return a:wait() end)
      a:wait()
    ]]
    assert.are_not.equal(0, status)
    assert.matches("deadlock", out)
  end)

  it("detects a deadlock in lufa.run() and after the main chunk", function()
    local status, out = run_lufa [[
      local lufa = require "lufa"
      local a, b
      a = lufa.spawn(function() lufa.sleep(0); return b:wait() end)
      b = lufa.spawn(function() lufa.sleep(0); return a:wait() end)
      local ok, err = pcall(lufa.run)
      print("run:", ok, err)
    ]]
    assert.matches("run:%s+false%s+[^\n]*deadlock", out)
    assert.are_not.equal(0, status, "lufa must not exit 0 while tasks are stuck")
    assert.matches("deadlock", out:match("\n(.-)$") or out)
  end)

  it("an uncaught task error reaches the handler and lufa exits non-zero", function()
    local status, out = run_lufa [[
      local lufa = require "lufa"
      lufa.spawn(function() lufa.sleep(0); error("uncaught-4711") end)
    ]]
    assert.are_not.equal(0, status)
    assert.matches("uncaught%-4711", out)
    assert.matches("stack traceback", out)
  end)

  it("an uncaught task error while the main chunk drives the loop also makes lufa exit non-zero", function()
    local status, out = run_lufa [[
      local lufa = require "lufa"
      lufa.spawn(function() error("uncaught-during-main") end)
      lufa.sleep(0.01)
      print("main chunk ended")
    ]]
    assert.matches("uncaught%-during%-main", out)
    assert.matches("main chunk ended", out)
    assert.are_not.equal(0, status)
  end)

  it("an error someone waits for is not reported as uncaught", function()
    local status, out = run_lufa [[
      local lufa = require "lufa"
      local t = lufa.spawn(function() lufa.sleep(0); error("observed-error") end)
      print(pcall(t.wait, t))
    ]]
    assert.are.equal(0, status)
    assert.matches("false%s+[^\n]*observed%-error", out)
    assert.is_nil(out:find("uncaught"))
  end)

  it("after the main chunk, lufa runs the remaining tasks to their end", function()
    local status, out = run_lufa [[
      local lufa = require "lufa"
      for i = 1, 3 do lufa.spawn(function() lufa.sleep(0.01 * i); print("task", i) end) end
      print("main done")
    ]]
    assert.are.equal(0, status)
    assert.matches("main done\ntask\t1\ntask\t2\ntask\t3\n", out)
  end)
end)
