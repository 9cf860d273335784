-- lufa.repl: what a line typed at the prompt does (the terminal side is tested in tests/e2e/repl_test.lua).
local repl = require "lufa.repl"

-- Runs fn with io.stdout and io.stderr captured; returns what each received.
local function capture(fn)
  local out, err = {}, {}
  local function sink(list)
    return { write = function(self, ...) for _, s in ipairs({ ... }) do list[#list + 1] = s end return self end,
      flush = function() end }
  end
  local real_out, real_err = io.stdout, io.stderr
  io.stdout, io.stderr = sink(out), sink(err)
  local ok, e = pcall(fn)
  io.stdout, io.stderr = real_out, real_err
  assert(ok, e)
  return table.concat(out), table.concat(err)
end

local function session()
  return repl.new{ interactive = true, env = setmetatable({}, { __index = _G }) }
end

describe("a prompt session", function()
  it("continues an unfinished chunk with the secondary prompt, then runs it", function()
    local s = session()
    assert.equal("> ", s:prompt())
    assert.equal("more", s:submit("function f(n)"))
    assert.equal(">> ", s:prompt())
    assert.equal("more", s:submit("  return n * 2"))
    local out = capture(function() assert.equal("done", s:submit("end")) end)
    assert.equal("", out)
    assert.equal("> ", s:prompt())
    out = capture(function() assert.equal("done", s:submit("=f(21)")) end)
    assert.equal("42\n", out)
  end)

  it("prints every result of an expression, and nothing for a statement", function()
    local s = session()
    assert.equal('1\tnil\t"a"\n', (capture(function() s:submit("1, nil, 'a'") end)))
    assert.equal("", (capture(function() s:submit("x = {b = 1}") end)))
    assert.equal("{b = 1}\n", (capture(function() s:submit("x") end)))
  end)

  it("reports errors with a short traceback and goes on", function()
    local s = session()
    local out, err = capture(function() assert.equal("failed", s:submit("error('boom')")) end)
    assert.equal("", out)
    assert.matches("^stdin:1: boom\nstack traceback:", err)
    assert.not_matches("xpcall", err)
    assert.not_matches("repl/init%.lua", err)
    _, err = capture(function() assert.equal("failed", s:submit("x = = 1")) end)
    assert.matches("stdin:1: unexpected symbol near '='", err)
    assert.equal("2\n", (capture(function() s:submit("1 + 1") end)))
  end)

  it("drops an unfinished chunk on reset (Ctrl-C)", function()
    local s = session()
    assert.equal("more", s:submit("t = {"))
    s:reset()
    assert.equal("> ", s:prompt())
    assert.equal("3\n", (capture(function() s:submit("3") end)))
  end)

  it("has lufa as a global whose submodules load on first use", function()
    local s = session()
    assert.equal("true\n", (capture(function() s:submit("lufa.json == require('lufa.json')") end)))
    assert.equal("nil\n", (capture(function() s:submit("lufa.no_such_module") end)))
  end)

  it("runs the . commands and says which exist", function()
    local s = session()
    local out = capture(function() assert.equal("done", s:submit(".help")) end)
    assert.matches("%.load FILE", out)
    assert.equal("quit", s:submit(".quit"))
    local _, err = capture(function() assert.equal("failed", s:submit(".frobnicate")) end)
    assert.equal("unknown command .frobnicate (.help lists them)\n", err)
  end)

  it("numbers the tasks typed at the prompt and announces when they end", function()
    local s = session()
    capture(function() s:submit("t = lufa.spawn(function() lufa.sleep(0.01) end)") end)
    local list = s:running_tasks()
    assert.equal(1, #list)
    assert.equal(1, list[1].number)
    assert.matches("1 task is still running", s:exit_warning())
    list[1].task:wait()
    assert.equal("[task 1 done]\n", s:notices())
    assert.is_nil(s:notices())
    assert.is_nil(s:exit_warning())
  end)
end)
