-- crypto.file_hasher: regions hashed in feed order on a worker thread while the loop keeps running.
local lufa = require "lufa"
local crypto = require "lufa.crypto"

local path = os.tmpname()

setup(function()
  -- 24 MiB of varied bytes, made once
  local f = assert(io.open(path, "wb"))
  local block = {}
  for i = 1, 4096 do block[i] = string.char((i * 7 + 13) % 256) end
  block = table.concat(block):rep(256)  -- 1 MiB
  for i = 1, 24 do f:write(block:sub(i) .. block:sub(1, i - 1)) end
  f:close()
end)

teardown(function() os.remove(path) end)

describe("crypto.file_hasher", function()
  it("gives the digest of the whole file when fed its regions in order", function()
    local h = crypto.file_hasher("md5")
    for i = 0, 23 do h:feed(path, i * 1048576, 1048576) end
    assert.equal(crypto.hex(assert(crypto.md5_file(path))), crypto.hex(assert(h:finish())))
  end)

  it("hashes only the regions fed (sha256, an inner range)", function()
    local h = crypto.file_hasher("sha256")
    h:feed(path, 1000, 5000)
    h:feed(path, 6000, 123456)
    assert.equal(crypto.hex(assert(crypto.sha256_file(path, 1000, 128456))), crypto.hex(assert(h:finish())))
  end)

  it("lets other tasks run while it hashes", function()
    local turns, finished = 0, false
    local ticker = lufa.spawn(function()
      while not finished do
        turns = turns + 1
        lufa.sleep(0)
      end
    end)
    local h = crypto.file_hasher("sha256")
    for _ = 1, 8 do h:feed(path, 0, 24 * 1048576) end  -- 192 MiB of work for the worker
    local d = assert(h:finish())
    finished = true
    ticker:wait()
    assert.equal(32, #d)
    assert.is_true(turns > 0)
  end)

  it("reports an unreadable file as an error naming it", function()
    local h = crypto.file_hasher()
    h:feed("/nonexistent/lufa-file", 0, 10)
    local d, err = h:finish()
    assert.is_nil(d)
    assert.equal("io", err.code)
    assert.matches("/nonexistent/lufa%-file", err.message)
  end)

  it("reports a region past the end of the file", function()
    local h = crypto.file_hasher()
    h:feed(path, 24 * 1048576 - 10, 20)
    local d, err = h:finish()
    assert.is_nil(d)
    assert.matches("shorter than the region fed", err.message)
  end)

  it("hashes nothing to the empty digest and refuses misuse", function()
    local h = crypto.file_hasher()
    assert.equal("d41d8cd98f00b204e9800998ecf8427e", crypto.hex(h:finish()))
    assert.has_error(function() h:feed(path, 0, 1) end, "cannot feed a file hasher after finish")
    assert.has_error(function() crypto.file_hasher("crc32") end)
    local c = crypto.file_hasher()
    c:feed(path, 0, 1048576)
    c:close()  -- stops the worker; idempotent
    c:close()
    assert.has_error(function() c:finish() end, "attempt to use a closed file hasher")
  end)

  it("is cancelled with its task: the waiting task unwinds, the worker stops", function()
    local t = lufa.spawn(function()
      local h <close> = crypto.file_hasher()
      for _ = 1, 40 do h:feed(path, 0, 24 * 1048576) end
      return h:finish()
    end)
    lufa.sleep(0.01)
    t:cancel("test")
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.equal("cancelled", err.code)
  end)
end)
