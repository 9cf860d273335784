-- The LuaCATS annotations of lufa's public Lua API and the reference generated from them
-- (scripts/api-reference, docs/api/reference/).
local fs = require "lufa.fs"
local util = require "tests.support.util"

local R = assert(loadfile("scripts/api-reference"))("--lib")

local REGENERATE = "build/lufa scripts/api-reference"

local function methods_of(obj)
  local mt = getmetatable(obj)
  assert(type(mt) == "table", "no metatable for " .. tostring(obj))
  local index = mt.__index
  -- a native __index function that also serves fields keeps its methods in its first upvalue
  if type(index) == "function" then index = select(2, debug.getupvalue(index, 1)) end
  assert(type(index) == "table", "no method table for " .. tostring(obj))
  return index
end

-- Objects of the documented classes, made without the network, so that their methods are checked at run
-- time too (a method missing from the annotations, and Lua methods' parameter counts).
local REACH = {
  ["lufa"] = function()
    local lufa = require "lufa"
    local t = lufa.spawn(function() end)
    t:wait()
    return { ["lufa.task"] = methods_of(t) }
  end,
  ["lufa.sqlite"] = function()
    local db = assert(require("lufa.sqlite").open(":memory:"))
    local stmt = db:prepare("SELECT 1")
    local out = { ["lufa.sqlite.db"] = methods_of(db), ["lufa.sqlite.stmt"] = methods_of(stmt) }
    stmt:finalize()
    db:close()
    return out
  end,
  ["lufa.crypto"] = function()
    local crypto = require "lufa.crypto"
    local h, fh = crypto.md5_new(), crypto.file_hasher()
    local out = { ["lufa.crypto.hash"] = methods_of(h), ["lufa.crypto.file_hasher"] = methods_of(fh) }
    h:close()
    fh:close()
    return out
  end,
  ["lufa.process"] = function()
    local p = assert(require("lufa.process").spawn({ "true" }))
    p:wait(30)
    return { ["lufa.process.child"] = methods_of(p) }
  end,
  ["lufa.server"] = function()
    local srv = assert(require("lufa.server").listen("127.0.0.1", 0))
    local out = { ["lufa.server.listener"] = methods_of(srv) }
    srv:close()
    return out
  end,
  ["lufa.blob"] = function()
    local c = assert(require("lufa.blob").client { account = "devstoreaccount1", key = "a2V5a2V5a2V5a2V5",
      endpoint = "http://127.0.0.1:10000/devstoreaccount1" })
    local container = c:container("models")
    return { ["lufa.blob.Client"] = methods_of(c), ["lufa.blob.Container"] = methods_of(container),
      ["lufa.blob.Blob"] = methods_of(container:blob("a.bin")) }
  end,
  ["lufa.keyvault"] = function()
    local aad = require "lufa.aad"
    local kv = require("lufa.keyvault").client { vault = "https://v.vault.azure.net",
      credential = aad.client_secret { tenant = "t", client_id = "c", client_secret = "s3cr3t-value" } }
    return { ["lufa.keyvault.Client"] = methods_of(kv) }
  end,
  ["lufa.aad"] = function()
    local cred = require("lufa.aad").client_secret { tenant = "t", client_id = "c", client_secret = "s3cr3t-value" }
    return { ["lufa.aad.Credential"] = methods_of(cred) }
  end,
  ["lufa.pipeline"] = function()
    return { ["lufa.pipeline.Factory"] = require("lufa.pipeline").Factory }
  end,
  ["lufa.azureml"] = function()
    local azureml = require "lufa.azureml"
    local opts = { endpoint = "https://ussouthcentral.services.azureml.net/workspaces/w/services/s/jobs",
      api_key = "k" }
    return { ["lufa.azureml.Batch"] = methods_of(azureml.batch(opts)),
      ["lufa.azureml.Scoring"] = methods_of(azureml.scoring(opts)) }
  end,
  ["lufa.azureml.v2.workspace"] = function()
    local ws = require("lufa.azureml.v2.workspace").new { subscription_id = "s", resource_group = "rg",
      workspace = "ws1", credential = { authorization = function() end } }
    return { ["lufa.azureml.v2.workspace.Workspace"] = methods_of(ws) }
  end,
  ["lufa.schedule.zone"] = function()
    return { ["lufa.schedule.zone.Zone"] = methods_of(require("lufa.schedule.zone").utc()) }
  end,
  ["lufa.schedule.cron"] = function()
    return { ["lufa.schedule.cron.Cron"] = methods_of(assert(require("lufa.schedule.cron").parse("* * * * *"))) }
  end,
  ["lufa.schedule.recurrence"] = function()
    local compiled = assert(require("lufa.schedule.recurrence").compile { frequency = "Hour", interval = 1,
      startTime = "2027-01-01T00:00:00Z" })
    return { ["lufa.schedule.recurrence.Compiled"] = methods_of(compiled) }
  end,
}

local function fail_with(problems, hint)
  if #problems > 0 then
    error("\n  " .. table.concat(problems, "\n  ") .. (hint and ("\n" .. hint) or ""), 2)
  end
end

describe("the public Lua API's annotations", function()
  for _, entry in ipairs(R.PUBLIC) do
    it(entry.name .. ": every exported function, field and class method is annotated", function()
      local model = R.parse_module(entry)
      local reach = REACH[entry.name] and REACH[entry.name]() or nil
      fail_with(R.check_module(model, require(entry.name), reach))
    end)
  end

  it("classes the spec reaches at run time are the documented ones", function()
    for name, make in pairs(REACH) do
      local entry
      for _, e in ipairs(R.PUBLIC) do if e.name == name then entry = e end end
      assert.is_table(entry, name .. " is not in the public list")
      local model = R.parse_module(entry)
      for class in pairs(make()) do
        assert.is_table(model.classes[class], name .. ": no ---@class " .. class)
      end
    end
  end)
end)

-- Module names under a folder of Lua files: lua/lufa/a/b.lua is lufa.a.b.
local function lua_modules(dir, prefix, out)
  for _, name in ipairs(assert(fs.list(dir))) do
    local path = dir .. "/" .. name
    if fs.is_dir(path) then
      lua_modules(path, prefix .. "." .. name, out)
    elseif name:match("%.lua$") then
      local mod = prefix .. "." .. name:gsub("%.lua$", "")
      out[#out + 1] = (mod:gsub("%.init$", ""))
    end
  end
  return out
end

describe("the list of public modules", function()
  local public = {}
  for _, e in ipairs(R.PUBLIC) do public[e.name] = e end

  it("names every module under lua/lufa/ as public or internal, with a reason", function()
    local unclassified = {}
    for _, mod in ipairs(lua_modules("lua/lufa", "lufa", {})) do
      if not public[mod] and not R.internal_reason(mod) then unclassified[#unclassified + 1] = mod end
    end
    fail_with(unclassified, "add each to PUBLIC (and annotate it) or to INTERNAL in scripts/api-reference")
  end)

  it("names every native module of host/modules.c as public or internal", function()
    local text = assert(util.read_file("host/modules.c"))
    local names, unclassified = 0, {}
    for mod in text:gmatch('{"(lufa[%w_.]*)", luaopen_') do
      names = names + 1
      if not public[mod] and not R.internal_reason(mod) then unclassified[#unclassified + 1] = mod end
    end
    assert.is_true(names >= 10, "host/modules.c lists no modules any more?")
    fail_with(unclassified)
  end)

  it("reads every file the public list names, and a native module's file is under types/", function()
    for _, e in ipairs(R.PUBLIC) do
      for _, file in ipairs(e.files) do assert.is_true(fs.is_file(file), e.name .. ": " .. file .. " is missing") end
      if package.preload[e.name] then
        assert.matches("^types/", e.files[1])
      end
    end
  end)
end)

describe("docs/api/reference/", function()
  it("is what scripts/api-reference writes from the annotations", function()
    local dir = util.tempdir()
    local written = R.generate(dir)
    local problems = {}
    local expected = {}
    for _, name in ipairs(written) do
      expected[name] = true
      local fresh = util.read_file(dir .. "/" .. name)
      local committed = util.read_file("docs/api/reference/" .. name)
      if committed == nil then
        problems[#problems + 1] = "docs/api/reference/" .. name .. " is missing"
      elseif committed ~= fresh then
        problems[#problems + 1] = "docs/api/reference/" .. name .. " is stale"
      end
      fs.remove(dir .. "/" .. name)
    end
    fs.remove(dir)
    for _, name in ipairs(assert(fs.list("docs/api/reference"))) do
      if not expected[name] then problems[#problems + 1] = "docs/api/reference/" .. name .. " is no module's page" end
    end
    fail_with(problems, "regenerate with: " .. REGENERATE)
  end)

  it("is linked from docs/api/README.md", function()
    local readme = assert(util.read_file("docs/api/README.md"))
    assert.is_truthy(readme:find("reference/", 1, true))
    assert.is_truthy(readme:find(REGENERATE, 1, true))
    assert.is_truthy(readme:find(".luarc.json", 1, true))
    for _, e in ipairs(R.PUBLIC) do
      assert.is_truthy(readme:find("(reference/" .. e.name .. ".md)", 1, true), "no link to the page of " .. e.name)
    end
  end)
end)

describe(".luarc.json", function()
  it("points the language server at lua/ and types/ for Lua 5.4", function()
    local json = require "lufa.json"
    local cfg = assert(json.decode_file(".luarc.json"))
    assert.are.equal("Lua 5.4", cfg["runtime.version"])
    local library = {}
    for _, dir in ipairs(cfg["workspace.library"]) do library[dir] = true end
    assert.is_true(library["lua"] and library["types"], "workspace.library must hold lua and types")
  end)
end)

describe("lua-language-server", function()
  it("--check finds no error in the workspace .luarc.json describes", function()
    if not os.execute("command -v lua-language-server >/dev/null 2>&1") then
      pending("lua-language-server is not installed (Debian 12 has no package): the checks above stand in for it")
      return
    end
    local log = util.tempdir()
    local p = assert(io.popen("lua-language-server --check=. --checklevel=Error --logpath=" .. util.shell_quote(log)
      .. " 2>&1"))
    local out = p:read("a")
    local ok = p:close()
    os.execute("rm -rf " .. util.shell_quote(log))
    assert.is_true(ok == true, out)
    assert.matches("no problems found", out)
  end)
end)

-- A small module with known faults: the checker must name each one, with its file and line.
local SYNTHETIC = [[
--- A module made for the checker's own test.
---
--- Example:
--- ```lua
--- print(require("synthetic").add(1, 2))
--- ```

---@class synthetic
---@field VERSION string its version
local M = {}

M.VERSION = "1"
M.UNDOCUMENTED = 3

--- Adds two numbers.
---@param a number
---@param b number
---@return number sum
function M.add(a, b) return a + b end

function M.bare(x) return x end

--- Takes two, documents one.
---@param a number
function M.short(a, b) return end

---@param s string
---@return string
function M.no_description(s) return s end

--- Gives a value without saying so.
function M.silent()
  local t = { f = function() return 1 end }
  return t.f() + 1
end

--- Returns nothing: a bare return, and a value only inside a nested function.
---@param list table
function M.walk(list)
  if not list then return end
  table.sort(list, function(a, b)
    return a < b
  end)
end

--- Documented but gone.
---@return nil
function M.gone() end

local Thing = {}

--- A method of a table that is no ---@class.
function Thing:poke() end

return M
]]

describe("the checker", function()
  local dir, path, problems

  setup(function()
    dir = util.tempdir()
    path = dir .. "/synthetic.lua"
    util.write_file(path, SYNTHETIC)
    local mod = assert(loadfile(path))()
    mod.gone = nil  -- documented, no longer exported
    problems = R.check_module(R.parse_module({ name = "synthetic", files = { path } }), mod)
  end)

  teardown(function()
    fs.remove(path)
    fs.remove(dir)
  end)

  local function problem(pattern)
    for _, p in ipairs(problems) do if p:find(pattern, 1, true) then return p end end
    error("no problem reported matching '" .. pattern .. "'; reported:\n  " .. table.concat(problems, "\n  "), 2)
  end

  local function line_of(text)
    local n = 0
    for l in (SYNTHETIC .. "\n"):gmatch("(.-)\n") do
      n = n + 1
      if l == text then return n end
    end
    error("not in the module: " .. text)
  end

  it("names an unannotated function with its module, name, file and line", function()
    assert.are.equal(("synthetic.bare (%s:%d): no annotation (a `---` description with ---@param and ---@return)")
      :format(path, line_of("function M.bare(x) return x end")), problem("synthetic.bare "))
  end)

  it("counts the parameters against debug.getinfo", function()
    assert.matches("documented %(a%), the function takes 2", problem("synthetic.short "))
  end)

  it("wants a description", function()
    assert.matches("no description$", problem("synthetic.no_description "))
  end)

  it("wants ---@return for a function that returns a value, and not for a bare return", function()
    assert.matches("returns values but has no ---@return", problem("synthetic.silent "))
    for _, p in ipairs(problems) do assert.is_nil(p:find("synthetic.walk", 1, true), p) end
  end)

  it("reports fields without ---@field, documented functions that are gone, and tables without a class", function()
    assert.matches("field without ---@field", problem("synthetic.UNDOCUMENTED "))
    assert.matches("documented, but the module has no such function", problem("synthetic.gone "))
    assert.matches("not declared with ---@class", problem("Thing:poke"))
  end)

  it("finds nothing wrong with a well annotated function", function()
    for _, p in ipairs(problems) do
      assert.is_nil(p:find("synthetic.add", 1, true), p)
      assert.is_nil(p:find("synthetic.VERSION", 1, true), p)
    end
    assert.are.equal(7, #problems, table.concat(problems, "\n"))
  end)

  it("wants an example in the module's header", function()
    local bare = dir .. "/bare.lua"
    util.write_file(bare, "---@class bare\nlocal M = {}\nreturn M\n")
    local found = R.check_module(R.parse_module({ name = "bare", files = { bare } }), {})
    fs.remove(bare)
    assert.are.same({ 'bare: no example (an "Example:" fenced block in the module\'s header comment)' }, found)
  end)
end)
