-- Shell completions come from the tables that parse the command line: bash completes commands,
-- subcommands, options (a misspelling's cure) and file values; the zsh and fish scripts name the same
-- commands and options.
local util = require "tests.support.util"

local lufa_bin = util.lufa_binary()

local function capture(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  p:close()
  return out
end

-- Completions run in an empty folder of their own, so no stray file name joins the command names.
local empty_dir = util.tempdir()

-- COMPREPLY of the generated bash completion for the words typed so far (the last one being completed).
local function complete(...)
  local words = {...}
  local quoted = {}
  for i, w in ipairs(words) do quoted[i] = util.shell_quote(w) end
  local script = string.format("source <(%s completions bash); COMP_WORDS=(lufa %s); COMP_CWORD=%d; _lufa; " ..
    "printf '%%s\\n' \"${COMPREPLY[@]}\"", util.shell_quote(lufa_bin), table.concat(quoted, " "), #words)
  local out = capture("cd " .. util.shell_quote(empty_dir) .. " && bash -c " .. util.shell_quote(script))
  local list = {}
  for l in out:gmatch("[^\n]+") do list[#list + 1] = l end
  table.sort(list)
  return list
end

describe("lufa completions", function()
  it("bash: commands, subcommands and options", function()
    assert.are.same({"rerun", "resume", "run", "runs"}, complete("r"))
    assert.are.same({"list"}, complete("runs", "li"))
    assert.are.same({"start", "stop"}, complete("trigger", "st"))
    assert.are.same({"--dry-run"}, complete("run", "f", "P", "--dry"))
    assert.are.same({"--drain-grace"}, complete("schedule", "f", "--drai"))
  end)

  it("bash: a file for --store", function()
    local dir = util.tempdir()
    util.write_file(dir .. "/runs-here.db", "")
    local got = complete("runs", "list", "--store", dir .. "/runs-")
    os.execute("rm -rf " .. util.shell_quote(dir))
    assert.are.same({dir .. "/runs-here.db"}, got)
  end)

  it("zsh and fish name every command and option of the command table", function()
    local t = require("lufa.cli").command_table()
    local zsh = capture(util.shell_quote(lufa_bin) .. " completions zsh")
    local fish = capture(util.shell_quote(lufa_bin) .. " completions fish")
    assert.matches("^#compdef lufa\n", zsh)
    for _, c in ipairs(t.commands) do
      assert.matches("'" .. c.name .. ":", zsh, 1, true)
      assert.matches("-a " .. c.name .. " ", fish, 1, true)
    end
    for _, o in ipairs(t.valued) do
      assert.matches("'" .. o .. "=", zsh, 1, true)
      assert.matches("-l " .. o:sub(3) .. " -r", fish, 1, true)
    end
    assert.matches("completions needs a shell", capture(util.shell_quote(lufa_bin) .. " completions tcsh"), 1, true)
  end)
end)
