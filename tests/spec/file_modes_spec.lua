-- Files lufa writes that can hold data are private (0600) whatever the umask: blob downloads (also while
-- in progress), lufa.http's output_file, and the run store with its SQLite side files. Each case runs in a
-- child lufa under umask 000 and 022, against the local stand-ins (Azurite) and the test HTTP server.
local json = require "lufa.json"
local server = require "tests.support.server"
local util = require "tests.support.util"
local S = require "tests.spec.blob_support"

local CHILD = [[
local blob, http, fs, runs = require "lufa.blob", require "lufa.http", require "lufa.fs", require "lufa.runs"
local json = require "lufa.json"
local dir, cs, url = arg[1], arg[2], arg[3]
local modes = {}
local function mode(name, path)
  local st = assert(fs.stat(path))
  modes[name] = string.format("%o", st.mode)
end

local box = assert(blob.client(cs)):container("file-modes")
assert(box:create { exist_ok = true })
local b = box:blob("data.bin")
assert(b:put(string.rep("x", 3 * 1024 * 1024)))
assert(b:get { file = dir .. "/download.bin", range_size = 1024 * 1024, progress = function()
  for _, name in ipairs(assert(fs.list(dir))) do
    if name:find("download.bin.lufa-part", 1, true) then mode("download in progress", dir .. "/" .. name) end
  end
end })
mode("blob download", dir .. "/download.bin")

assert(http.request { url = url, output_file = dir .. "/http.out" })
mode("http output_file", dir .. "/http.out")

local store = assert(runs.open(dir .. "/state/runs.db"))
store:put_pipeline_run({ runId = runs.guid(), pipelineName = "p", status = "Succeeded" }, {})
store:flush()
for _, name in ipairs(assert(fs.list(dir .. "/state"))) do mode("run store " .. name, dir .. "/state/" .. name) end
mode("run store folder", dir .. "/state")
store:close()
print(json.encode(modes))
]]

describe("files lufa writes", function()
  local state, env, srv, script
  setup(function()
    state, env = S.start_emulators(false)
    srv = server.start()
    script = os.tmpname()
    util.write_file(script, CHILD)
  end)
  teardown(function()
    if srv then srv:stop() end
    S.stop_emulators(state)
    if script then os.remove(script) end
  end)

  for _, mask in ipairs { "000", "022" } do
    it("are private under umask " .. mask, function()
      local dir = S.tmpdir()
      local out = S.run(string.format("umask %s && %s %s %s %s %s 2>&1", mask, S.quote(util.lufa_binary()),
        S.quote(script), S.quote(dir), S.quote(env.LUFA_EMU_STORAGE_CONNECTION_STRING), S.quote(srv.url .. "/echo")))
      S.remove_tree(dir)
      local modes = assert(json.decode(out:match("{.*}")), out)
      assert.are.equal("600", modes["download in progress"], out)
      assert.are.equal("600", modes["blob download"], out)
      assert.are.equal("600", modes["http output_file"], out)
      assert.are.equal("600", modes["run store runs.db"], out)
      assert.are.equal("700", modes["run store folder"], out)
      local files = 0
      for name, m in pairs(modes) do
        if name:find("^run store ") and name ~= "run store folder" then
          files = files + 1
          assert.are.equal("600", m, name .. " " .. out)
        end
      end
      assert.is_true(files >= 1)
    end)
  end
end)
