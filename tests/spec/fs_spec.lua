-- lufa.fs: listing, stat, folders and whole-file writes by system calls alone. Paths with shell
-- metacharacters are only paths: a factory folder named `$(touch PWNED)` loads and runs nothing, files and
-- folders get exactly the mode asked for whatever the umask, and an atomic write is all or nothing.

local fs = require "lufa.fs"
local secret = require "lufa.secret"
local E = require "lufa.error"
local util = require "tests.support.util"

local shell_quote = util.shell_quote
local PID = util.own_pid()
local MARK = "PWNED-" .. PID  -- unique to this run, so a file left by anything else cannot fool the check

-- Names a shell would act on, and names that are merely unusual.
local ODD_NAMES = {
  "with space",
  'double"quote',
  "single'quote",
  "$(touch " .. MARK .. ")",
  "`touch " .. MARK .. "`",
  "new\nline",
  "na\xc3\xafve-\xe6\x97\xa5\xe6\x9c\xac",  -- "naïve-日本" in UTF-8
  "-starts-with-dash",
}

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out
end

local function rm_rf(path)
  os.execute("rm -rf " .. shell_quote(path))
end

local function copy_tree(from, to)
  assert(fs.mkdir(to))
  for _, name in ipairs(assert(fs.list(from))) do
    local src, dst = from .. "/" .. name, to .. "/" .. name
    if fs.is_dir(src) then
      copy_tree(src, dst)
    else
      assert(fs.write_file(dst, assert(fs.read_file(src))))
    end
  end
end

local function mode_of(path)
  return assert(fs.stat(path)).mode
end

describe("lufa.fs", function()
  local dir
  before_each(function() dir = util.tempdir() end)
  after_each(function() rm_rf(dir) end)

  describe("list", function()
    it("gives every entry, hidden ones included, sorted by bytes, without . and ..", function()
      for _, n in ipairs{ "b", ".hidden", "A", "a", "_x", "Z.json" } do util.write_file(dir .. "/" .. n, n) end
      assert(fs.mkdir(dir .. "/sub"))
      assert.are.same({ ".hidden", "A", "Z.json", "_x", "a", "b", "sub" }, fs.list(dir))
      assert.are.same({}, fs.list(dir .. "/sub"))
    end)

    it("returns nil and an fs error naming the path and the errno", function()
      local names, err = fs.list(dir .. "/missing")
      assert.is_nil(names)
      assert.is_true(E.is(err))
      assert.are.equal("fs", err.kind)
      assert.are.equal("ENOENT", err.code)
      assert.are.equal(dir .. "/missing", err.path)
      assert.matches("cannot list '" .. dir .. "/missing'", tostring(err), 1, true)
      util.write_file(dir .. "/f", "")
      assert.are.equal("ENOTDIR", select(2, fs.list(dir .. "/f")).code)
    end)

    it("raises on misuse", function()
      assert.has_error(function() fs.list() end)
      assert.has_error(function() fs.list("a\0b") end)
      assert.has_error(function() fs.list("") end)
      assert.has_error(function() fs.mkdir(dir .. "/m", "9") end)        -- not octal
      assert.has_error(function() fs.mkdir(dir .. "/m", 65536) end)      -- not permission bits
      assert.has_error(function() fs.write_file(dir .. "/m", {}) end)    -- data must be a string or secret
      assert.has_error(function() fs.write_file(dir .. "/m", "", { mode = "rw" }) end)
    end)
  end)

  describe("stat and lstat", function()
    it("describe files, folders and links", function()
      util.write_file(dir .. "/f", "12345")
      assert(fs.mkdir(dir .. "/d", "750"))  -- Lua has no octal literals: a string of octal digits
      assert(os.execute("ln -s f " .. shell_quote(dir .. "/l")))
      local before = os.time()
      local st = assert(fs.stat(dir .. "/f"))
      assert.are.equal("file", st.type)
      assert.are.equal(5, st.size)
      assert.are.equal("float", math.type(st.mtime))
      assert.is_true(math.abs(st.mtime - before) < 60)
      assert.are.equal("integer", math.type(st.mode))
      assert.are.equal("directory", fs.stat(dir .. "/d").type)
      assert.are.equal(tonumber("750", 8), fs.stat(dir .. "/d").mode)
      assert.are.equal("file", fs.stat(dir .. "/l").type)   -- stat follows the link
      assert.are.equal("link", fs.lstat(dir .. "/l").type)  -- lstat does not
      assert.are.equal("other", fs.stat("/dev/null").type)
      local none, err = fs.stat(dir .. "/none")
      assert.is_nil(none)
      assert.are.equal("ENOENT", err.code)
    end)

    it("is_dir and is_file answer for any string", function()
      util.write_file(dir .. "/f", "")
      assert.is_true(fs.is_dir(dir))
      assert.is_false(fs.is_dir(dir .. "/f"))
      assert.is_true(fs.is_file(dir .. "/f"))
      assert.is_false(fs.is_file(dir))
      assert.is_false(fs.is_dir(dir .. "/none"))
      assert.is_false(fs.is_dir(""))
      assert.is_false(fs.is_file("a\0b"))
    end)
  end)

  describe("folders", function()
    it("mkdir creates missing parents, accepts an existing folder, refuses a file", function()
      assert.is_true(fs.mkdir(dir .. "/a/b//c/"))
      assert.is_true(fs.is_dir(dir .. "/a/b/c"))
      assert.is_true(fs.mkdir(dir .. "/a/b/c"))
      util.write_file(dir .. "/f", "")
      local ok, err = fs.mkdir(dir .. "/f")
      assert.is_nil(ok)
      assert.are.equal("EEXIST", err.code)
      ok, err = fs.mkdir(dir .. "/x/y", nil, false)
      assert.is_nil(ok)
      assert.are.equal("ENOENT", err.code)
      assert.is_true(fs.mkdir(dir .. "/x", nil, false))
    end)

    it("remove, rename and realpath", function()
      util.write_file(dir .. "/f", "x")
      assert.is_true(fs.rename(dir .. "/f", dir .. "/g"))
      assert.is_false(fs.is_file(dir .. "/f"))
      assert.are.equal(fs.realpath(dir) .. "/g", fs.realpath(dir .. "/./g"))
      local ok, err = fs.rename(dir .. "/none", dir .. "/h")
      assert.is_nil(ok)
      assert.are.equal("ENOENT", err.code)
      assert.matches("cannot rename '" .. dir .. "/none' to '" .. dir .. "/h'", err.message, 1, true)
      assert.is_true(fs.remove(dir .. "/g"))
      assert(fs.mkdir(dir .. "/d/e"))
      assert.are.equal("ENOTEMPTY", select(2, fs.remove(dir .. "/d")).code)
      assert.is_true(fs.remove(dir .. "/d/e"))
      assert.is_true(fs.remove(dir .. "/d"))
      assert.are.equal("ENOENT", select(2, fs.realpath(dir .. "/d")).code)
    end)
  end)

  describe("whole files", function()
    it("write_file and read_file keep every byte, from strings and secrets", function()
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local data = table.concat(bytes):rep(1000)
      assert.is_true(fs.write_file(dir .. "/bin", data))
      assert.are.equal(data, fs.read_file(dir .. "/bin"))
      assert.is_true(fs.write_file(dir .. "/key", secret("private-key-bytes")))
      assert.are.equal("private-key-bytes", fs.read_file(dir .. "/key"))
      assert.is_true(fs.write_file(dir .. "/empty", ""))
      assert.are.equal("", fs.read_file(dir .. "/empty"))
      assert.is_true(fs.write_file(dir .. "/plain", "v1", { atomic = false }))
      assert.is_true(fs.write_file(dir .. "/plain", "v2", { atomic = false }))
      assert.are.equal("v2", fs.read_file(dir .. "/plain"))
      assert.are.equal("ENOENT", select(2, fs.read_file(dir .. "/none")).code)
      assert.are.equal("EISDIR", select(2, fs.read_file(dir)).code)
      assert.truthy(fs.read_file("/proc/self/stat"):find("^%d+ "))  -- size 0 in stat, read to the end
    end)

    it("an atomic write leaves no temporary file behind", function()
      for i = 1, 5 do assert.is_true(fs.write_file(dir .. "/f", "version " .. i)) end
      assert.are.equal("version 5", fs.read_file(dir .. "/f"))
      assert.are.same({ "f" }, fs.list(dir))
    end)

    it("a failed atomic write keeps the old content and removes its temporary file", function()
      assert(fs.mkdir(dir .. "/target"))
      util.write_file(dir .. "/target/inside", "old")
      local ok, err = fs.write_file(dir .. "/target", "new")  -- rename(2) cannot replace a folder by a file
      assert.is_nil(ok)
      assert.are.equal("fs", err.kind)
      assert.is_truthy(({ EISDIR = true, ENOTEMPTY = true, EEXIST = true })[err.code], err.code)
      assert.are.same({ "target" }, fs.list(dir))
      assert.are.equal("old", fs.read_file(dir .. "/target/inside"))
      util.write_file(dir .. "/file", "old")
      ok, err = fs.write_file(dir .. "/file/child", "new")  -- the temporary file cannot even be made
      assert.is_nil(ok)
      assert.are.equal("ENOTDIR", err.code)
      assert.are.equal("old", fs.read_file(dir .. "/file"))
      assert.are.same({ "file", "target" }, fs.list(dir))
    end)

    it("gives created files 0600 and folders 0700 by default, and exactly the mode asked, whatever the umask", function()
      local script = dir .. "/make.lua"
      util.write_file(script, [[
        local fs = require "lufa.fs"
        local d = arg[1]
        assert(fs.mkdir(d .. "/private/nested"))
        assert(fs.write_file(d .. "/private/f", "x"))
        assert(fs.write_file(d .. "/private/g", "x", { atomic = false }))
        assert(fs.mkdir(d .. "/open", tonumber("755", 8)))
        assert(fs.write_file(d .. "/open/f", "x", { mode = "644" }))
        assert(fs.write_file(d .. "/open/g", "x", { mode = tonumber("640", 8), atomic = false }))
      ]])
      for _, mask in ipairs{ "022", "077", "000" } do
        local out = dir .. "/umask" .. mask
        assert(fs.mkdir(out))
        local code, text = sh(string.format("umask %s && %s %s %s", mask, shell_quote(util.lufa_binary()),
          shell_quote(script), shell_quote(out)))
        assert.are.equal(0, code, text)
        assert.are.equal(tonumber("700", 8), mode_of(out .. "/private"), mask)
        assert.are.equal(tonumber("700", 8), mode_of(out .. "/private/nested"), mask)
        assert.are.equal(tonumber("600", 8), mode_of(out .. "/private/f"), mask)
        assert.are.equal(tonumber("600", 8), mode_of(out .. "/private/g"), mask)
        assert.are.equal(tonumber("755", 8), mode_of(out .. "/open"), mask)
        assert.are.equal(tonumber("644", 8), mode_of(out .. "/open/f"), mask)
        assert.are.equal(tonumber("640", 8), mode_of(out .. "/open/g"), mask)
      end
    end)
  end)

  describe("paths with shell metacharacters, newlines and UTF-8", function()
    it("are only paths to every function", function()
      for i, name in ipairs(ODD_NAMES) do
        local d = dir .. "/" .. name
        assert.is_true(fs.mkdir(d .. "/" .. name), name)
        assert.is_true(fs.write_file(d .. "/" .. name .. "/" .. name, name), name)
        assert.are.same({ name }, fs.list(d .. "/" .. name))
        assert.are.equal(name, fs.read_file(d .. "/" .. name .. "/" .. name))
        assert.are.equal("file", fs.stat(d .. "/" .. name .. "/" .. name).type)
        assert.is_true(fs.rename(d .. "/" .. name .. "/" .. name, d .. "/renamed" .. i))
        assert.is_true(fs.is_file(d .. "/renamed" .. i))
        assert.is_true(fs.remove(d .. "/renamed" .. i))
        assert.is_truthy(fs.realpath(d .. "/" .. name))
      end
      local listed = fs.list(dir)
      local expected = { table.unpack(ODD_NAMES) }
      table.sort(expected)
      assert.are.same(expected, listed)
      assert.is_false(fs.is_file(dir .. "/" .. MARK))
    end)

    it("a factory folder with such a name loads with `lufa validate`, and no command in it runs", function()
      local cwd = util.tempdir()  -- the child's working directory: where `touch` would land
      finally(function() rm_rf(cwd) end)
      local probe = os.tmpname()  -- the temporary folder, as Lua's os.tmpname sees it
      os.remove(probe)
      local tmp_dir = probe:match("^(.*)/[^/]*$")
      local repo = assert(fs.realpath("."))
      local places = { cwd, dir, repo, tmp_dir }
      for _, name in ipairs(ODD_NAMES) do
        local factory = dir .. "/" .. name .. "-factory " .. name
        copy_tree("tests/fixtures/pipelines/aml_sample", factory)
        -- no C modules from the Lua path (LuaFileSystem among them): lufa must need none to read a folder
        local code, out = sh(string.format("cd %s && LUA_CPATH=/nonexistent/?.so %s validate %s </dev/null",
          shell_quote(cwd), shell_quote(util.lufa_binary()), shell_quote(factory)))
        assert.are.equal(0, code, out)
        assert.matches("0 error%(s%), %d+ warning%(s%); pipelines: LookupPipelineDemo", out)
        for _, place in ipairs(places) do
          assert.is_false(fs.is_file(place .. "/" .. MARK), "a command in the name ran: " .. place .. "/" .. MARK)
        end
        assert.is_nil(fs.list(cwd)[1], "the child created " .. tostring(fs.list(cwd)[1]))
      end
    end)
  end)
end)
