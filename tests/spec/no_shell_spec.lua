-- No shell anywhere in lufa's own Lua modules: a path or a name handed to a shell is a command waiting to
-- happen (`lufa validate '/tmp/x$(touch PWNED)'`). Every file under lua/ is read and any way of reaching a
-- shell is reported as file:line. Folders are read with lufa.fs; tests and scripts may keep their shells.

local fs = require "lufa.fs"

-- Lua spellings that start a program: io.popen (and any popen), os.execute in either indexing form.
local FORBIDDEN = {
  { pattern = "%f[%w_]popen%f[^%w_]", what = "popen" },
  { pattern = "os%s*%.%s*execute%f[^%w_]", what = "os.execute" },
  { pattern = "os%s*%[%s*[\"']execute[\"']%s*%]", what = "os[\"execute\"]" },
}

local function lua_files(dir, out)
  for _, name in ipairs(assert(fs.list(dir))) do
    local path = dir .. "/" .. name
    if fs.is_dir(path) then
      lua_files(path, out)
    elseif fs.is_file(path) then
      out[#out + 1] = path
    end
  end
  return out
end

-- "file:line: what" for every forbidden use in text.
local function offences(file, text)
  local found = {}
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    for _, f in ipairs(FORBIDDEN) do
      if line:find(f.pattern) then found[#found + 1] = string.format("%s:%d: %s", file, n, f.what) end
    end
  end
  return found
end

describe("no shell in lua/", function()
  it("the scan catches every spelling", function()
    local sample = table.concat({
      "local p = io.popen('ls ' .. dir)",
      "os.execute('rm -rf ' .. dir)",
      "local run = os [ 'execute' ]",
      "local f = io['popen']",
      "local ok = fs.list(dir)",
      "local executed, popener = 1, 2",
    }, "\n")
    assert.are.same({ "x.lua:1: popen", "x.lua:2: os.execute", "x.lua:3: os[\"execute\"]", "x.lua:4: popen" },
      offences("x.lua", sample))
  end)

  it("finds no io.popen or os.execute in any file under lua/", function()
    local files = lua_files("lua", {})
    assert.is_true(#files > 20, "lua/ should hold lufa's modules")
    local all = {}
    for _, file in ipairs(files) do
      for _, o in ipairs(offences(file, assert(fs.read_file(file)))) do all[#all + 1] = o end
    end
    assert.are.same({}, all, "shell use:\n" .. table.concat(all, "\n"))
  end)
end)
