-- The interactive prompt, driven through a real pseudo-terminal (tmux): line editing, history across
-- restarts, completion, multi-line chunks, pretty results, the loop turning while the prompt waits,
-- Ctrl-C and Ctrl-D; and the same prompt fed through a pipe.
local fs = require "lufa.fs"
local server = require "tests.support.server"
local terminal = require "tests.support.terminal"
local util = require "tests.support.util"

local lufa_bin = util.lufa_binary()

describe("the prompt on a terminal", function()
  local state, term

  local function start()
    term = terminal.start(util.shell_quote(lufa_bin), { env = { XDG_STATE_HOME = state, HOME = state } })
    term:wait_for("> ")
    return term
  end

  -- Types a line, presses Enter and waits for `expect` (plain text) on the screen.
  local function enter(line, expect)
    term:type(line)
    term:keys("Enter")
    if expect then return term:wait_for(expect) end
  end

  before_each(function()
    assert.is_true(terminal.available(), "tmux is needed (scripts/deps installs it)")
    state = util.tempdir()
    start()
  end)

  after_each(function()
    if term then term:stop() end
    os.execute("rm -rf " .. util.shell_quote(state))
  end)

  it("continues an unfinished chunk on the next line and pretty-prints the result", function()
    enter("function squares(n)", ">> ")
    enter("  local t = {n = n, list = {}} for i = 1, n do t.list[i] = i * i end")
    enter("  return t, 'two', nil end")
    enter("squares(3)", '{list = {1, 4, 9}, n = 3}')
    local s = enter("=#squares(2).list", "\n2\n")
    assert.matches(">> +return t, 'two', nil end", s)
    assert.matches('{list = {1, 4, 9}, n = 3}%s+"two"%s+nil\n', s)  -- every result, tab-separated
  end)

  it("edits with the arrow keys and recalls history after a restart", function()
    term:type('print("ac") garbage words')
    term:keys("C-w", "C-w")  -- deletes a word each, as in readline
    term:keys("Left", "Left", "Left", "Left")  -- over ' ', ')', '"' and 'c'
    term:type("b")
    term:keys("C-e")
    term:keys("Enter")
    term:wait_for("\nabc\n")
    enter(".quit", "[exit 0]")
    term:stop()
    start()
    term:keys("Up")
    term:wait_for('> .quit')
    term:keys("Up")
    term:wait_for('> print("abc")')
    term:keys("Enter")
    local s = term:wait_for("\nabc\n> ")
    assert.not_matches("%[exit", s)
  end)

  it("edits UTF-8 text by character", function()
    term:stop()
    term = terminal.start(util.shell_quote(lufa_bin),
      { env = { XDG_STATE_HOME = state, HOME = state, LC_ALL = "C.UTF-8" } })
    term:wait_for("> ")
    term:type('print("hélo wörld")')
    term:keys("Left", "Left", "Left", "Left", "Left", "Left", "Left", "Left", "Left")
    term:type("l")
    term:keys("Enter")
    term:wait_for("\nhéllo wörld\n")
  end)

  it("completes globals' fields, methods and module names", function()
    term:type("string.fo")
    term:keys("Tab")
    term:wait_for("> string.format")
    term:keys("C-u")
    enter('s = "word"')
    term:type("s:upp")
    term:keys("Tab")
    term:type("()")
    enter("", '\n"WORD"')
    term:type('b = require "lufa.bl')
    term:keys("Tab")
    term:wait_for('require "lufa.blob')
    term:keys("C-u")
    term:type("lufa.j")
    term:keys("Tab")
    term:wait_for("> lufa.json")
  end)

  it("runs a task spawned at the prompt while it waits, without losing the line being typed", function()
    enter('lufa.spawn(function() lufa.sleep(0.2) print("tick from the task") end)', "<task")
    term:type("half typed")
    local s = term:wait_for("[task 1 done]")
    assert.matches("tick from the task\n", s)
    term:wait_for("> half typed")
    term:keys("C-u")
    enter("1 + 2", "\n3\n")
  end)

  it("completes a request spawned at the prompt while it is idle", function()
    local srv = server.start()
    local ok, err = pcall(function()
      enter(string.format('lufa.spawn(function() res = lufa.http.request{url = %q} print("got " .. res.status) end)',
        srv.url .. "/delay?ms=200"), "<task")
      term:wait_for("got 200")  -- no key pressed meanwhile
      enter("res", "<http response 200")
      -- a request the prompt's own chunk waits for is aborted by Ctrl-C
      enter(string.format('print("asking") r2, e2 = lufa.http.request{url = %q}', srv.url .. "/delay?ms=60000"),
        "\nasking\n")
      term:keys("C-c")
      term:wait_for("interrupted")
      enter("r2 == nil", "\ntrue\n")
    end)
    srv:stop()
    assert(ok, err)
  end)

  it("interrupts a running chunk with Ctrl-C and returns to a live prompt", function()
    enter('print("spinning") while true do end', "\nspinning\n")
    term:keys("C-c")
    term:wait_for("interrupted")
    enter("1 + 41", "\n42\n")
    enter('print("sleeping") lufa.sleep(600)', "\nsleeping\n")
    term:keys("C-c")
    local s = term:wait_for("interrupted", 10)
    enter("2 + 2", "\n4\n")
    assert.not_matches("%[exit", s)
  end)

  it("stops a task that spins without waiting with Ctrl-C, and the prompt comes back", function()
    enter('spinner = lufa.spawn(function() print("spinner started") while true do end end)', "spinner started")
    term:keys("C-c")
    term:wait_for("[task 1 failed]")
    enter("spinner:status()", '\n"failed"\n')
    local s = enter("3 + 3", "\n6\n")
    assert.matches("interrupted", s)
  end)

  it("cancels a factory:run interrupted with Ctrl-C and records it Cancelled", function()
    enter('f = lufa.pipeline.from_table{name = "p", activities = {{name = "w", type = "Wait", ' ..
      'typeProperties = {waitTimeInSeconds = 600}}}}')
    enter('r = f:run("p", {on_event = function(e) print("event " .. e.type .. " " .. e.status) end})',
      "event activity InProgress")
    term:keys("C-c")
    term:wait_for("event pipeline Cancelled")
    term:wait_for("interrupted")
    enter("f:activity_runs(f.runs.pipeline_order[1])[1].error.message", "was cancelled (interrupted)")
  end)

  it("drops the line on Ctrl-C at the prompt and leaves on Ctrl-D", function()
    term:type("this is not lua")
    term:keys("C-c")
    enter("10 * 10", "\n100\n")
    local s = term:screen()
    assert.not_matches("syntax error", s)
    term:keys("C-d")
    term:wait_for("[exit 0]")
  end)

  it("warns on Ctrl-D while tasks run and leaves on the second", function()
    enter("t = lufa.spawn(function() lufa.sleep(600) end)")
    enter("t", "<task")
    term:keys("C-d")
    term:wait_for("1 task is still running; Ctrl-D again leaves and cancels them:\n  task 1  waiting")
    term:keys("C-d")
    term:wait_for("[exit 0]")
  end)

  it("keeps its history file private and writes no line holding a secret", function()
    enter('k = lufa.secret.new("s3cr3t-literal-value")', "> ")
    enter('opts = {client_secret = "another-secret-42"}', "> ")
    enter("k", "<secret>")
    enter('"kept" .. "line"', '"keptline"')
    enter(".quit", "[exit 0]")
    local path = state .. "/lufa/history"
    local st = assert(fs.stat(path))
    assert.equal(tonumber("600", 8), st.mode)
    local text = assert(util.read_file(path))
    assert.matches("kept", text)
    assert.not_matches("s3cr3t", text)
    assert.not_matches("another%-secret", text)
  end)
end)

describe("the history file", function()
  it("keeps the last 1000 lines", function()
    local dir = util.tempdir()
    assert(os.execute("mkdir -m 700 " .. util.shell_quote(dir .. "/lufa")))
    local old = { "_HiStOrY_V2_" }
    for i = 1, 1200 do old[#old + 1] = "x\\040=\\040" .. i end
    util.write_file(dir .. "/lufa/history", table.concat(old, "\n") .. "\n")
    local term = terminal.start(util.shell_quote(lufa_bin), { env = { XDG_STATE_HOME = dir } })
    local ok, err = pcall(function()
      term:wait_for("> ")
      term:type("newest = true")
      term:keys("Enter")
      term:type(".quit")
      term:keys("Enter")
      term:wait_for("[exit 0]")
    end)
    term:stop()
    local text = util.read_file(dir .. "/lufa/history") or ""
    os.execute("rm -rf " .. util.shell_quote(dir))
    assert(ok, err)
    local lines = {}
    for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal("_HiStOrY_V2_", lines[1])
    assert.equal(1001, #lines)  -- the header and 1000 entries
    assert.equal("x\\040=\\040203", lines[2])  -- the oldest kept: 1200 + 2 new - 1000 + 1
    assert.equal(".quit", lines[#lines])
    assert.equal("newest\\040=\\040true", lines[#lines - 1])
  end)
end)

describe("the prompt on a dumb terminal", function()
  it("prompts and runs tasks but writes no escape code", function()
    local dir = util.tempdir()
    local log = dir .. "/output"
    local term = terminal.start(util.shell_quote(lufa_bin), { env = { XDG_STATE_HOME = dir, TERM = "dumb" } })
    local ok, err = pcall(function()
      term:wait_for("> ")
      term:record(log)
      term:type('lufa.spawn(function() lufa.sleep(0.1) print("from the task") end)')
      term:keys("Enter")
      term:wait_for("[task 1 done]")
      term:type("{1, {a = 2}}")
      term:keys("Enter")
      term:wait_for("{1, {a = 2}}\n> ")
      term:keys("C-d")
      term:wait_for("[exit 0]")
    end)
    term:stop()
    local output = util.read_file(log) or ""
    os.execute("rm -rf " .. util.shell_quote(dir))
    assert(ok, err)
    assert.matches("from the task", output)
    assert.is_nil(output:find("\27", 1, true), "an escape code was written: " .. output)
  end)
end)

describe("lufa -i", function()
  it("runs the script, then stays at the prompt with its globals", function()
    local dir = util.tempdir()
    util.write_file(dir .. "/setup.lua", 'greeting = "hello from the script"\n')
    local term = terminal.start(util.shell_quote(lufa_bin) .. " -i " .. util.shell_quote(dir .. "/setup.lua"),
      { env = { XDG_STATE_HOME = dir } })
    local ok, err = pcall(function()
      term:wait_for("> ")
      term:type("greeting:upper()")
      term:keys("Enter")
      term:wait_for('"HELLO FROM THE SCRIPT"')
    end)
    term:stop()
    os.execute("rm -rf " .. util.shell_quote(dir))
    assert(ok, err)
  end)
end)

describe("the prompt fed through a pipe", function()
  it("runs line by line without prompts or escape codes and ends like a script", function()
    local dir = util.tempdir()
    local input = dir .. "/input.lua"
    util.write_file(input, table.concat({
      "x = 20",
      "function twice(n)",
      "  return 2 * n",
      "end",
      "=twice(x) + 2",
      "{b = {1, 2}, a = true}",
      'lufa.spawn(function() lufa.sleep(0.05) print("task ran") end)',
    }, "\n") .. "\n")
    local p = assert(io.popen(string.format("XDG_STATE_HOME=%s %s -i < %s 2>&1; echo \"exit=$?\"",
      util.shell_quote(dir), util.shell_quote(lufa_bin), util.shell_quote(input))))
    local out = p:read("a")
    p:close()
    os.execute("rm -rf " .. util.shell_quote(dir))
    assert.equal('42\n{a = true, b = {1, 2}}\n<task ready>\ntask ran\nexit=0\n', out)
  end)

  it("runs the . commands", function()
    local dir = util.tempdir()
    util.write_file(dir .. "/lib.lua", "loaded_value = 7\nprint('lib ran')\n")
    local p = assert(io.popen(string.format("%s -i 2>&1 <<'EOF'\n%s\nEOF\necho \"exit=$?\"", util.shell_quote(lufa_bin),
      table.concat({
        ".load " .. dir .. "/lib.lua",
        "loaded_value * 6",
        ".time loaded_value + 1",
        "scope = {pipeline = {parameters = {epochs = 10}}}",
        ".expr @mul(pipeline().parameters.epochs, 2)",
        "t = lufa.spawn(function() lufa.sleep(0.05) end)",
        ".tasks",
        ".nosuch",
        ".quit",
        "print('not reached')",
      }, "\n"))))
    local out = p:read("a")
    p:close()
    os.execute("rm -rf " .. util.shell_quote(dir))
    assert.matches("^lib ran\n42\n8\nwall [%d.]+ s, cpu [%d.]+ s\n20\n  task 1  %a+\n", out)
    assert.matches("unknown command .nosuch %(.help lists them%)\n", out)
    assert.not_matches("not reached", out)
    assert.matches("exit=1\n$", out)  -- a failed command fails a piped script
  end)

  it("takes lines of any length", function()
    local long = string.rep("x", 20000)
    local p = assert(io.popen(string.format("printf 's = \"%s\"\\n#s\\n' | %s -i 2>&1", long,
      util.shell_quote(lufa_bin))))
    local out = p:read("a")
    p:close()
    assert.equal("20000\n", out)
  end)

  it("without -i runs stdin that is not a terminal as one script, as lua - does", function()
    local p = assert(io.popen(string.format("printf 'local n = 20\\nlocal function twice(x) return 2 * x end\\n" ..
      "print(twice(n) + 2)\\nrequire(\"lufa\").spawn(function() print(\"task ran\") end)\\n' | %s 2>&1; " ..
      "echo \"exit=$?\"", util.shell_quote(lufa_bin))))
    local out = p:read("a")
    p:close()
    assert.equal("42\ntask ran\nexit=0\n", out)
  end)

  it("fails like a script when a chunk fails", function()
    local p = assert(io.popen(string.format("printf 'error(\"boom\")\\n' | %s 2>&1; echo \"exit=$?\"",
      util.shell_quote(lufa_bin))))
    local out = p:read("a")
    p:close()
    assert.matches("stdin:1: boom", out)
    assert.matches("exit=1\n$", out)
  end)
end)
