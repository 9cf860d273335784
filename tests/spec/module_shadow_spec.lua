-- lufa's own modules cannot be shadowed by a lufa/*.lua that merely lies in the working directory (package.path
-- starts with ./?.lua), while the deliberate ways to override them keep working: LUA_PATH set by the user,
-- LUFA_PATH, package.preload, and a lufa.* name lufa does not ship (a user's own lufa.activities.<Type>).
local util = require "tests.support.util"

local lufa_bin = util.lufa_binary()

-- Runs `lufa -e code` in dir with the environment assignments env (a string, may be ""); returns the output.
local function run_in(dir, env, code)
  local cmd = "cd " .. util.shell_quote(dir) .. " && env -u LUA_PATH -u LUA_PATH_5_4 " .. env .. " " ..
    util.shell_quote(lufa_bin) .. " -e " .. util.shell_quote(code) .. " 2>&1"
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

describe("lufa's own modules", function()
  local dir

  before_each(function()
    dir = util.tempdir()
    assert(os.execute("mkdir -p " .. util.shell_quote(dir .. "/lufa/activities")))
    util.write_file(dir .. "/lufa/http.lua", "return { shadow = 'cwd' }\n")
    util.write_file(dir .. "/lufa/activities/MyOwnType.lua", "return { mine = true }\n")
  end)

  after_each(function()
    os.execute("rm -rf " .. util.shell_quote(dir))
  end)

  it("are not replaced by a ./lufa/http.lua in the working directory", function()
    local out = run_in(dir, "", "local h = require 'lufa.http'; print(h.shadow, type(h.request))")
    assert.are.equal("nil\tfunction\n", out)
  end)

  it("are found first although the working directory's copy comes first on package.path", function()
    local out = run_in(dir, "", [[
      local h = require 'lufa.http'
      print(package.searchpath('lufa.http', package.path):match('^%./') ~= nil, h.shadow)]])
    -- the cwd copy is first on package.path, and still not the one loaded
    assert.are.equal("true\tnil\n", out)
  end)

  it("are overridden by a LUA_PATH the user set", function()
    local out = run_in(dir, "LUA_PATH='./?.lua;;'", "print(require('lufa.http').shadow)")
    assert.are.equal("cwd\n", out)
  end)

  it("are overridden by a LUA_PATH_5_4 naming another folder", function()
    local other = util.tempdir()
    assert(os.execute("mkdir -p " .. util.shell_quote(other .. "/lufa")))
    util.write_file(other .. "/lufa/http.lua", "return { shadow = 'explicit' }\n")
    local out = run_in(dir, "LUA_PATH_5_4=" .. util.shell_quote(other .. "/?.lua"), "print(require('lufa.http').shadow)")
    os.execute("rm -rf " .. util.shell_quote(other))
    assert.are.equal("explicit\n", out)
  end)

  it("are overridden through package.preload", function()
    local out = run_in(dir, "", "package.preload['lufa.http'] = function() return { shadow = 'preload' } end;" ..
      "print(require('lufa.http').shadow)")
    assert.are.equal("preload\n", out)
  end)

  it("leave a lufa.* name lufa does not ship to package.path (a user's own activity module)", function()
    local out = run_in(dir, "", "print(require('lufa.activities.MyOwnType').mine)")
    assert.are.equal("true\n", out)
  end)
end)
