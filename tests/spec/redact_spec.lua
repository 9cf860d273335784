-- lufa.redact: the one redaction point. Every lufa.secret's bytes (and derived secrets) and anything
-- shaped like a credential become "<redacted>", only the secret part, the rest of the text kept; ordinary
-- text comes back byte for byte; lufa.error messages are redacted wherever they are built.

local lufa = require "lufa"
local redact = require "lufa.redact"
local secret = require "lufa.secret"
local http = require "lufa.http"
local json = require "lufa.json"
local fs = require "lufa.fs"
local E = require "lufa.error"

local R = redact.marker

describe("lufa.redact", function()
  it("exports text, add, error, the marker and the minimum length", function()
    assert.are.equal("<redacted>", redact.marker)
    assert.are.equal(secret.marker, redact.marker)
    assert.are.equal(6, redact.min_length)
    assert.is_function(redact.text)
    assert.is_function(redact.add)
    assert.is_function(redact.error)
    assert.are.equal(R, redact.text(secret("whatever-secret")))
    assert.are.equal("42", redact.text(42))
    assert.has_error(function() redact.text(nil) end)
    assert.has_error(function() redact.text({}) end)
  end)

  describe("credential-shaped text", function()
    local cases = {
      { "SAS sig in a URL",
        "GET https://acct.blob.core.windows.net/c/in.csv?sv=2021-08-06&se=2030-01-01T00%3A00%3A00Z&sr=b&sp=r&sig=AbC%2Bd%2Fef0123456789%3D failed",
        "GET https://acct.blob.core.windows.net/c/in.csv?sv=2021-08-06&se=2030-01-01T00%3A00%3A00Z&sr=b&sp=r&sig=" .. R .. " failed" },
      { "sig followed by more parameters", "?sig=abc123&sp=r", "?sig=" .. R .. "&sp=r" },
      { "sig ending at a quote", [["url": "https://a/b?sv=1&sig=xyz+/="]], [["url": "https://a/b?sv=1&sig=]] .. R .. [["]] },
      { "sig with JSON escapes", [["https:\/\/a\/b?sv=1\u0026sig=ab\/cd\u0026se=2"]], [["https:\/\/a\/b?sv=1\u0026sig=]] .. R .. [[\u0026se=2"]] },
      { "sig in a URL inside a URL", "copy?source=https%3A%2F%2Fa%2Fb%3Fsv%3D1%26sig%3DAbC%2Bd%26se%3D2&x=1",
        "copy?source=https%3A%2F%2Fa%2Fb%3Fsv%3D1%26sig%3D" .. R .. "%26se%3D2&x=1" },
      { "SharedAccessSignature in a connection string",
        "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2021&ss=b&sig=q1w2e3;QueueEndpoint=x",
        "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=" .. R .. ";QueueEndpoint=x" },
      { "AccountKey up to ;",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFy+/base64==;EndpointSuffix=core.windows.net",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" .. R .. ";EndpointSuffix=core.windows.net" },
      { "accountkey in any case", "accountkey=abcdef", "accountkey=" .. R },
      { "client_secret in a form", "grant_type=client_credentials&client_id=abc&client_secret=p%40ss~word&scope=x",
        "grant_type=client_credentials&client_id=abc&client_secret=" .. R .. "&scope=x" },
      { "client_assertion in a form", "client_assertion_type=urn%3Aietf&client_assertion=abc.def.ghi&scope=s",
        "client_assertion_type=urn%3Aietf&client_assertion=" .. R .. "&scope=s" },
      { "access_token JSON member", [[{"token_type":"Bearer","access_token":"opaque-value-123","expires_in":3599}]],
        [[{"token_type":"Bearer","access_token":"]] .. R .. [[","expires_in":3599}]] },
      { "access_token JSON member with blanks", [[{ "access_token" : "x y z" }]], [[{ "access_token" : "]] .. R .. [[" }]] },
      { "access_token in JSON inside a JSON string", [["{\"access_token\":\"abc\",\"n\":1}"]],
        [["{\"access_token\":\"]] .. R .. [[\",\"n\":1}"]] },
      { "access_token in a query", "#access_token=abc&state=1", "#access_token=" .. R .. "&state=1" },
      { "refresh_token", [[{"refresh_token": "r-123"}]], [[{"refresh_token": "]] .. R .. [["}]] },
      { "password=", "user=bob password=hunter2 host=h", "user=bob password=" .. R .. " host=h" },
      { "password JSON member", [[{"userName":"bob","password":"p\"w"}]], [[{"userName":"bob","password":"]] .. R .. [["}]] },
      { "quoted password=", [[password="two words" rest]], [[password="]] .. R .. [[" rest]] },
      { "Bearer token", "sent Bearer abcDEF123456789.xyz-_~+/= and failed", "sent Bearer " .. R .. " and failed" },
      { "Authorization header line keeps its scheme", "GET / HTTP/1.1\r\nAuthorization: Bearer abc.def\r\nHost: h\r\n",
        "GET / HTTP/1.1\r\nAuthorization: Bearer " .. R .. "\r\nHost: h\r\n" },
      { "Authorization SharedKey", "authorization: SharedKey acct:c2lnbmF0dXJl", "authorization: SharedKey " .. R },
      { "Authorization without a scheme", "Authorization: rawapikey", "Authorization: " .. R },
      { "Authorization JSON member", [[{"headers":{"Authorization":"Bearer tok"}}]], [[{"headers":{"Authorization":"Bearer ]] .. R .. [["}}]] },
      { "x-ms-*key* header", "x-ms-encryption-key: c2VjcmV0\nx-ms-version: 2021-08-06\n",
        "x-ms-encryption-key: " .. R .. "\nx-ms-version: 2021-08-06\n" },
      { "x-ms-*key* JSON member", [[{"x-ms-copy-source-key":"abc","x-ms-date":"d"}]], [[{"x-ms-copy-source-key":"]] .. R .. [[","x-ms-date":"d"}]] },
      { "JWT", "token eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwcyJ9.c2lnbmF0dXJlLWJ5dGVz, end",
        "token " .. R .. ", end" },
      { "JWT without a signature", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", R },
      { "function key ?code=", "POST https://fn.azurewebsites.net/api/score?code=aBc-123==&clientId=default",
        "POST https://fn.azurewebsites.net/api/score?code=" .. R .. "&clientId=default" },
      { "function key &code=", "https://fn/api/x?name=a&code=k3y", "https://fn/api/x?name=a&code=" .. R },
      { "function key in JSON", [["https://fn/api/x?a=1\u0026code=k3y"]], [["https://fn/api/x?a=1\u0026code=]] .. R .. [["]] },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        assert.are.equal(c[3], redact.text(c[2]))
        assert.are.equal(c[3], redact.text(c[3]))  -- redacting again changes nothing
      end)
    end

    it("leaves ordinary text untouched, byte for byte", function()
      local ordinary = {
        "https://acct.blob.core.windows.net/container/path/file.csv?sv=2021-08-06&se=2030-01-01&sp=r&comp=list",
        "https://management.azure.com/subscriptions/x/resourceGroups/rg?api-version=2021-04-01",
        [[{"name":"LookupPipelineDemo","properties":{"activities":[{"name":"amlBEGetilearner","type":"AzureMLBatchExecution","dependsOn":[]}]}}]],
        "Operation on target amlBEGetilearner failed: The Batch Execution Service job failed (InvalidBlobExtension)",
        "Activity Copy1 failed: ErrorCode=UserErrorAccessForbidden,'Type=Microsoft.DataTransfer.Common.Shared.HybridDeliveryException'",
        "aad.client_secret: client_secret: expected the secret's value",
        "has token_type 'mac', expected Bearer; Bearer authentication is required",
        "Authorization failed for user bob; AuthorizationFailed (HTTP 403)",
        "the signature= field, a design= note, mysig=abc, xcode=1, keyed=yes, passwords=3",
        "x-ms-version: 2021-08-06\nx-ms-request-id: 1234\nContent-Type: application/json",
        "eyJ alone, eyJabc.def, and a.b.c are not tokens",
        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \0 binary \255\254 bytes",
        "",
      }
      for _, text in ipairs(ordinary) do
        local out = redact.text(text)
        assert.are.equal(#text, #out, text)
        assert.are.equal(text, out)
      end
    end)
  end)

  describe("remembered secrets", function()
    it("replaces every lufa.secret's bytes, inside a URL and inside JSON", function()
      local key = "Qk1ZLXZlcnktcHJpdmF0ZS1rZXk"
      local _ = secret(key)
      local text = "GET https://svc.example/run?key=" .. key .. "&x=1 answered " ..
        json.encode({ echo = { apiKey = key, n = 1 } })
      local out = redact.text(text)
      assert.is_nil(out:find(key, 1, true))
      assert.are.equal("GET https://svc.example/run?key=" .. R .. "&x=1 answered " ..
        json.encode({ echo = { apiKey = R, n = 1 } }), out)
    end)

    it("knows derived secrets: a concatenation is remembered whole", function()
      local base = secret("derived-base-value")
      local derived = base .. "x-suffix"
      assert.is_true(secret.is(derived))
      -- the longest remembered value wins, so the suffix does not show after the base's marker
      assert.are.equal("[" .. R .. "]", redact.text("[derived-base-valuex-suffix]"))
      assert.are.equal("[" .. R .. "]", redact.text("[derived-base-value]"))
      local prefixed = "short" .. secret("tiny")  -- "tiny" alone is too short to remember; the whole is not
      assert.are.equal("<" .. R .. ">", redact.text("<" .. secret.expose(prefixed) .. ">"))
      assert.are.equal("tiny", redact.text("tiny"))
    end)

    it("add remembers plain strings, from a minimum length", function()
      assert.is_true(redact.add("plain-secret-text"))
      assert.are.equal("a " .. R .. " b", redact.text("a plain-secret-text b"))
      assert.is_true(redact.add("plain-secret-text"))  -- again: still known
      assert.is_false(redact.add("short"))
      assert.are.equal("short", redact.text("short"))
      assert.is_true(redact.add(secret("added-as-secret")))
      assert.has_error(function() redact.add({}) end)
    end)

    it("keeps secrets known after they are collected", function()
      do local _ = secret("collected-secret-value") end
      collectgarbage()
      collectgarbage()
      assert.are.equal(R, redact.text("collected-secret-value"))
    end)
  end)

  describe("errors", function()
    local SAS = "https://acct.blob.core.windows.net/in/rentals.csv?sv=2021-08-06&sr=b&sp=r&sig=S3cr3tSig%2Bvalue%3D"

    it("E.new redacts the message it is given, and tostring(err) prints it redacted", function()
      local err = E.new{ kind = "azureml", code = "InvalidInput",
        message = "Batch job failed: cannot read input " .. SAS .. " (HTTP 403)", url = SAS }
      assert.is_nil(tostring(err):find("S3cr3tSig", 1, true))
      assert.matches("sig=" .. R .. " %(HTTP 403%)", tostring(err))
      assert.matches("sp=r&sig=", err.message, 1, true)
      assert.is_nil(err.message:find("S3cr3tSig", 1, true))
      assert.is_nil(err.url:find("S3cr3tSig", 1, true))
    end)

    it("tostring redacts a message changed after the error was made", function()
      local err = E.new{ kind = "x", code = "y", message = "first" }
      err.message = err.message .. ": echo " .. SAS
      assert.is_nil(tostring(err):find("S3cr3tSig", 1, true))
      assert.matches("sig=" .. R .. " %(y%)$", tostring(err))
    end)

    it("redact.error redacts every string of a Lua-built error and the tables it holds", function()
      local cause = setmetatable({ message = "echo AccountKey=abc123;" }, E.mt)
      local err = { kind = "x", message = "failed: Bearer abcdefghijklmnop0123", cause = cause,
        sources = { { error = { message = "password=hunter2" } } } }
      err.self = err  -- cycles end
      assert.are.equal(err, redact.error(err))
      assert.are.equal("failed: Bearer " .. R, err.message)
      assert.are.equal("echo AccountKey=" .. R .. ";", cause.message)
      assert.are.equal("password=" .. R, err.sources[1].error.message)
      assert.are.equal("sig=" .. R, redact.error("sig=abc"))
      assert.are.equal(7, redact.error(7))
    end)

    it("redacts errors raised in C: a failed request naming a file with a SAS query", function()
      local res, err = http.request{ url = "http://127.0.0.1:9/upload", method = "PUT",
        body_file = "/nonexistent/blob.csv?sv=2021&sig=C-raised-s3cret" }
      assert.is_nil(res)
      assert.is_true(E.is(err))
      assert.are.equal("http", err.kind)
      assert.is_nil(err.message:find("C-raised-s3cret", 1, true))
      assert.matches("sig=" .. R, err.message, 1, true)
      assert.is_nil(tostring(err):find("C-raised-s3cret", 1, true))
    end)

    it("redacts errors raised in C: lufa.fs and lufa.json naming a path with a secret in it", function()
      local _, ferr = fs.read_file("/nonexistent/x?sig=fs-s3cret-sig")
      assert.are.equal("cannot read '/nonexistent/x?sig=" .. R .. "': No such file or directory", ferr.message)
      assert.are.equal("/nonexistent/x?sig=" .. R, ferr.path)
      local _ = secret("remembered-in-path")
      local _, jerr = json.decode_file("/nonexistent/remembered-in-path.json")
      assert.is_nil(tostring(jerr):find("remembered-in-path", 1, true))
    end)
  end)

  describe("speed", function()
    it("processes 10 MB in one pass (measured, not asserted)", function()
      for i = 1, 200 do secret(string.format("speed-secret-%04d-%s", i, ("z"):rep(i % 40))) end
      local line = "2024-05-01T10:00:00Z activity amlBEGetilearner: status Running, polling "
        .. "https://acct.blob.core.windows.net/c/out.csv?sv=2021&sp=r&sig=abcDEF%2B123 again; "
        .. [[{"name":"x","value":12,"message":"a perfectly ordinary status message"}]] .. "\n"
      local plain = "2024-05-01T10:00:00Z activity amlBEGetilearner: status Running, nothing to hide here at all; "
        .. [[{"name":"x","value":12,"message":"a perfectly ordinary status message","passes":3}]] .. "\n"
      local parts = {}
      local size = 0
      local with = 0
      while size < 10 * 1024 * 1024 do
        local l = (#parts % 10 == 0) and line or plain
        if l == line then with = with + 1 end
        parts[#parts + 1] = l
        size = size + #l
      end
      local big = table.concat(parts)
      local t0 = lufa.now()
      local out = redact.text(big)
      local t1 = lufa.now()
      local same = redact.text(out)
      local t2 = lufa.now()
      local markers = select(2, out:gsub("<redacted>", ""))
      assert.are.equal(with, markers)
      assert.are.equal(out, same)
      local mb = #big / 1048576
      print(string.format("\n  redact.text: %.1f MB with %d credentials in %.3f s (%.0f MB/s); nothing to hide: %.3f s",
        mb, with, t1 - t0, mb / (t1 - t0), t2 - t1))
    end)
  end)
end)
