-- lufa.blob without a storage service: signing (the protocol notes' worked examples, verified against the
-- emulator), SAS tokens, connection strings, XML, and a server that cuts downloads short.
local blob = require "lufa.blob"
local auth = require "lufa.blob.auth"
local connection = require "lufa.blob.connection"
local transport = require "lufa.blob.transport"
local transfer = require "lufa.blob.transfer"
local xml = require "lufa.core.xml"
local secret = require "lufa.secret"
local crypto = require "lufa.crypto"
local E = require "lufa.error"
local S = require "tests.spec.blob_support"

local DEV_KEY = connection.DEV_KEY
local ACCOUNT = "devstoreaccount1"
local function raw_key() return crypto.base64_decode(secret(DEV_KEY)) end

describe("Shared Key signing", function()
  it("matches worked example 1 (Put Blob with metadata, MD5 and an encoded path)", function()
    local sts = auth.shared_key_string("PUT", ACCOUNT, "/devstoreaccount1/lufa-test/docs/hello%20world.txt", {}, {
      ["x-ms-date"] = "Thu, 27 Nov 2025 10:00:00 GMT", ["x-ms-version"] = "2025-11-05",
      ["x-ms-blob-type"] = "BlockBlob", ["x-ms-meta-owner"] = "lufa", ["Content-Type"] = "text/plain; charset=utf-8",
      ["Content-MD5"] = "lZhMZDckyBLOzwM6r3q68A==", ["Content-Length"] = "13" })
    assert.are.equal("PUT\n\n\n13\nlZhMZDckyBLOzwM6r3q68A==\ntext/plain; charset=utf-8\n\n\n\n\n\n\n"
      .. "x-ms-blob-type:BlockBlob\nx-ms-date:Thu, 27 Nov 2025 10:00:00 GMT\n"
      .. "x-ms-meta-owner:lufa\nx-ms-version:2025-11-05\n"
      .. "/devstoreaccount1/devstoreaccount1/lufa-test/docs/hello%20world.txt", sts)
    assert.are.equal("SharedKey devstoreaccount1:hd23ENZrKKQH435uU78w29QJWnwaac8259f+O5n2RsA=",
      secret.expose(auth.shared_key(raw_key(), ACCOUNT, sts)))
    assert.are.equal("lZhMZDckyBLOzwM6r3q68A==", crypto.base64_encode(crypto.md5("Hello, Azure!")))
  end)

  it("matches worked example 2 (query parameters sorted and decoded)", function()
    local sts = auth.shared_key_string("GET", ACCOUNT, "/devstoreaccount1/lufa-test",
      { { "restype", "container" }, { "comp", "list" }, { "prefix", "docs/" }, { "maxresults", "2" } },
      { ["x-ms-date"] = "Thu, 27 Nov 2025 10:05:00 GMT", ["x-ms-version"] = "2025-11-05" })
    assert.are.equal("GET\n\n\n\n\n\n\n\n\n\n\n\n"
      .. "x-ms-date:Thu, 27 Nov 2025 10:05:00 GMT\nx-ms-version:2025-11-05\n"
      .. "/devstoreaccount1/devstoreaccount1/lufa-test\ncomp:list\nmaxresults:2\nprefix:docs/\nrestype:container", sts)
    assert.are.equal("SharedKey devstoreaccount1:ACHDTeUV5QC+Rx15JhEG/U7zRWSKbw0ckjWEXxYS+lY=",
      secret.expose(auth.shared_key(raw_key(), ACCOUNT, sts)))
  end)

  it("leaves Content-Length empty when it is 0 and puts Range on line 12", function()
    local sts = auth.shared_key_string("PUT", "a", "/c", {}, { ["Content-Length"] = "0", Range = "bytes=0-9",
      ["If-Match"] = '"0x1"' })
    local lines = {}
    for l in (sts .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
    assert.are.equal("PUT", lines[1])
    assert.are.equal("", lines[4])
    assert.are.equal('"0x1"', lines[9])
    assert.are.equal("bytes=0-9", lines[12])
    assert.are.equal("/a/c", lines[13])
    assert.are.equal(13, #lines)
  end)

  it("returns the Authorization value as a secret", function()
    local v = auth.shared_key(raw_key(), ACCOUNT, "x")
    assert.is_true(secret.is(v))
    assert.are.equal("<redacted>", tostring(v))
  end)

  it("formats x-ms-date in RFC 1123 whatever the locale", function()
    assert.are.equal("Thu, 01 Jan 1970 00:00:00 GMT", auth.http_date(0))
    assert.are.equal("Thu, 27 Nov 2025 10:00:00 GMT", auth.http_date(1764237600))
  end)

  it("percent-encodes paths segment-wise and query values fully", function()
    assert.are.equal("docs/hello%20world.txt", auth.encode_path("docs/hello world.txt"))
    assert.are.equal("a%2Bb%3Dc%3F%23%25", auth.encode_path("a+b=c?#%"))
    assert.are.equal("YmxvY2stMDAwMDAw%3D%2B%2F", auth.encode_query("YmxvY2stMDAwMDAw=+/"))
  end)
end)

describe("shared access signatures", function()
  it("matches worked example 3 (read SAS for a blob)", function()
    local tok, sts = auth.service_sas{ key = raw_key(), account = ACCOUNT, container = "lufa-test",
      blob = "docs/hello world.txt", permissions = "r", start = "2026-01-01T00:00:00Z",
      expiry = "2030-01-01T00:00:00Z", protocol = "https,http" }
    assert.are.equal("r\n2026-01-01T00:00:00Z\n2030-01-01T00:00:00Z\n"
      .. "/blob/devstoreaccount1/lufa-test/docs/hello world.txt\n"
      .. "\n\nhttps,http\n2025-11-05\nb\n\n\n\n\n\n\n", sts)
    assert.is_true(secret.is(tok))
    assert.are.equal("sv=2025-11-05&st=2026-01-01T00%3A00%3A00Z&se=2030-01-01T00%3A00%3A00Z&sr=b&sp=r"
      .. "&spr=https%2Chttp&sig=llyGbIZOqJudbYq3Fa6PWdoip7Rfi4xDj7VFpbidrDs%3D", secret.expose(tok))
  end)

  it("matches worked example 4 (account SAS)", function()
    local tok, sts = auth.account_sas{ key = raw_key(), account = ACCOUNT, permissions = "rl",
      expiry = "2030-01-01T00:00:00Z", protocol = "https,http" }
    assert.are.equal("devstoreaccount1\nrl\nb\nsco\n\n2030-01-01T00:00:00Z\n\nhttps,http\n2025-11-05\n\n", sts)
    assert.are.equal("sv=2025-11-05&ss=b&srt=sco&sp=rl&se=2030-01-01T00%3A00%3A00Z&spr=https%2Chttp"
      .. "&sig=KCmxjkL9ONhZyE8lW0gPiIi7Z0H6uEGNKH1VtdZykGY%3D", secret.expose(tok))
  end)

  it("signs a container SAS over /blob/account/container with sr=c", function()
    local tok, sts = auth.service_sas{ key = raw_key(), account = ACCOUNT, container = "c1", permissions = "lr",
      expiry = "2030-01-01T00:00:00Z" }
    assert.are.equal("rl\n\n2030-01-01T00:00:00Z\n/blob/devstoreaccount1/c1\n\n\n\n2025-11-05\nc\n\n\n\n\n\n\n", sts)
    assert.matches("&sr=c&sp=rl&sig=", secret.expose(tok), 1, true)
  end)

  it("puts permission letters in service order and refuses unknown ones", function()
    assert.are.equal("racwd", auth.permissions("dwcar", auth.BLOB_PERMISSIONS, "blob"))
    assert.are.equal("rl", auth.permissions("lr", auth.CONTAINER_PERMISSIONS, "container"))
    assert.has_error(function() auth.service_sas{ key = raw_key(), account = ACCOUNT, container = "c1", blob = "b",
      permissions = "rl", expiry = 60 } end, "bad SAS permission 'l' for a blob (expected letters from 'racwdxtme')")
  end)

  it("turns a relative expiry into an ISO time and checks times, protocol and IP", function()
    local _, sts = auth.service_sas{ key = raw_key(), account = ACCOUNT, container = "c1", blob = "b",
      permissions = "r", expiry = 3600, start = -60, now = 1764237600, ip = "127.0.0.1-127.0.0.2", protocol = "https" }
    assert.are.equal("r\n2025-11-27T09:59:00Z\n2025-11-27T11:00:00Z\n/blob/devstoreaccount1/c1/b\n\n"
      .. "127.0.0.1-127.0.0.2\nhttps\n2025-11-05\nb\n\n\n\n\n\n\n", sts)
    assert.has_error(function() auth.service_sas{ key = raw_key(), account = ACCOUNT, container = "c", blob = "b",
      permissions = "r", expiry = "tomorrow" } end)
    assert.has_error(function() auth.service_sas{ key = raw_key(), account = ACCOUNT, container = "c", blob = "b",
      permissions = "r", expiry = 60, protocol = "ftp" } end)
    assert.has_error(function() auth.service_sas{ key = raw_key(), account = ACCOUNT, container = "c", blob = "b",
      permissions = "r", expiry = 60, ip = "localhost" } end)
    assert.has_error(function() auth.service_sas{ key = raw_key(), account = ACCOUNT, container = "c", blob = "b",
      permissions = "r" } end)
  end)

  it("builds blob and container SAS URLs from a client", function()
    local c = assert(blob.client("UseDevelopmentStorage=true"))
    local url = c:container("lufa-test"):blob("docs/hello world.txt"):sas{ permissions = "r",
      start = "2026-01-01T00:00:00Z", expiry = "2030-01-01T00:00:00Z", protocol = "https,http" }
    assert.is_true(secret.is(url))
    assert.are.equal("http://127.0.0.1:10000/devstoreaccount1/lufa-test/docs/hello%20world.txt?sv=2025-11-05"
      .. "&st=2026-01-01T00%3A00%3A00Z&se=2030-01-01T00%3A00%3A00Z&sr=b&sp=r&spr=https%2Chttp"
      .. "&sig=llyGbIZOqJudbYq3Fa6PWdoip7Rfi4xDj7VFpbidrDs%3D", secret.expose(url))
    local curl = secret.expose(c:container("lufa-test"):sas{ permissions = "rl", expiry = 60 })
    assert.matches("^http://127%.0%.0%.1:10000/devstoreaccount1/lufa%-test%?sv=", curl)
    assert.has_error(function() blob.client{ sas_url = url }:container():blob():sas{ permissions = "r", expiry = 1 } end,
      "a service SAS needs a client with an account key")
  end)
end)

describe("connection strings", function()
  it("expands UseDevelopmentStorage=true", function()
    local s = assert(connection.parse("UseDevelopmentStorage=true"))
    assert.are.equal("devstoreaccount1", s.account)
    assert.are.equal("http://127.0.0.1:10000/devstoreaccount1", s.endpoint)
    assert.are.equal(64, #secret.expose(s.key))
  end)

  it("derives the endpoint from the protocol, account and suffix, and lets BlobEndpoint win", function()
    local s = assert(connection.parse("DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=" .. DEV_KEY
      .. ";EndpointSuffix=core.chinacloudapi.cn"))
    assert.are.equal("https://acct1.blob.core.chinacloudapi.cn", s.endpoint)
    s = assert(connection.parse(" AccountName=acct1 ; AccountKey=" .. DEV_KEY .. "; "))
    assert.are.equal("https://acct1.blob.core.windows.net", s.endpoint)
    s = assert(connection.parse("AccountName=devstoreaccount1;AccountKey=" .. DEV_KEY
      .. ";BlobEndpoint=http://127.0.0.1:5555/devstoreaccount1/;QueueEndpoint=http://127.0.0.1:5556/x;"))
    assert.are.equal("http://127.0.0.1:5555/devstoreaccount1", s.endpoint)
  end)

  it("accepts a SAS connection string, as a secret too", function()
    local s = assert(connection.parse(secret("BlobEndpoint=https://acct9.blob.core.windows.net;"
      .. "SharedAccessSignature=sv=2025-11-05&ss=b&sig=abc%3D")))
    assert.are.equal("acct9", s.account)
    assert.is_nil(s.key)
    assert.are.equal("sv=2025-11-05&ss=b&sig=abc%3D", secret.expose(s.sas))
  end)

  local bad = {
    { "AccountKey=" .. DEV_KEY, "AccountName is missing" },
    { "AccountName=a1;AccountKey=not*base64!!", "AccountKey is not valid base64 (AccountKey=<redacted>)" },
    { "AccountName=a1", "has neither AccountKey nor SharedAccessSignature" },
    { "AccountName=a1;" .. DEV_KEY, "part 2 has an unknown setting name" },
    { "AccountName=a1;AccountKey" , "part 2 is not of the form Key=Value" },
    { "AcountName=a1;AccountKey=" .. DEV_KEY, "unknown setting 'AcountName'" },
    { "AccountName=a1;AccountKey=" .. DEV_KEY .. ";DefaultEndpointsProtocol=ftp", "DefaultEndpointsProtocol must be http or https" },
    { "AccountName=a1;AccountKey=" .. DEV_KEY .. ";BlobEndpoint=127.0.0.1:10000", "BlobEndpoint is not an absolute URL" },
    { "AccountName=a1;AccountKey=" .. DEV_KEY .. ";AccountName=a2", "AccountName is given twice" },
    { "AccountName=a1;AccountKey=" .. DEV_KEY .. ";SharedAccessSignature=sv=1&sig=x", "give AccountKey or SharedAccessSignature, not both" },
    { "BlobEndpoint=http://h/a;SharedAccessSignature=sv=2025-11-05&sp=r", "SharedAccessSignature has no sig= parameter" },
    { "UseDevelopmentStorage=maybe", "UseDevelopmentStorage must be true or false" },
    { "", "AccountName is missing" },
  }
  for _, case in ipairs(bad) do
    it("names the problem in '" .. case[2] .. "' without quoting secrets", function()
      local c, err = blob.client(case[1])
      assert.is_nil(c)
      assert.is_true(E.is(err))
      assert.are.equal("blob", err.kind)
      assert.are.equal("connection_string", err.code)
      assert.matches(case[2], err.message, 1, true)
      assert.is_nil(err.message:find(DEV_KEY, 1, true))
      assert.is_nil(err.message:find("not*base64", 1, true))
      assert.is_nil(err.message:find("sig=x", 1, true))
    end)
  end
end)

describe("clients", function()
  it("read the account, container and blob out of a SAS URL (path and host styles)", function()
    local c = assert(blob.client{ sas_url = "http://127.0.0.1:10000/devstoreaccount1/box/a%20b/c.txt?sv=1&sig=x" })
    assert.are.equal("devstoreaccount1", c.account)
    assert.are.equal("http://127.0.0.1:10000/devstoreaccount1", c.endpoint)
    local b = c:container():blob()
    assert.are.equal("box", b.container.name)
    assert.are.equal("a b/c.txt", b.name)
    c = assert(blob.client{ sas_url = secret("https://acct7.blob.core.windows.net/box?sv=1&sig=x") })
    assert.are.equal("acct7", c.account)
    assert.are.equal("https://acct7.blob.core.windows.net", c.endpoint)
    assert.are.equal("box", c:container().name)
    local none, err = blob.client{ sas_url = "https://acct7.blob.core.windows.net/box?sv=1" }
    assert.is_nil(none)
    assert.matches("no sig=", err.message, 1, true)
  end)

  it("send bearer tokens only over HTTPS", function()
    local cred = { authorization = function() return secret("Bearer x") end }
    local c, err = blob.client{ endpoint = "http://127.0.0.1:10000/devstoreaccount1", credential = cred }
    assert.is_nil(c)
    assert.are.equal("config", err.code)
    assert.matches("only sent over HTTPS", err.message, 1, true)
    assert.truthy(blob.client{ endpoint = "https://acct.blob.core.windows.net", credential = cred })
  end)

  it("refuse a bad key without quoting it, and invalid names as misuse", function()
    local c, err = blob.client{ account = "a1", key = "%%%%secretish%%%%" }
    assert.is_nil(c)
    assert.matches("key is not valid base64 (key=<redacted>)", err.message, 1, true)
    assert.is_nil(err.message:find("secretish", 1, true))
    local ok = assert(blob.client{ account = "a1", key = DEV_KEY })
    assert.are.equal("https://a1.blob.core.windows.net", ok.endpoint)
    assert.is_nil(tostring(ok):find(DEV_KEY, 1, true))
    assert.has_error(function() ok:container("ab") end)
    assert.has_error(function() ok:container("Upper") end)
    assert.has_error(function() ok:container("a--b") end)
    assert.has_error(function() ok:container("good-name"):blob("") end)
    assert.has_error(function() ok:container("good-name"):blob("x"):put(42) end)
    assert.has_error(function() ok:container("good-name"):blob("x"):put("v", { metadata = { ["Bad-Name"] = "v" } }) end)
    assert.has_error(function() ok:container("good-name"):list_page{ page_size = 0 } end)
  end)
end)

describe("lufa.core.xml", function()
  it("builds a tree of tags, attributes, text and children", function()
    local root = assert(xml.parse('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
      .. '<EnumerationResults ContainerName="c"><Blobs><Blob><Name>a &amp; b</Name></Blob>'
      .. '<BlobPrefix><Name>d/</Name></BlobPrefix></Blobs><NextMarker/></EnumerationResults>'))
    assert.are.equal("EnumerationResults", root.tag)
    assert.are.equal("c", root.attrs.ContainerName)
    assert.are.equal("Blobs", root[1].tag)
    assert.are.equal("a & b", root[1][1][1].text)
    assert.are.equal("BlobPrefix", root[1][2].tag)
    assert.are.equal("", root[2].text)
    assert.are.equal(0, #root[2])
  end)

  it("reports syntax errors with line and column, and refuses DTDs and deep nesting", function()
    local none, err = xml.parse("<a>\n<b></a>", "listing")
    assert.is_nil(none)
    assert.are.equal("xml", err.kind)
    assert.are.equal("syntax", err.code)
    assert.are.equal(2, err.line)
    assert.matches("^listing: line 2, column %d+: mismatched tag", err.message)
    none, err = xml.parse('<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')
    assert.is_nil(none)
    assert.are.equal("unsupported", err.code)
    none, err = xml.parse(("<a>"):rep(300) .. ("</a>"):rep(300))
    assert.is_nil(none)
    assert.are.equal("depth", err.code)
    none, err = xml.parse("")
    assert.is_nil(none)
    assert.are.equal("syntax", err.code)
  end)

  it("reads the service's error body", function()
    local code, message = transport.parse_error_body('<?xml version="1.0" encoding="utf-8"?><Error>'
      .. "<Code>BlobNotFound</Code><Message>The specified blob does not exist.\nRequestId:1\nTime:x</Message></Error>")
    assert.are.equal("BlobNotFound", code)
    assert.are.equal("The specified blob does not exist.", message)
    assert.is_nil(transport.parse_error_body("not xml"))
  end)
end)

describe("transfer planning", function()
  it("keeps block IDs the same length and grows blocks past 50,000", function()
    assert.are.equal(#transfer.block_id(0), #transfer.block_id(49999))
    assert.are_not.equal(transfer.block_id(1), transfer.block_id(2))
    assert.are.equal(8 * 1024 * 1024, transfer.block_size(1024 ^ 3, 8 * 1024 * 1024))
    local bs = transfer.block_size(1024 ^ 4, 8 * 1024 * 1024)  -- 1 TiB
    assert.is_true(bs * 50000 >= 1024 ^ 4)
    assert.are.equal(0, bs % (1024 * 1024))
  end)

  it("scrubs signatures and tokens out of messages", function()
    local m = transport.scrub("GET http://h/c/b?sv=1&sig=abc%2B%3D&se=2: Bearer eyJ0.x-y_z SharedKey acct:QUJD+/=")
    assert.is_nil(m:find("abc", 1, true))
    assert.is_nil(m:find("eyJ0", 1, true))
    assert.is_nil(m:find("QUJD", 1, true))
    assert.matches("sig=<redacted>&se=2", m, 1, true)
  end)
end)

describe("a server that truncates downloads", function()
  local dir
  setup(function() dir = S.tmpdir() end)
  teardown(function() S.remove_tree(dir) end)

  local function client(base, attempts)
    return assert(blob.client{ account = "devstoreaccount1", key = DEV_KEY, endpoint = base .. "/devstoreaccount1",
      retry = { attempts = attempts or 2, base_delay = 0.01, max_delay = 0.02 } })
  end

  for _, mode in ipairs({ "cut", "close" }) do
    it(("fails clearly and leaves no file (%s)"):format(mode), function()
      local base, stop = S.truncating_server(20 * 1024 * 1024, mode)
      local ok, problem = pcall(function()
        local b = client(base):container("box"):blob("model.bin")
        local dest = dir .. "/model-" .. mode .. ".bin"
        local props, err = b:get{ file = dest, range_size = 4 * 1024 * 1024 }
        assert.is_nil(props)
        assert.are.equal("blob", err.kind)
        if mode == "cut" then assert.are.equal("reset", err.code) else assert.are.equal("truncated", err.code) end
        assert.matches("Get Blob box/model.bin", err.message, 1, true)
        assert.is_false(S.exists(dest))
        assert.are.same({}, S.files(dir, "^model%-" .. mode))
        local body, serr = b:get()
        assert.is_nil(body)
        assert.truthy(serr.code == "reset" or serr.code == "truncated")
      end)
      stop()
      if not ok then error(problem, 0) end
    end)
  end

  it("retries ServerBusy and then succeeds, and does not retry a 400", function()
    local http = require "lufa.http"
    local base, stop = S.truncating_server(1000, "busy")
    local ok, problem = pcall(function()
      local body, props = client(base, 3):container("box"):blob("b"):get()
      assert.are.equal(("a"):rep(1000), body)
      assert.are.equal(1000, props.size)
    end)
    local count = http.request{ url = base .. "/_count" }
    stop()
    if not ok then error(problem, 0) end
    assert.are.equal("3", count.body)  -- two 503s, then the answer

    base, stop = S.truncating_server(1000, "bad")
    ok, problem = pcall(function()
      local body, err = client(base, 3):container("box"):blob("b"):get()
      assert.is_nil(body)
      assert.are.equal("InvalidHeaderValue", err.code)
      assert.are.equal(400, err.status)
      assert.matches("no.", err.message, 1, true)
    end)
    count = http.request{ url = base .. "/_count" }
    stop()
    if not ok then error(problem, 0) end
    assert.are.equal("1", count.body)
  end)
end)
