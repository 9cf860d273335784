-- lufa.blob against the Blob Storage emulator over HTTP: Shared Key, SAS (also through curl), errors,
-- parallel transfers with integrity checks, and listing 5,000 blobs page by page.
local blob = require "lufa.blob"
local transport = require "lufa.blob.transport"
local lufa = require "lufa"
local secret = require "lufa.secret"
local crypto = require "lufa.crypto"
local S = require "tests.spec.blob_support"

local MiB = 1024 * 1024

describe("lufa.blob against the emulator (Shared Key over HTTP)", function()
  local state, env, client, work, box
  local fast_retry = { attempts = 2, base_delay = 0.01, max_delay = 0.05 }

  setup(function()
    work = S.tmpdir()
    state, env = S.start_emulators(false)
    client = assert(blob.client(env.LUFA_EMU_STORAGE_CONNECTION_STRING))
    box = client:container("lufa-spec")
    assert(box:create())
  end)

  teardown(function()
    S.stop_emulators(state)
    S.remove_tree(work)
  end)

  describe("containers", function()
    it("are created, found, refused twice and deleted", function()
      local c = client:container("short-lived")
      local exists, xerr = c:exists()
      assert.is_nil(xerr)
      assert.is_false(exists)
      assert.is_true(c:create())
      assert.is_true(c:exists())
      local ok, err = c:create()
      assert.is_nil(ok)
      assert.are.equal("blob", err.kind)
      assert.are.equal("ContainerAlreadyExists", err.code)
      assert.are.equal(409, err.status)
      assert.is_string(err.request_id)
      assert.is_true(c:create{ exist_ok = true })
      local names = {}
      for _, item in ipairs(assert(client:containers())) do names[item.name] = true end
      assert.is_true(names["short-lived"] and names["lufa-spec"])
      assert.is_true(c:delete())
      assert.is_false(c:exists())
      ok, err = c:delete()
      assert.is_nil(ok)
      assert.are.equal("ContainerNotFound", err.code)
      assert.are.equal(404, err.status)
    end)

    it("report a missing container on upload", function()
      local ok, err = client:container("no-such-box"):blob("a.txt"):put("x")
      assert.is_nil(ok)
      assert.are.equal("ContainerNotFound", err.code)
      assert.matches("Put Blob no-such-box/a.txt: ContainerNotFound (HTTP 404)", err.message, 1, true)
    end)
  end)

  describe("blobs", function()
    it("round-trip a string with content type, metadata and MD5", function()
      local b = box:blob("docs/hello world.txt")
      local put = assert(b:put("Hello, Azure!", { content_type = "text/plain; charset=utf-8",
        metadata = { owner = "lufa", run = "42" } }))
      assert.are.equal("lZhMZDckyBLOzwM6r3q68A==", put.content_md5)
      assert.matches('^"0x%x+"$', put.etag)
      local body, props = b:get()
      assert.are.equal("Hello, Azure!", body)
      assert.are.equal(put.etag, props.etag)
      local p = assert(b:properties())
      assert.are.equal(13, p.size)
      assert.are.equal("text/plain; charset=utf-8", p.content_type)
      assert.are.same({ owner = "lufa", run = "42" }, p.metadata)
      assert.is_true(b:exists())
    end)

    it("keep an existing blob when overwrite is false", function()
      local b = box:blob("keep.txt")
      assert(b:put("first"))
      local ok, err = b:put("second", { overwrite = false })
      assert.is_nil(ok)
      assert.are.equal("BlobAlreadyExists", err.code)
      assert.are.equal("first", (b:get()))
    end)

    it("report a missing blob with the service's code, status and request id", function()
      local b = box:blob("missing/blob.bin")
      local body, err = b:get()
      assert.is_nil(body)
      assert.are.equal("blob", err.kind)
      assert.are.equal("BlobNotFound", err.code)
      assert.are.equal(404, err.status)
      assert.is_string(err.request_id)
      local props, perr = b:properties()  -- HEAD: no body, the code comes from x-ms-error-code
      assert.is_nil(props)
      assert.are.equal("BlobNotFound", perr.code)
      assert.is_false(b:exists())
      local dest = work .. "/missing.bin"
      local got, gerr = b:get{ file = dest }
      assert.is_nil(got)
      assert.are.equal("BlobNotFound", gerr.code)
      assert.is_false(S.exists(dest))
      assert.are.same({}, S.files(work, "^missing"))
    end)

    it("are deleted, and a second delete says BlobNotFound", function()
      local b = box:blob("to-delete")
      assert(b:put(""))
      assert.is_true(b:delete())
      assert.is_false(b:exists())
      local ok, err = b:delete()
      assert.is_nil(ok)
      assert.are.equal("BlobNotFound", err.code)
    end)

    it("round-trip an empty blob to a file", function()
      local b = box:blob("empty")
      assert(b:put(""))
      local dest = work .. "/empty.out"
      local props = assert(b:get{ file = dest })
      assert.are.equal(0, props.size)
      assert.are.equal("", io.open(dest, "rb"):read("a"))
    end)

    it("upload a small file in one request and a large one in parallel blocks, and download it in ranges", function()
      local src = work .. "/model.bin"
      local sum = S.random_file(src, 21 * MiB + 12345)
      local size = 21 * MiB + 12345
      local calls = {}
      local b = box:blob("models/model.bin")
      local put = assert(b:put({ file = src }, { block_size = 4 * MiB, concurrency = 3, single_put_max = 4 * MiB,
        content_type = "application/octet-stream", progress = function(done, total) calls[#calls + 1] = { done, total } end }))
      assert.are.equal(size, put.size)
      -- progress: from 0 to the total, never backwards; the start, each block's end and bytes in between
      assert.are.same({ 0, size }, calls[1])
      assert.are.same({ size, size }, calls[#calls])
      assert.is_true(#calls >= 7)
      for i = 2, #calls do assert.is_true(calls[i][1] >= calls[i - 1][1]) end
      local props = assert(b:properties())
      assert.are.equal(size, props.size)
      assert.are.equal(crypto.base64_encode(crypto.md5_file(src)), props.content_md5)  -- the whole-blob MD5 was stored

      local dest = work .. "/model.out"
      local seen = 0
      local got = assert(b:get{ file = dest, range_size = 4 * MiB, concurrency = 3,
        progress = function(done) seen = done end })
      assert.are.equal(size, got.size)
      assert.is_true(got.md5_checked)
      assert.are.equal(size, seen)
      assert.are.equal(sum, S.sha256(dest))
      assert.are.same({}, S.files(work, "%.lufa%-part%-"))

      local small = work .. "/small.bin"
      local small_sum = S.random_file(small, 100000)
      assert(box:blob("small.bin"):put({ file = small }))
      local small_calls = {}
      local body = assert(box:blob("small.bin"):get { progress = function(done, total)
        small_calls[#small_calls + 1] = { done, total } end })
      assert.are.equal(100000, #body)
      assert.are.same({ 100000, 100000 }, small_calls[#small_calls])
      for i = 2, #small_calls do assert.is_true(small_calls[i][1] >= small_calls[i - 1][1]) end
      assert.are.equal(small_sum, crypto.hex(crypto.sha256(body)))
    end)

    it("refuse a download whose bytes do not match the stored MD5, leaving no file", function()
      local src = work .. "/tamper.bin"
      S.random_file(src, 9 * MiB)
      local b = box:blob("tamper.bin")
      assert(b:put({ file = src }, { block_size = 4 * MiB, single_put_max = 1 * MiB }))
      -- store a wrong whole-blob MD5 (Set Blob Properties), as if the content had been corrupted
      assert(transport.send(client, { op = "Set Blob Properties", method = "PUT", container = "lufa-spec",
        blob = "tamper.bin", query = { { "comp", "properties" } },
        headers = { ["x-ms-blob-content-md5"] = crypto.base64_encode(crypto.md5("something else")) },
        ok = { [200] = true } }))
      local dest = work .. "/tamper.out"
      local got, err = b:get{ file = dest, range_size = 2 * MiB }
      assert.is_nil(got)
      assert.are.equal("Md5Mismatch", err.code)
      assert.is_false(S.exists(dest))
      assert.are.same({}, S.files(work, "^tamper%.out"))
      -- and the caller may opt out of the check
      assert(b:get{ file = dest, range_size = 2 * MiB, verify_md5 = false })
      assert.is_true(S.exists(dest))
    end)

    it("report an unreadable file and an unwritable destination", function()
      local b = box:blob("nofile")
      local ok, err = b:put({ file = work .. "/does-not-exist.bin" })
      assert.is_nil(ok)
      assert.are.equal("file", err.code)
      assert.matches("does-not-exist.bin", err.message, 1, true)
      assert.is_false(b:exists())
      ok, err = b:put({ file = work })  -- a directory
      assert.is_nil(ok)
      assert.are.equal("file", err.code)
      assert(b:put("data"))
      local got, gerr = b:get{ file = work .. "/no/such/dir/out.bin" }
      assert.is_nil(got)
      assert.are.equal("file", gerr.code)
    end)
  end)

  describe("authentication", function()
    it("fails with a wrong key, and no secret shows in the error", function()
      local wrong = crypto.base64_encode(("k"):rep(64))
      local c = assert(blob.client{ account = "devstoreaccount1", key = wrong, endpoint = env.LUFA_EMU_BLOB_ENDPOINT,
        retry = fast_retry })
      local ok, err = c:container("lufa-spec"):blob("docs/hello world.txt"):get()
      assert.is_nil(ok)
      assert.are.equal(403, err.status)
      assert.are.equal("AuthorizationFailure", err.code)
      local text = tostring(err)
      for k, v in pairs(err) do text = text .. " " .. tostring(k) .. "=" .. tostring(v) end
      assert.is_nil(text:find(wrong, 1, true))
      assert.is_nil(text:find("SharedKey", 1, true))
    end)

    it("accepts a blob SAS made by lufa for reading, refuses it for writing, and refuses an expired one", function()
      local b = box:blob("sas/readme.txt")
      assert(b:put("read me"))
      local url = b:sas{ permissions = "r", expiry = 600 }
      local reader = assert(blob.client{ sas_url = url, retry = fast_retry })
      assert.are.equal("read me", (reader:container():blob():get()))
      local ok, err = reader:container():blob():put("overwritten")
      assert.is_nil(ok)
      assert.are.equal("AuthorizationPermissionMismatch", err.code)
      assert.is_nil(tostring(err):find(secret.expose(url):match("sig=([^&]+)"), 1, true))

      local expired = b:sas{ permissions = "r", start = -7200, expiry = -3600 }
      local late = assert(blob.client{ sas_url = expired, retry = fast_retry })
      ok, err = late:container():blob():get()
      assert.is_nil(ok)
      assert.are.equal(403, err.status)
      assert.is_nil(tostring(err):find(secret.expose(expired):match("sig=([^&]+)"), 1, true))
    end)

    it("accepts SAS URLs through curl", function()
      local b = box:blob("sas/curl.txt")
      assert(b:put("fetched by curl"))
      local url = secret.expose(b:sas{ permissions = "r", expiry = 600 })
      assert.are.equal("fetched by curl", S.run("curl -sS --fail " .. S.quote(url)))
      local status = S.run("curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'x-ms-blob-type: BlockBlob' --data-binary x "
        .. S.quote(url))
      assert.are.equal("403", status)
      local writer = secret.expose(b:sas{ permissions = "cw", expiry = 600 })
      status = S.run("curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'x-ms-blob-type: BlockBlob' --data-binary 'by curl' "
        .. S.quote(writer))
      assert.are.equal("201", status)
      assert.are.equal("by curl", (b:get()))
    end)

    it("lists with container and account SAS, and refuses a container SAS without list permission", function()
      assert(box:blob("sas/list-me"):put("x"))
      local lister = assert(blob.client{ sas_url = box:sas{ permissions = "rl", expiry = 600 } })
      local page = assert(lister:container():list_page{ prefix = "sas/" })
      local names = {}
      for _, item in ipairs(page.blobs) do names[item.name] = true end
      assert.is_true(names["sas/list-me"])
      local account = assert(blob.client{ sas_url = client:sas{ permissions = "rl", expiry = 600 } })
      assert.is_true(#assert(account:container("lufa-spec"):list_page{ prefix = "sas/" }).blobs >= 1)
      local reader = assert(blob.client{ sas_url = box:sas{ permissions = "r", expiry = 600 }, retry = fast_retry })
      local none, err = reader:container():list_page{}
      assert.is_nil(none)
      assert.are.equal(403, err.status)
    end)
  end)

  describe("listing", function()
    local many

    setup(function()
      many = client:container("many")
      assert(many:create())
      -- 5,000 small blobs, 8 uploads in flight
      local next_i, failure = 0, nil
      local tasks = {}
      for w = 1, 8 do
        tasks[w] = lufa.spawn(function()
          while not failure do
            next_i = next_i + 1
            local i = next_i
            if i > 5000 then return end
            local name = (i % 10 == 0 and "tens/" or "rest/") .. ("blob-%05d"):format(i)
            local ok, err = many:blob(name):put(tostring(i))
            if not ok then failure = err end
          end
        end)
      end
      for _, t in ipairs(tasks) do t:wait() end
      assert(not failure, tostring(failure))
    end)

    it("pages through 5,000 blobs", function()
      local pages, names, count = 0, {}, 0
      for page, err in many:pages{ page_size = 1200 } do
        assert(page, tostring(err))
        pages = pages + 1
        assert.is_true(#page.blobs <= 1200)
        for _, item in ipairs(page.blobs) do
          assert.is_nil(names[item.name])
          names[item.name] = true
          count = count + 1
          local i = tonumber(item.name:match("%d+$"))
          assert.are.equal(#tostring(i), item.size)
        end
      end
      assert.are.equal(5000, count)
      assert.are.equal(5, pages)  -- 4 full pages of 1,200 and one of 200
      local all = assert(many:list{})
      assert.are.equal(5000, #all.blobs)
    end)

    it("groups by prefix with a delimiter and filters by prefix", function()
      local top = assert(many:list{ delimiter = "/" })
      table.sort(top.prefixes)
      assert.are.same({ "rest/", "tens/" }, top.prefixes)
      assert.are.equal(0, #top.blobs)
      local tens = assert(many:list{ prefix = "tens/", page_size = 100 })
      assert.are.equal(500, #tens.blobs)
      assert.are.equal("tens/blob-00010", tens.blobs[1].name)
      assert.are.equal(crypto.base64_encode(crypto.md5("10")), tens.blobs[1].content_md5)
    end)
  end)
end)
