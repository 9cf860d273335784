-- A blob transfer with `progress = true`: a bar on a terminal (tmux), redrawn in place and ending at 100%;
-- nothing at all when standard error is a pipe or a file, or CI is set; no escape codes with TERM=dumb.
local S = require "tests.spec.blob_support"
local terminal = require "tests.support.terminal"
local util = require "tests.support.util"

local lufa_bin = util.lufa_binary()
local MiB = 1024 * 1024

local SCRIPT = [[
local blob = require "lufa.blob"
local box = blob.client(os.getenv("LUFA_EMU_STORAGE_CONNECTION_STRING")):container("progress")
box:create()
local path = arg[1]
assert(box:blob("model.bin"):put({ file = path }, { progress = true, block_size = 4 * 1024 * 1024,
  single_put_max = 4 * 1024 * 1024, concurrency = 2 }))
assert(box:blob("model.bin"):get{ file = path .. ".out", progress = true, range_size = 4 * 1024 * 1024 })
print("transfers done")
]]

local ACTIVITY = [[
-- an activity type that uploads the file MODEL names, with no progress option of its own
return { run = function()
  local blob = require "lufa.blob"
  local box = blob.client(os.getenv("LUFA_EMU_STORAGE_CONNECTION_STRING")):container("progress")
  box:create { exist_ok = true }
  assert(box:blob("from-run.bin"):put({ file = os.getenv("MODEL") }, { block_size = 4 * 1024 * 1024,
    single_put_max = 4 * 1024 * 1024, concurrency = 2 }))
  return {}
end }
]]

describe("the progress bar of a blob transfer", function()
  local state, env, work, script, data

  setup(function()
    state, env = S.start_emulators(false)
    work = S.tmpdir()
    script = work .. "/transfer.lua"
    local f = assert(io.open(script, "w"))
    f:write(SCRIPT)
    f:close()
    data = work .. "/model.bin"
    S.random_file(data, 24 * MiB)
    os.execute("mkdir -p " .. util.shell_quote(work .. "/factory/pipeline") .. " " .. util.shell_quote(work .. "/acts"))
    f = assert(io.open(work .. "/factory/pipeline/p.json", "w"))
    f:write('{"name": "p", "properties": {"activities": [{"name": "Upload model", "type": "UploadModel"}]}}')
    f:close()
    f = assert(io.open(work .. "/acts/UploadModel.lua", "w"))
    f:write(ACTIVITY)
    f:close()
  end)

  teardown(function()
    S.stop_emulators(state)
    S.remove_tree(work)
  end)

  local function command()
    return string.format("%s %s %s", util.shell_quote(lufa_bin), util.shell_quote(script), util.shell_quote(data))
  end

  local function on_terminal(extra, cmd)
    local vars = { LUFA_EMU_STORAGE_CONNECTION_STRING = env.LUFA_EMU_STORAGE_CONNECTION_STRING, CI = "", NO_COLOR = "",
      MODEL = data }
    for k, v in pairs(extra or {}) do vars[k] = v end
    local raw = work .. "/raw-" .. tostring(os.time()) .. "-" .. tostring(math.random(1e9))
    -- a moment for the recording to begin before the first byte
    local term = terminal.start("sh -c " .. util.shell_quote("sleep 0.5; exec " .. (cmd or command())), { env = vars })
    term:record(raw)
    local ok, screen = pcall(term.wait_for, term, "[exit", 60)
    term:stop()
    if not ok then error(screen, 0) end
    local f = io.open(raw, "rb")
    local bytes = f and f:read("a") or ""
    if f then f:close() end
    return screen, bytes
  end

  it("is drawn on a terminal, in place, up to 100%", function()
    local screen, bytes = on_terminal()
    assert.matches("transfers done", screen, 1, true)
    assert.matches("[exit 0]", screen, 1, true)
    local _, bars = screen:gsub("model%.bin %[####################%] 100%% 24%.0 MiB/24%.0 MiB", "")
    assert.are.equal(2, bars, screen)  -- the upload's line and the download's, each ended by a newline
    assert.truthy(bytes:find("\r\27[2K", 1, true), "redrawn in place")
  end)

  it("is plain with TERM=dumb: no escape codes", function()
    local screen, bytes = on_terminal({ TERM = "dumb" })
    assert.matches("[exit 0]", screen, 1, true)
    assert.truthy(screen:find("model.bin 100% 24.0 MiB/24.0 MiB", 1, true), screen)
    assert.is_nil(bytes:find("\27[", 1, true), "an escape code with TERM=dumb")
  end)

  it("stays away with CI set", function()
    local screen = on_terminal({ CI = "true" })
    assert.matches("transfers done", screen, 1, true)
    assert.is_nil(screen:find("100%", 1, true))
  end)

  it("writes nothing when standard error is a pipe", function()
    local p = assert(io.popen(string.format("env LUFA_EMU_STORAGE_CONNECTION_STRING=%s CI= %s 2>&1 | cat",
      util.shell_quote(env.LUFA_EMU_STORAGE_CONNECTION_STRING), command())))
    local out = p:read("a")
    assert.is_true(p:close())
    assert.are.equal("transfers done\n", out)
  end)

  local function run_command()
    return string.format("%s run %s p --activities %s --store :memory:", util.shell_quote(lufa_bin),
      util.shell_quote(work .. "/factory"), util.shell_quote(work .. "/acts"))
  end

  it("shows in lufa run's live view under the activity that makes it, and leaves no line behind", function()
    local screen, bytes = on_terminal(nil, run_command())
    assert.matches("[exit 0]", screen, 1, true)
    assert.matches("pipeline p: Succeeded", screen, 1, true)
    assert.truthy(bytes:find("   ↳ from-run.bin [", 1, true), "no transfer line was drawn")
    assert.truthy(bytes:find("↳ from-run.bin [####################] 100% 24.0 MiB/24.0 MiB", 1, true))
    assert.is_nil(screen:find("↳", 1, true), screen)  -- cleared when the transfer ended
  end)

  it("is not shown by lufa run when standard error is a pipe", function()
    local p = assert(io.popen(string.format("env LUFA_EMU_STORAGE_CONNECTION_STRING=%s MODEL=%s CI= %s 2>&1 | cat",
      util.shell_quote(env.LUFA_EMU_STORAGE_CONNECTION_STRING), util.shell_quote(data), run_command())))
    local out = p:read("a")
    assert.is_true(p:close(), out)
    assert.matches("pipeline p: Succeeded", out, 1, true)
    assert.is_nil(out:find("↳", 1, true), out)
    assert.is_nil(out:find("\27", 1, true), out)
  end)
end)
