-- The command line's own habits: `lufa --version` names every library's version, `lufa help COMMAND`
-- shows that command's usage and options, a misspelt option names the one meant.
local util = require "tests.support.util"

local lufa_bin = util.lufa_binary()

local function sh(...)
  local args = {}
  for i, a in ipairs{...} do args[i] = util.shell_quote(a) end
  local p = io.popen(util.shell_quote(lufa_bin) .. " " .. table.concat(args, " ") .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("a")
  p:close()
  return tonumber(out:match("exit=(%d+)%s*$")), (out:gsub("exit=%d+%s*$", ""))
end

describe("lufa --version", function()
  it("prints lufa's version and those of Lua, libcurl, OpenSSL, SQLite and expat", function()
    local code, out = sh("--version")
    assert.are.equal(0, code)
    assert.matches("^lufa %d+%.%d+%.%d+\n", out)
    assert.matches("\nLua 5%.4%.%d+\n", out)
    assert.matches("\nlibcurl %d+%.%d+%.%d+ %(OpenSSL/3%.", out)
    assert.matches("\nOpenSSL 3%.", out)
    assert.matches("\nSQLite 3%.%d+", out)
    assert.matches("\nexpat_2%.", out)
  end)
end)

describe("lufa help", function()
  it("shows one command's usage lines and its options", function()
    local code, out = sh("help", "schedule")
    assert.are.equal(0, code)
    assert.matches("^usage: lufa schedule FACTORY", out)
    assert.matches("\n       lufa schedule FACTORY %-%-once", out)
    assert.matches("%-%-drain%-grace S", out)
    assert.is_nil(out:find("lufa runs prune", 1, true))
    code, out = sh("help", "run")
    assert.is_nil(out:find("--drain-grace", 1, true))
    assert.matches("%-%-override FILE", out)
  end)

  it("without a command shows everything; an unknown one is an error", function()
    local code, out = sh("help")
    assert.are.equal(0, code)
    assert.matches("lufa runs prune", out)
    code, out = sh("help", "deploy")
    assert.are.equal(2, code)
    assert.matches("unknown command 'deploy'", out)
  end)

  it("answers a misspelt option with the option meant and where to look", function()
    local code, out = sh("schedule", "factory", "--nxet", "3")
    assert.are.equal(2, code)
    assert.are.equal("lufa: unknown option '--nxet' (did you mean '--next'?); 'lufa help schedule' lists the options\n", out)
  end)
end)
