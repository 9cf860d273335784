-- lufa.process: child programs without a shell, waited for on the loop.
local lufa = require "lufa"
local fs = require "lufa.fs"
local process = require "lufa.process"
local util = require "tests.support.util"

local LUFA = util.lufa_binary()
local own = process.getpid()

local function run(argv, opts)
  local p = assert(process.spawn(argv, opts))
  return p:wait()
end

-- The descriptors this process holds: a spawn must give back every one it opened.
local function fd_count()
  return #assert(fs.list("/proc/self/fd"))
end

-- Whether pid is a child of ours that nobody reaped (gone, or someone else's process, is fine).
local function our_zombie(pid)
  local stat = util.read_file("/proc/" .. pid .. "/stat")
  if not stat then return false end
  local state, ppid = stat:match("%) (%a) (%d+)")
  return tonumber(ppid) == own and state == "Z"
end

describe("lufa.process", function()
  local dir

  before_each(function() dir = util.tempdir() end)
  after_each(function() os.execute("rm -rf " .. util.shell_quote(dir)) end)

  describe("spawn and wait", function()
    it("gives the exit code of /bin/true, /bin/false and a lufa child", function()
      local st, n = run({ "/bin/true" })
      assert.are.same({ exited = true, code = 0 }, st)
      assert.equal(0, n)
      st, n = run({ "/bin/false" })
      assert.are.same({ exited = true, code = 1 }, st)
      assert.equal(1, n)
      st, n = run({ LUFA, "-e", "os.exit(3)" })
      assert.are.same({ exited = true, code = 3 }, st)
      assert.equal(3, n)
    end)

    it("looks a bare name up in PATH and exposes the pid", function()
      local p = assert(process.spawn({ "true" }))
      assert.is_true(math.type(p.pid) == "integer" and p.pid > 1)
      assert.equal(0, select(2, p:wait()))
      assert.matches("^lufa.process %(pid %d+%): exited 0$", tostring(p))
    end)

    it("returns the same status again after the child was reaped", function()
      local p = assert(process.spawn({ "/bin/false" }))
      local a, na = p:wait()
      local b, nb = p:wait()
      assert.are.same(a, b)
      assert.equal(na, nb)
      assert.are.same(a, p:status())
    end)

    it("status() does not wait and sees the child end", function()
      local p = assert(process.spawn({ "sleep", "0.2" }))
      assert.equal("running", p:status())
      util.wait_until(function() return p:status() ~= "running" end)
      assert.are.same({ exited = true, code = 0 }, p:status())
      assert.are.same({ exited = true, code = 0 }, (p:wait()))
    end)

    it("reports a missing program as ENOENT naming it", function()
      local p, err = process.spawn({ "no-such-program-lufa-test", "x" })
      assert.is_nil(p)
      assert.equal("process", err.kind)
      assert.equal("ENOENT", err.code)
      assert.matches("no%-such%-program%-lufa%-test", err.message)
      assert.equal("no-such-program-lufa-test", err.program)
      p, err = process.spawn({ dir .. "/missing" })
      assert.is_nil(p)
      assert.equal("ENOENT", err.code)
      assert.matches(dir .. "/missing", err.message, 1, true)
    end)

    it("reports a program that is not executable as EACCES", function()
      util.write_file(dir .. "/script", "#!/bin/sh\nexit 0\n")
      local p, err = process.spawn({ dir .. "/script" })
      assert.is_nil(p)
      assert.equal("EACCES", err.code)
      assert.matches("script", err.message)
    end)

    it("refuses bad arguments", function()
      assert.has_error(function() process.spawn({}) end)
      assert.has_error(function() process.spawn("true") end)
      assert.has_error(function() process.spawn({ "true", {} }) end)
      assert.has_error(function() process.spawn({ "true", "a\0b" }) end)
      assert.has_error(function() process.spawn({ "true" }, { stdot = "null" }) end)
      assert.has_error(function() process.spawn({ "true" }, { env = { ["A=B"] = "x" } }) end)
      local p = assert(process.spawn({ "true" }))
      assert.has_error(function() p:kill("NOPE") end)
      assert.has_error(function() p:wait(-1) end)
      p:wait()
    end)

    it("keeps no descriptor of a spawn once its child is reaped", function()
      local before = fd_count()
      for _ = 1, 5 do run({ "true" }, { stdout = dir .. "/out", stderr = "stdout", stdin = "null" }) end
      assert.is_nil(process.spawn({ "no-such-program-lufa-test" }, { stdout = dir .. "/out" }))
      assert.equal(before, fd_count())
    end)
  end)

  describe("standard streams", function()
    it("sends stdout and stderr to files, created 0600, truncated or appended", function()
      local code = 'io.stdout:write("out\\n") io.stderr:write("err\\n")'
      local opts = { stdout = dir .. "/o", stderr = dir .. "/e" }
      assert.equal(0, select(2, run({ LUFA, "-e", code }, opts)))
      assert.equal("out\n", util.read_file(dir .. "/o"))
      assert.equal("err\n", util.read_file(dir .. "/e"))
      assert.equal(384, fs.stat(dir .. "/o").mode)  -- 0600
      run({ LUFA, "-e", code }, opts)
      assert.equal("out\n", util.read_file(dir .. "/o"))
      opts.append = true
      run({ LUFA, "-e", code }, opts)
      assert.equal("out\nout\n", util.read_file(dir .. "/o"))
      assert.equal("err\nerr\n", util.read_file(dir .. "/e"))
    end)

    it("shares stdout's file with stderr = \"stdout\"", function()
      run({ LUFA, "-e", 'io.stdout:write("1") io.stdout:flush() io.stderr:write("2") io.stdout:write("3")' },
        { stdout = dir .. "/both", stderr = "stdout" })
      assert.equal("123", util.read_file(dir .. "/both"))
    end)

    it("gives /dev/null for \"null\" and by default for stdin", function()
      local code = [[local fs = require "lufa.fs"
        io.stderr:write(fs.realpath("/proc/self/fd/0"), " ", fs.realpath("/proc/self/fd/1"))]]
      run({ LUFA, "-e", code }, { stdout = "null", stderr = dir .. "/e" })
      assert.equal("/dev/null /dev/null", util.read_file(dir .. "/e"))
    end)

    it("reads stdin from a file", function()
      util.write_file(dir .. "/in", "line one\nline two\n")
      run({ "cat" }, { stdin = dir .. "/in", stdout = dir .. "/out" })
      assert.equal("line one\nline two\n", util.read_file(dir .. "/out"))
    end)

    it("reports a file it cannot open, naming it", function()
      local p, err = process.spawn({ "true" }, { stdout = dir .. "/no/such/dir/out" })
      assert.is_nil(p)
      assert.equal("ENOENT", err.code)
      assert.matches("/no/such/dir/out", err.message, 1, true)
      p, err = process.spawn({ "true" }, { stdin = dir .. "/absent" })
      assert.is_nil(p)
      assert.equal("ENOENT", err.code)
    end)

    it("passes the child no descriptor but 0, 1 and 2", function()
      local held = assert(io.open(dir .. "/held", "w"))  -- Lua's files are not close-on-exec
      run({ "ls", "/proc/self/fd" }, { stdout = dir .. "/fds" })
      held:close()
      -- ls itself opens one descriptor to list the folder
      local fds = {}
      for fd in util.read_file(dir .. "/fds"):gmatch("%d+") do fds[#fds + 1] = tonumber(fd) end
      table.sort(fds)
      assert.are.same({ 0, 1, 2, 3 }, fds)
    end)
  end)

  describe("environment and folder", function()
    local show = 'io.write(tostring(os.getenv("LUFA_T1")), " ", tostring(os.getenv("PATH") ~= nil), " ", tostring(os.getenv("HOME") ~= nil))'

    it("replaces the environment with env", function()
      assert.is_truthy(os.getenv("PATH"))
      run({ LUFA, "-e", show }, { env = { LUFA_T1 = "only me" }, stdout = dir .. "/out" })
      assert.equal("only me false false", util.read_file(dir .. "/out"))
    end)

    it("extends the inherited environment with env_extra; false removes a variable", function()
      run({ LUFA, "-e", show }, { env_extra = { LUFA_T1 = "added" }, stdout = dir .. "/out" })
      assert.equal("added true " .. tostring(os.getenv("HOME") ~= nil), util.read_file(dir .. "/out"))
      run({ LUFA, "-e", show }, { env_extra = { LUFA_T1 = "x", PATH = false }, stdout = dir .. "/out" })
      assert.matches("^x false ", util.read_file(dir .. "/out"))
    end)

    it("starts the child in cwd", function()
      run({ "pwd" }, { cwd = dir, stdout = dir .. "/out" })
      assert.equal(assert(fs.realpath(dir)) .. "\n", util.read_file(dir .. "/out"))
      local p, err = process.spawn({ "pwd" }, { cwd = dir .. "/absent" })
      assert.is_nil(p)
      assert.equal("ENOENT", err.code)
      assert.matches("absent", err.message)
    end)
  end)

  describe("no shell", function()
    it("hands every argument over verbatim", function()
      local args = { "two words", "it's", '"double"', "$(touch PWNED)", "`touch PWNED`", "a;touch PWNED",
        "line one\nline two", "", "*", "$HOME", "\\", "| touch PWNED", "> PWNED" }
      util.write_file(dir .. "/echo.lua", 'for i = 1, select("#", ...) do io.write(select(i, ...), "\\0") end')
      local argv = { LUFA, dir .. "/echo.lua" }
      for _, a in ipairs(args) do argv[#argv + 1] = a end
      assert.equal(0, select(2, run(argv, { cwd = dir, stdout = dir .. "/out" })))
      local got = {}
      for a in util.read_file(dir .. "/out"):gmatch("(.-)%z") do got[#got + 1] = a end
      assert.are.same(args, got)
      assert.is_nil(fs.stat(dir .. "/PWNED"))
      assert.is_nil(fs.stat("PWNED"))
    end)
  end)

  describe("waiting", function()
    it("lets other tasks run while a task waits", function()
      local ticks, done = 0, false
      local waiter = lufa.spawn(function()
        local st = assert(process.spawn({ "sleep", "0.3" })):wait()
        done = true
        return st
      end)
      local counter = lufa.spawn(function()
        while not done do
          ticks = ticks + 1
          lufa.sleep(0.01)
        end
      end)
      local st = waiter:wait()
      counter:wait()
      assert.are.same({ exited = true, code = 0 }, st)
      assert.is_true(ticks >= 10, "only " .. ticks .. " ticks while the child slept")
    end)

    it("times out, leaves the child running, and may wait again", function()
      local p = assert(process.spawn({ "sleep", "5" }))
      local t0 = lufa.now()
      local st, err = p:wait(0.2)
      local took = lufa.now() - t0
      assert.is_nil(st)
      assert.equal("timeout", err.code)
      assert.is_true(took >= 0.19 and took < 2, "took " .. took)
      assert.equal("running", p:status())
      assert.is_true(process.is_alive(p.pid))
      assert.is_nil((p:wait(0)))
      assert.is_true(p:kill("KILL"))
      st = p:wait(5)
      assert.are.same({ signaled = true, signal = 9, signame = "SIGKILL" }, st)
    end)

    it("cancelling a waiting task aborts the wait; the child keeps running", function()
      local before = fd_count()
      local p = assert(process.spawn({ "sleep", "5" }))
      local t = lufa.spawn(function() return p:wait(0.1) end)
      local t2 = lufa.spawn(function() return p:wait() end)
      lufa.sleep(0.02)
      assert.equal("waiting", t:status())
      t:cancel("enough")
      t2:cancel()
      local ok, err = pcall(t.wait, t)
      assert.is_false(ok)
      assert.equal("cancelled", err.code)
      assert.equal("cancelled", t2:status())
      collectgarbage()
      collectgarbage()
      lufa.sleep(0.2)  -- the cancelled wait's timeout would have fired by now
      assert.equal("running", p:status())
      assert.equal(0, lufa.tasks())
      -- a later wait still works, and the process gives back its pidfd once reaped
      local t3 = lufa.spawn(function() return p:wait() end)
      lufa.sleep(0.02)
      p:kill()
      assert.equal("SIGTERM", t3:wait().signame)
      assert.equal(before, fd_count())
    end)

    it("several tasks may wait for one child", function()
      local p = assert(process.spawn({ "sleep", "0.1" }))
      local a = lufa.spawn(function() return select(2, p:wait()) end)
      local b = lufa.spawn(function() return select(2, p:wait(10)) end)
      assert.equal(0, a:wait())
      assert.equal(0, b:wait())
    end)

    it("reaps 100 short children waited for concurrently", function()
      local tasks = {}
      for i = 1, 100 do
        tasks[i] = lufa.spawn(function()
          local p = assert(process.spawn({ "sh", "-c", "exit " .. i }))
          local _, n = p:wait()
          return n, p.pid
        end)
      end
      for i, t in ipairs(tasks) do
        local n, pid = t:wait()
        assert.equal(i, n)
        assert.is_false(our_zombie(pid), "zombie " .. pid)
        assert.is_nil(fs.stat("/proc/" .. pid), "/proc/" .. pid .. " still there")
      end
    end)
  end)

  describe("kill", function()
    it("TERM ends a sleeping child: SIGTERM, 143; a reaped process is not signalled", function()
      local p = assert(process.spawn({ "sleep", "30" }))
      assert.is_true(p:kill())
      local st, n = p:wait(5)
      assert.are.same({ signaled = true, signal = 15, signame = "SIGTERM" }, st)
      assert.equal(143, n)
      assert.is_false(p:kill("KILL"))
      assert.matches("SIGTERM$", tostring(p))
    end)

    it("takes names with or without SIG and numbers", function()
      for _, sig in ipairs({ "INT", "SIGHUP", 10 }) do
        local p = assert(process.spawn({ "sleep", "30" }))
        assert.is_true(p:kill(sig))
        local st = p:wait(5)
        assert.equal(({ INT = "SIGINT", SIGHUP = "SIGHUP", [10] = "SIGUSR1" })[sig], st.signame)
      end
    end)

    it("with new_group reaches the grandchildren", function()
      local script = dir .. "/parent.lua"
      util.write_file(script, [[
        local process = require "lufa.process"
        local p = assert(process.spawn({ "sleep", "30" }))
        io.stdout:write(p.pid, "\n")
        io.stdout:flush()
        p:wait()]])
      local function grandchild(opts)
        os.remove(dir .. "/pid")
        opts.stdout = dir .. "/pid"
        local p = assert(process.spawn({ LUFA, script }, opts))
        util.wait_until(function() return (util.read_file(dir .. "/pid") or ""):match("\n") end)
        local gpid = tonumber(util.read_file(dir .. "/pid"):match("%d+"))
        assert.is_true(process.is_alive(gpid))
        assert.is_true(p:kill("KILL"))
        assert.equal("SIGKILL", p:wait(5).signame)
        return gpid
      end
      local gpid = grandchild({ new_group = true })
      util.wait_until(function() return not process.is_alive(gpid) end, 5)
      -- the control: without a group only the child is killed
      gpid = grandchild({})
      lufa.sleep(0.2)
      local alive = process.is_alive(gpid)
      os.execute("kill " .. gpid)
      assert.is_true(alive)
    end)
  end)

  describe("signals in the child", function()
    it("a child of a lufa with interrupt handlers dies of SIGTERM", function()
      lufa.on_interrupt(function() end)
      local p = assert(process.spawn({ "sleep", "30" }))
      p:kill("TERM")
      local st = p:wait(2)
      lufa.on_interrupt(nil)
      if not st then p:kill("KILL") p:wait() end
      assert.equal("SIGTERM", st and st.signame)
    end)

    it("a child does not inherit ignored signals (unless signals_default = false)", function()
      -- the shell makes lufa start with SIGTERM and SIGINT ignored
      util.write_file(dir .. "/ignored.lua", [[
        local process = require "lufa.process"
        local function try(opts)
          local p = assert(process.spawn({ "sleep", "30" }, opts))
          p:kill("TERM")
          p:kill("INT")
          local st = p:wait(1)
          if not st then p:kill("KILL") p:wait() return "survived" end
          return st.signame
        end
        io.write(try({}), " ", try({ signals_default = true }), " ", try({ signals_default = false }))]])
      local sh = io.popen("trap '' TERM INT; exec " .. util.shell_quote(LUFA) .. " " .. util.shell_quote(dir .. "/ignored.lua"))
      local out = sh:read("a")
      sh:close()
      assert.equal("SIGTERM SIGTERM survived", out)
    end)
  end)

  describe("collection", function()
    it("reaps an exited child whose process object is collected", function()
      local p = assert(process.spawn({ "true" }))
      local pid = p.pid
      util.wait_until(function() return our_zombie(pid) end)
      p = nil  -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.is_false(our_zombie(pid))
    end)

    it("reaps a child still running when collected once it has exited (at a later spawn)", function()
      local p = assert(process.spawn({ "sleep", "0.1" }))
      local pid = p.pid
      p = nil  -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      util.wait_until(function() return our_zombie(pid) end)
      run({ "true" })
      assert.is_false(our_zombie(pid))
    end)
  end)

  describe("helpers", function()
    it("getpid and is_alive", function()
      assert.equal(util.own_pid(), process.getpid())
      assert.is_true(process.is_alive(process.getpid()))
      assert.is_true(process.is_alive(1))  -- another user's process counts (EPERM)
      local p = assert(process.spawn({ "true" }))
      local pid = p.pid
      p:wait()
      assert.is_false(process.is_alive(pid))
      assert.has_error(function() process.is_alive(0) end)
    end)
  end)
end)
