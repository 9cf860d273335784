-- lufa.crypto as Lua code sees it: published vectors, the Azure signing examples of the protocol notes,
-- secrets in and out, errors as values, streaming hashes, and RS256 against keys the openssl command makes.

local crypto = require "lufa.crypto"
local secret = require "lufa.secret"
local E = require "lufa.error"

local hex = crypto.hex

-- The well-known Azurite development account key (docs/protocols/blob.md).
local AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

local function shell(cmd)
  local ok = os.execute(cmd .. " 2>/dev/null")
  assert(ok, "command failed: " .. cmd)
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

describe("lufa.crypto", function()
  describe("digests", function()
    it("match the FIPS 180 and RFC 1321 examples", function()
      assert.are.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", hex(crypto.sha256("abc")))
      assert.are.equal("a9993e364706816aba3e25717850c26c9cd0d89d", hex(crypto.sha1("abc")))
      assert.are.equal("900150983cd24fb0d6963f7d28e17f72", hex(crypto.md5("abc")))
      assert.are.equal("d41d8cd98f00b204e9800998ecf8427e", hex(crypto.md5("")))
    end)

    it("return raw bytes of the digest's size", function()
      assert.are.equal(32, #crypto.sha256("x"))
      assert.are.equal(20, #crypto.sha1("x"))
      assert.are.equal(16, #crypto.md5("x"))
    end)

    it("give the Content-MD5 of the Put Blob example", function()
      assert.are.equal("lZhMZDckyBLOzwM6r3q68A==", crypto.base64_encode(crypto.md5("Hello, Azure!")))
    end)

    it("raise on a value that is not bytes", function()
      assert.has_error(function() crypto.sha256(nil) end)
      assert.has_error(function() crypto.md5({}) end)
      assert.has_error(function() crypto.hmac_sha256("key") end)
    end)
  end)

  describe("hmac_sha256", function()
    it("matches RFC 4231 test case 2", function()
      assert.are.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        hex(crypto.hmac_sha256("Jefe", "what do ya want for nothing?")))
    end)

    -- Signatures from docs/protocols/blob.md that the storage service accepted.
    local key = crypto.base64_decode(secret(AZURITE_KEY))

    it("signs the Shared Key string-to-sign of Put Blob (worked example 1)", function()
      local sts = "PUT\n\n\n13\nlZhMZDckyBLOzwM6r3q68A==\ntext/plain; charset=utf-8\n\n\n\n\n\n\n"
        .. "x-ms-blob-type:BlockBlob\nx-ms-date:Thu, 27 Nov 2025 10:00:00 GMT\n"
        .. "x-ms-meta-owner:lufa\nx-ms-version:2025-11-05\n"
        .. "/devstoreaccount1/devstoreaccount1/lufa-test/docs/hello%20world.txt"
      assert.are.equal("hd23ENZrKKQH435uU78w29QJWnwaac8259f+O5n2RsA=", crypto.base64_encode(crypto.hmac_sha256(key, sts)))
    end)

    it("signs the List Blobs string-to-sign (worked example 2)", function()
      local sts = "GET\n\n\n\n\n\n\n\n\n\n\n\n"
        .. "x-ms-date:Thu, 27 Nov 2025 10:05:00 GMT\nx-ms-version:2025-11-05\n"
        .. "/devstoreaccount1/devstoreaccount1/lufa-test\ncomp:list\nmaxresults:2\nprefix:docs/\nrestype:container"
      assert.are.equal("ACHDTeUV5QC+Rx15JhEG/U7zRWSKbw0ckjWEXxYS+lY=", crypto.base64_encode(crypto.hmac_sha256(key, sts)))
    end)

    it("signs a service SAS and an account SAS (worked examples 3 and 4)", function()
      local service = "r\n2026-01-01T00:00:00Z\n2030-01-01T00:00:00Z\n"
        .. "/blob/devstoreaccount1/lufa-test/docs/hello world.txt\n"
        .. "\n\nhttps,http\n2025-11-05\nb\n\n\n\n\n\n\n"
      assert.are.equal("llyGbIZOqJudbYq3Fa6PWdoip7Rfi4xDj7VFpbidrDs=",
        crypto.base64_encode(crypto.hmac_sha256(key, service)))
      local account = "devstoreaccount1\nrl\nb\nsco\n\n2030-01-01T00:00:00Z\n\nhttps,http\n2025-11-05\n\n"
      assert.are.equal("KCmxjkL9ONhZyE8lW0gPiIi7Z0H6uEGNKH1VtdZykGY=",
        crypto.base64_encode(crypto.hmac_sha256(key, account)))
    end)
  end)

  describe("base64 and base64url", function()
    local rfc4648 = {
      { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
      { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
    }

    it("encode and decode the RFC 4648 vectors", function()
      for _, v in ipairs(rfc4648) do
        local plain, encoded = v[1], v[2]
        local unpadded = encoded:gsub("=", "")
        assert.are.equal(encoded, crypto.base64_encode(plain))
        assert.are.equal(plain, crypto.base64_decode(encoded))
        assert.are.equal(unpadded, crypto.base64url_encode(plain))
        assert.are.equal(plain, crypto.base64url_decode(unpadded))
        assert.are.equal(plain, crypto.base64url_decode(encoded))
      end
    end)

    it("use '+' '/' in base64 and '-' '_' in base64url", function()
      assert.are.equal("+/+/", crypto.base64_encode("\251\255\191"))
      assert.are.equal("-_-_", crypto.base64url_encode("\251\255\191"))
      assert.are.equal("\251\255\191", crypto.base64url_decode("-_-_"))
    end)

    it("return nil and a lufa.error with the position for malformed input", function()
      local r, err = crypto.base64_decode("Zm9v!mFy")
      assert.is_nil(r)
      assert.is_true(E.is(err))
      assert.are.equal("crypto", err.kind)
      assert.are.equal("base64", err.code)
      assert.are.equal(5, err.position)
      assert.matches("base64_decode: invalid character at position 5", tostring(err), 1, true)

      r, err = crypto.base64url_decode("Zm9+")
      assert.is_nil(r)
      assert.are.equal(4, err.position)
      assert.matches("^base64url_decode:", err.message)

      r, err = crypto.base64_decode("Zm9vYg")
      assert.is_nil(r)
      assert.matches("missing '=' padding", err.message, 1, true)
      assert.are.equal(7, err.position)
    end)

    it("can be raised unchanged", function()
      local ok, raised = pcall(function()
        local _, err = crypto.base64_decode("#")
        error(err)
      end)
      assert.is_false(ok)
      assert.is_true(E.is(raised))
      assert.are.equal(1, raised.position)
    end)
  end)

  describe("secrets", function()
    it("decode to and encode to secrets", function()
      local k = crypto.base64_decode(secret(AZURITE_KEY))
      assert.is_true(secret.is(k))
      assert.are.equal("<redacted>", tostring(k))
      assert.are.equal(64, #secret.expose(k))
      local again = crypto.base64_encode(k)
      assert.is_true(secret.is(again))
      assert.are.equal(AZURITE_KEY, secret.expose(again))
      assert.is_true(secret.is(crypto.base64url_encode(k)))
      assert.is_true(secret.is(crypto.base64url_decode(secret("Zm9v"))))
      assert.is_true(secret.is(crypto.hex(k)))
    end)

    it("are accepted as keys and inputs, giving plain digests and MACs", function()
      local k = crypto.base64_decode(secret(AZURITE_KEY))
      local mac = crypto.hmac_sha256(k, secret("data"))
      assert.are.equal("string", type(mac))
      assert.are.equal(mac, crypto.hmac_sha256(secret.expose(k), "data"))
      assert.are.equal(crypto.sha256("abc"), crypto.sha256(secret("abc")))
      assert.are.equal(crypto.md5("abc"), crypto.md5(secret("abc")))
    end)

    it("never show up in decode errors", function()
      local r, err = crypto.base64_decode(secret("TOPSECRET?value"))
      assert.is_nil(r)
      assert.are.equal(10, err.position)
      assert.is_nil(tostring(err):find("TOPSECRET", 1, true))
      assert.is_nil(tostring(err):find("?", 1, true))
    end)
  end)

  describe("random_bytes and uuid4", function()
    it("give as many bytes as asked, different each time", function()
      assert.are.equal(0, #crypto.random_bytes(0))
      assert.are.equal(48, #crypto.random_bytes(48))
      assert.are_not.equal(crypto.random_bytes(16), crypto.random_bytes(16))
      assert.has_error(function() crypto.random_bytes(-1) end)
    end)

    it("make lowercase version-4 GUIDs", function()
      local seen = {}
      for _ = 1, 100 do
        local id = crypto.uuid4()
        assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", id)
        assert.is_nil(id:find("%u"))
        assert.is_nil(seen[id])
        seen[id] = true
      end
    end)
  end)

  describe("streaming hashes", function()
    it("equal the one-shot digest however the data is split", function()
      local data = string.rep("0123456789abcdef", 5000) .. "tail"
      for _, step in ipairs({ 1, 7, 64, 4096, #data }) do
        local h <close> = crypto.sha256_new()
        local m <close> = crypto.md5_new()
        for i = 1, #data, step do
          h:update(data:sub(i, i + step - 1))
          m:update(data:sub(i, i + step - 1))
        end
        assert.are.equal(crypto.sha256(data), h:final())
        assert.are.equal(crypto.md5(data), m:final())
      end
    end)

    it("chain updates and accept secrets", function()
      local h = crypto.md5_new()
      assert.are.equal(h, h:update("message "))
      assert.are.equal("f96b697d7cb7938d525a2f31aaf161d0", hex(h:update(secret("digest")):final()))
    end)

    it("refuse use after final or close, and close idempotently", function()
      local h = crypto.sha256_new()
      assert.matches("^lufa%.crypto%.hash sha256 %(0x", tostring(h))
      h:final()
      assert.has_error(function() h:update("x") end, "attempt to use a finished sha256 hash (final() was already called)")
      h:close()
      h:close()
      local m = crypto.md5_new()
      m:close()
      m:close()
      assert.has_error(function() m:final() end, "attempt to use a closed lufa.crypto.hash")
      assert.matches("closed", tostring(m))
    end)

    it("are closed at the end of a <close> scope", function()
      local kept
      do
        local h <close> = crypto.md5_new()
        kept = h
      end
      assert.has_error(function() kept:update("x") end, "attempt to use a closed lufa.crypto.hash")
    end)

    describe("of files", function()
      local path, data
      setup(function()
        path = os.tmpname()
        local parts = {}
        for i = 1, 30000 do parts[i] = string.format("%05d,", i) end
        data = table.concat(parts)  -- 180000 bytes: several read chunks
        write(path, data)
      end)
      teardown(function() os.remove(path) end)

      it("digest the whole file or a byte range", function()
        assert.are.equal(crypto.md5(data), crypto.md5_file(path))
        assert.are.equal(crypto.sha256(data), crypto.sha256_file(path))
        assert.are.equal(crypto.md5(data:sub(1001, 1000 + 70000)), crypto.md5_file(path, 1000, 70000))
        assert.are.equal(crypto.sha256(data:sub(100001)), crypto.sha256_file(path, 100000))
        assert.are.equal(crypto.md5(""), crypto.md5_file(path, #data))
      end)

      it("return nil, err naming an unreadable file", function()
        local missing = path .. ".missing"
        local r, err = crypto.md5_file(missing)
        assert.is_nil(r)
        assert.are.equal("crypto", err.kind)
        assert.are.equal("io", err.code)
        assert.are.equal(missing, err.file)
        assert.matches(missing, tostring(err), 1, true)
      end)

      it("return nil, err for a range past the end", function()
        local r, err = crypto.sha256_file(path, #data - 10, 20)
        assert.is_nil(r)
        assert.matches("10 bytes short", err.message, 1, true)
        r, err = crypto.md5_file(path, #data + 1)
        assert.is_nil(r)
        assert.matches("beyond the end", err.message, 1, true)
      end)

      it("raise on a negative offset or length", function()
        assert.has_error(function() crypto.md5_file(path, -1) end)
        assert.has_error(function() crypto.md5_file(path, 0, -5) end)
      end)
    end)
  end)

  describe("RS256 and certificates", function()
    local dir, key, pub, cert, encrypted, ec
    setup(function()
      dir = require("tests.support.util").tempdir()
      shell(("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out '%s/key.pem'"):format(dir))
      shell(("openssl pkey -in '%s/key.pem' -pubout -out '%s/pub.pem'"):format(dir, dir))
      shell(("openssl req -x509 -new -key '%s/key.pem' -subj '/CN=lufa spec/O=Example' -days 30 -out '%s/cert.pem'")
        :format(dir, dir))
      shell(("openssl pkey -in '%s/key.pem' -aes256 -passout pass:spec -out '%s/enc.pem'"):format(dir, dir))
      shell(("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '%s/ec.pem'"):format(dir))
      key, pub, cert = read(dir .. "/key.pem"), read(dir .. "/pub.pem"), read(dir .. "/cert.pem")
      encrypted, ec = read(dir .. "/enc.pem"), read(dir .. "/ec.pem")
    end)
    teardown(function()
      for _, f in ipairs({ "key.pem", "pub.pem", "cert.pem", "enc.pem", "ec.pem", "data", "sig" }) do
        os.remove(dir .. "/" .. f)
      end
      os.remove(dir)
    end)

    it("builds a client assertion that verifies with the certificate", function()
      local thumbs = assert(crypto.certificate_thumbprints(cert))
      local header = ('{"alg":"RS256","typ":"JWT","x5t":"%s","x5t#S256":"%s"}')
        :format(crypto.base64url_encode(thumbs.sha1), crypto.base64url_encode(thumbs.sha256))
      local payload = ('{"aud":"https://login.microsoftonline.com/t/oauth2/v2.0/token","jti":"%s"}')
        :format(crypto.uuid4())
      local input = crypto.base64url_encode(header) .. "." .. crypto.base64url_encode(payload)
      local sig = assert(crypto.sign_rs256(secret(key), input))
      assert.are.equal(256, #sig)
      local jwt = input .. "." .. crypto.base64url_encode(sig)
      assert.is_nil(jwt:find("[=+/]"))
      local h, p, s = jwt:match("^([^.]+)%.([^.]+)%.([^.]+)$")
      assert.are.equal(header, crypto.base64url_decode(h))
      assert.are.equal(payload, crypto.base64url_decode(p))
      assert.is_true(crypto.verify_rs256(cert, h .. "." .. p, crypto.base64url_decode(s)))
      assert.is_true(crypto.verify_rs256(pub, input, sig))
      assert.is_false(crypto.verify_rs256(pub, input .. "x", sig))
    end)

    it("signs what the openssl command verifies", function()
      write(dir .. "/data", "signing input")
      write(dir .. "/sig", assert(crypto.sign_rs256(key, "signing input")))
      assert.is_truthy(os.execute(("openssl dgst -sha256 -verify '%s/pub.pem' -signature '%s/sig' '%s/data' >/dev/null")
        :format(dir, dir, dir)))
    end)

    it("gives the thumbprints the openssl command prints", function()
      local function fingerprint(algo)
        local p = assert(io.popen(("openssl x509 -in '%s/cert.pem' -noout -fingerprint -%s"):format(dir, algo)))
        local line = p:read("l")
        p:close()
        return (line:match("=(.*)$"):gsub(":", ""):lower())
      end
      local thumbs = assert(crypto.certificate_thumbprints(key .. cert))  -- a combined key+certificate file
      assert.are.equal(fingerprint("sha1"), hex(thumbs.sha1))
      assert.are.equal(fingerprint("sha256"), hex(thumbs.sha256))
    end)

    it("loads certificate details", function()
      local c = assert(crypto.load_certificate(cert))
      assert.are.equal("O=Example,CN=lufa spec", c.subject)
      assert.are.equal(c.subject, c.issuer)
      assert.are.equal(30 * 86400, c.not_after - c.not_before)
      assert.is_true(math.abs(c.not_before - os.time()) < 3600)
      assert.are.equal(crypto.sha1(c.der), c.sha1)
      -- the DER is what the PEM carries
      local body = cert:match("%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-\n(.-)%-%-%-%-%-END"):gsub("\n", "")
      assert.are.equal(body, crypto.base64_encode(c.der))
    end)

    it("refuses encrypted keys, non-RSA keys and text without a key", function()
      local r, err = crypto.sign_rs256(encrypted, "x")
      assert.is_nil(r)
      assert.are.equal("key_encrypted", err.code)
      assert.matches("encrypted", tostring(err))
      r, err = crypto.sign_rs256(ec, "x")
      assert.is_nil(r)
      assert.are.equal("key_type", err.code)
      assert.matches("EC", err.message)
      r, err = crypto.sign_rs256(secret("-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n"), "x")
      assert.is_nil(r)
      assert.are.equal("key", err.code)
      assert.is_nil(tostring(err):find("bm9wZQ", 1, true))
      r, err = crypto.verify_rs256("hello", "x", "y")
      assert.is_nil(r)
      assert.are.equal("key", err.code)
    end)

    it("returns nil, err for a malformed certificate", function()
      local r, err = crypto.certificate_thumbprints(key)
      assert.is_nil(r)
      assert.are.equal("certificate", err.code)
      assert.matches("no PEM certificate found", err.message, 1, true)
      r, err = crypto.load_certificate((cert:gsub("MII", "MIJ", 1)))
      assert.is_nil(r)
      assert.are.equal("certificate", err.code)
      assert.matches("malformed", err.message)
    end)
  end)
end)
