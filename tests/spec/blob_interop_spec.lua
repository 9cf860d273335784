-- lufa.blob and the official Azure Storage SDK (@azure/storage-blob) reading each other's blobs, and the
-- SDK using SAS URLs that lufa made. Runs against the emulator over HTTP.
local blob = require "lufa.blob"
local secret = require "lufa.secret"
local S = require "tests.spec.blob_support"

local MiB = 1024 * 1024
local BIG = 200 * MiB + 4321  -- not a multiple of the block size, so the last block is short

describe("interoperability with @azure/storage-blob", function()
  local state, env, client, box, work, conn

  setup(function()
    work = S.tmpdir()
    state, env = S.start_emulators(false)
    conn = env.LUFA_EMU_STORAGE_CONNECTION_STRING
    client = assert(blob.client(conn))
    box = client:container("interop")
    assert(box:create())
  end)

  teardown(function()
    S.stop_emulators(state)
    S.remove_tree(work)
  end)

  it("the SDK reads a 200 MB multi-block blob that lufa wrote, with the same SHA-256", function()
    local src = work .. "/lufa-wrote.bin"
    local sum = S.random_file(src, BIG)
    local blocks = 0
    assert(box:blob("from-lufa.bin"):put({ file = src }, { progress = function() blocks = blocks + 1 end }))
    assert.is_true(blocks > 20)  -- it really went up in blocks (8 MiB each by default)
    local seen = S.sdk("hash", { conn = conn, container = "interop", blob = "from-lufa.bin" })
    assert.is_true(seen.ok)
    assert.are.equal(BIG, seen.size)
    assert.are.equal(sum, seen.sha256)
    os.remove(src)
  end)

  it("lufa reads a 200 MB blob that the SDK wrote in blocks, with the same SHA-256", function()
    local src = work .. "/sdk-wrote.bin"
    local sum = S.random_file(src, BIG)
    local up = S.sdk("upload", { conn = conn, container = "interop", blob = "from-sdk.bin", file = src,
      ["block-size"] = tostring(4 * MiB) })
    assert.is_true(up.ok)
    os.remove(src)
    local dest = work .. "/lufa-read.bin"
    local props = assert(box:blob("from-sdk.bin"):get{ file = dest })
    assert.are.equal(BIG, props.size)
    assert.are.equal(sum, S.sha256(dest))
    os.remove(dest)
  end)

  it("the SDK accepts lufa's SAS URLs within their permissions", function()
    local b = box:blob("sas/shared.txt")
    assert(b:put("shared with the SDK"))
    local read_url = secret.expose(b:sas{ permissions = "r", expiry = 600 })
    local got = S.sdk("sas-hash", { url = read_url })
    assert.is_true(got.ok)
    assert.are.equal(#"shared with the SDK", got.size)

    local refused = S.sdk("sas-put", { url = read_url, text = "not allowed" })
    assert.is_false(refused.ok)
    assert.are.equal(403, refused.status)
    assert.are.equal("AuthorizationPermissionMismatch", refused.code)

    local write_url = secret.expose(box:blob("sas/from-sdk.txt"):sas{ permissions = "cw", expiry = 600 })
    assert.is_true(S.sdk("sas-put", { url = write_url, text = "written by the SDK" }).ok)
    assert.are.equal("written by the SDK", (box:blob("sas/from-sdk.txt"):get()))

    local listed = S.sdk("sas-list", { url = secret.expose(box:sas{ permissions = "rl", expiry = 600 }) })
    assert.is_true(listed.ok)
    local names = {}
    for _, n in ipairs(listed.names) do names[n] = true end
    assert.is_true(names["sas/shared.txt"] and names["sas/from-sdk.txt"])

    local expired = S.sdk("sas-hash", { url = secret.expose(b:sas{ permissions = "r", start = -7200, expiry = -3600 }) })
    assert.is_false(expired.ok)
    assert.are.equal(403, expired.status)
  end)
end)
