-- lufa.aad against the Azure AD and managed-identity emulators (scripts/emulators): every credential kind,
-- v1 and v2, caching, refresh, single-flight, errors, retries and redaction. What went over the wire is
-- read back from the emulators' request log, so counts are the service's view, not the client's.

local lufa = require "lufa"
local aad = require "lufa.aad"
local http = require "lufa.http"
local json = require "lufa.json"
local crypto = require "lufa.crypto"
local secret = require "lufa.secret"
local E = require "lufa.error"

local STORAGE = "https://storage.azure.com/"

local function shell(cmd)
  local ok = os.execute(cmd)
  assert(ok, "command failed: " .. cmd)
end

local util = require "tests.support.util"
local tempdir, my_pid, lufa_binary = util.tempdir, util.own_pid, util.lufa_binary

-- Starts the stand-ins in a fresh state folder; they stop themselves if this process dies.
local function start_emulators(extra)
  local dir = tempdir()
  shell(string.format("scripts/emulators/start --state '%s' --quiet --owner-pid %d %s >/dev/null", dir, my_pid(), extra or ""))
  local info = assert(json.decode_file(dir .. "/emulators.json"))
  return dir, info
end

local function stop_emulators(dir)
  if dir then
    os.execute(string.format("scripts/emulators/stop --state '%s' >/dev/null 2>&1", dir))
    os.execute(string.format("rm -rf '%s'", dir))
  end
end

local dir, info

local function control(method, path, body)
  local res = assert(http.request{ method = method, url = info.control .. path,
    headers = body and { ["Content-Type"] = "application/json" } or nil,
    body = body and json.encode(body) or nil })
  assert(res.status < 300, method .. " " .. path .. ": HTTP " .. res.status .. " " .. tostring(res.body))
  return res.body ~= "" and json.decode(res.body) or nil
end

-- Token requests the emulators saw, optionally for one route ("aad.token.v2", "identity.imds", …).
local function token_requests(route)
  local log = control("GET", "/requests")
  local out = {}
  for _, e in ipairs(log.requests) do
    if e.route:find("^aad%.token") or e.route:find("^identity%.") then
      if not route or e.route == route then out[#out + 1] = e end
    end
  end
  return out
end

local function faults(rules)
  control("PUT", "/faults", { seed = 7, rules = rules })
end

local function lifetime(seconds)
  control("PATCH", "/settings", { tokenLifetimeSeconds = seconds or json.null })
end

-- Decoded claims of an access token (the emulator's tokens are JWTs; lufa treats them as opaque).
local function claims(token)
  local payload = secret.expose(token):match("^[^.]+%.([^.]+)%.")
  return json.decode(crypto.base64url_decode(payload))
end

local function fast_retry(attempts)
  return { attempts = attempts or 4, base_delay = 0.01, max_delay = 0.05 }
end

local function secret_cred(over)
  local o = { tenant = info.aad.tenantId, client_id = info.aad.clientId, client_secret = info.aad.clientSecret,
    authority = info.aad.authority, retry = fast_retry() }
  for k, v in pairs(over or {}) do o[k] = v end
  return aad.client_secret(o)
end

local function cert_cred(over)
  local o = { tenant = info.aad.tenantId, client_id = info.aad.clientId, certificate = info.clientCert,
    private_key = info.clientKey, authority = info.aad.authority, retry = fast_retry() }
  for k, v in pairs(over or {}) do o[k] = v end
  return assert(aad.client_certificate(o))
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("lufa.aad", function()
  setup(function()
    dir, info = start_emulators()
  end)

  teardown(function()
    stop_emulators(dir)
  end)

  before_each(function()
    aad.clear_cache()
    control("DELETE", "/faults")
    lifetime(nil)
    control("DELETE", "/requests")
  end)

  describe("client secret", function()
    it("gets a v2 token for a resource, sent as its /.default scope", function()
      local tok, expires_on = secret_cred():token(STORAGE)
      assert.is_true(secret.is(tok))
      local c = claims(tok)
      assert.are.equal("https://storage.azure.com", c.aud)  -- Azure AD cuts the scope at its last '/' 
      assert.are.equal(info.aad.clientId, c.appid)
      assert.are.equal("1", c.appidacr)
      local now = os.time()
      -- Azure AD (and the emulator by default) draws a lifetime of 60 to 90 minutes
      assert.is_true(expires_on >= now + 3599 - 5 and expires_on <= now + 5400 + 5)
      assert.are.equal(c.exp, expires_on)
      local reqs = token_requests()
      assert.are.equal(1, #reqs)
      assert.are.equal("aad.token.v2", reqs[1].route)
      assert.are.equal("https://storage.azure.com/.default", reqs[1].target)
      assert.are.equal("client_secret", reqs[1].auth)
    end)

    it("uses the v1 endpoint with a resource when asked for version 1", function()
      local tok = secret_cred{ version = 1 }:token("https://storage.azure.com/.default")
      assert.are.equal("https://storage.azure.com", claims(tok).aud)
      local reqs = token_requests()
      assert.are.equal(1, #reqs)
      assert.are.equal("aad.token.v1", reqs[1].route)
      assert.are.equal("https://storage.azure.com", reqs[1].target)
    end)

    it("reaches the tenant by domain name; the token names the tenant's GUID", function()
      local tok = secret_cred{ tenant = info.aad.tenantDomains[1] }:token(STORAGE)
      assert.are.equal(info.aad.tenantId, claims(tok).tid)
      assert.are.equal("/" .. info.aad.tenantDomains[1] .. "/oauth2/v2.0/token", token_requests()[1].path)
    end)

    it("keeps the trailing slash of classic ARM's identifier (//.default)", function()
      local tok = secret_cred():token("https://management.core.windows.net/")
      assert.are.equal("https://management.core.windows.net/", claims(tok).aud)
      assert.are.equal("https://management.core.windows.net//.default", token_requests()[1].target)
    end)

    it("serves a cached token until it is due for refresh", function()
      local cred = secret_cred()
      local t1, e1 = cred:token(STORAGE)
      local t2, e2 = cred:token(STORAGE)
      local t3 = secret_cred():token("https://storage.azure.com/.default")  -- same key, another object
      assert.are.equal(t1, t2)
      assert.are.equal(t1, t3)
      assert.are.equal(e1, e2)
      assert.are.equal(1, #token_requests())
      cred:token("https://management.azure.com/")
      assert.are.equal(2, #token_requests())
    end)

    it("does not share tokens between credentials with different secrets", function()
      assert.is_truthy(secret_cred():token(STORAGE))
      local tok, err = secret_cred{ client_secret = "not-the-secret" }:token(STORAGE)
      assert.is_nil(tok)
      assert.are.equal("AADSTS7000215", err.code)
    end)

    it("gives the Authorization header value as a secret", function()
      local cred = secret_cred()
      local auth, expires_on = cred:authorization(STORAGE)
      local tok, e2 = cred:token(STORAGE)
      assert.is_true(secret.is(auth))
      assert.are.equal("Bearer " .. secret.expose(tok), secret.expose(auth))
      assert.are.equal(expires_on, e2)
    end)
  end)

  describe("client certificate", function()
    it("authenticates with an RS256 assertion naming the certificate by x5t", function()
      local tok = cert_cred():token(STORAGE)
      assert.are.equal("2", claims(tok).appidacr)
      local reqs = token_requests()
      assert.are.equal(1, #reqs)
      assert.are.equal("client_assertion", reqs[1].auth)
      assert.are.equal(200, reqs[1].status)
    end)

    it("authenticates by x5t#S256 and with x5c, on v1 too", function()
      assert.is_truthy(cert_cred{ use_sha256_thumbprint = true, send_x5c = true }:token(STORAGE))
      assert.is_truthy(cert_cred{ use_sha256_thumbprint = true, version = 1 }:token("https://management.azure.com/"))
      local reqs = token_requests()
      assert.are.equal(2, #reqs)
      assert.are.equal("aad.token.v1", reqs[2].route)
      assert.are.equal(200, reqs[2].status)
    end)

    it("builds the assertion header and claims that Azure AD documents", function()
      local assertion = require "lufa.aad.assertion"
      local cert_pem = read(info.clientCert)
      local material = assert(assertion.load(info.clientCert, info.clientKey))
      local cert = assert(crypto.load_certificate(cert_pem))
      local url = info.aad.authority .. "/" .. info.aad.tenantId .. "/oauth2/v2.0/token"
      local function parts(jwt)
        local h, p, s = secret.expose(jwt):match("^([^.]+)%.([^.]+)%.([^.]+)$")
        return json.decode(crypto.base64url_decode(h)), json.decode(crypto.base64url_decode(p)), h .. "." .. p, s
      end
      local h, p, input, sig = parts(assertion.sign(material, { client_id = "app", audience = url,
        use_sha256_thumbprint = true, send_x5c = true, now = 1764240000 }))
      assert.are.equal("RS256", h.alg)
      assert.are.equal(crypto.base64url_encode(cert.sha256), h["x5t#S256"])
      assert.is_nil(h.x5t)
      assert.are.equal(crypto.base64_encode(cert.der), h.x5c[1])
      assert.are.same({ "app", "app", url, 1764240000, 1764240600 }, { p.iss, p.sub, p.aud, p.nbf, p.exp })
      assert.is_true(crypto.verify_rs256(cert_pem, input, crypto.base64url_decode(sig)))
      local h2, p2 = parts(assertion.sign(material, { client_id = "app", audience = url }))
      assert.are.equal(crypto.base64url_encode(cert.sha1), h2.x5t)
      assert.is_nil(h2["x5t#S256"])
      assert.is_nil(h2.x5c)
      assert.are_not.equal(p.jti, p2.jti)
    end)

    it("reads a combined PEM (key and certificate in one file)", function()
      local combined = dir .. "/combined.pem"
      local f = assert(io.open(combined, "wb"))
      f:write(read(info.clientKey), read(info.clientCert))
      f:close()
      assert.is_truthy(cert_cred{ certificate = combined, private_key = nil }:token(STORAGE))
    end)

    it("refuses a key that does not belong to the certificate, before any request", function()
      local other = dir .. "/other-key.pem"
      shell("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out '" .. other .. "' 2>/dev/null")
      local cred, err = aad.client_certificate{ tenant = info.aad.tenantId, client_id = info.aad.clientId,
        certificate = info.clientCert, private_key = other, authority = info.aad.authority }
      assert.is_nil(cred)
      assert.are.equal("aad", err.kind)
      assert.are.equal("key_mismatch", err.code)
      assert.are.equal(0, #token_requests())
    end)

    it("reports an unreadable certificate file by name", function()
      local cred, err = aad.client_certificate{ tenant = info.aad.tenantId, client_id = info.aad.clientId,
        certificate = dir .. "/missing.pem", authority = info.aad.authority }
      assert.is_nil(cred)
      assert.are.equal("file", err.code)
      assert.matches("missing.pem", err.message, 1, true)
    end)

    it("surfaces AADSTS700027 for a certificate the app does not know", function()
      local key, cert = dir .. "/stranger-key.pem", dir .. "/stranger-cert.pem"
      shell(string.format("openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' -out '%s' -days 2 -subj /CN=stranger 2>/dev/null", key, cert))
      local tok, err = cert_cred{ certificate = cert, private_key = key }:token(STORAGE)
      assert.is_nil(tok)
      assert.are.equal("AADSTS700027", err.code)
      assert.are.equal("invalid_client", err.error)
      assert.are.equal(401, err.status)
      assert.are.equal(1, #token_requests())  -- a rejected credential is not retried
    end)
  end)

  describe("managed identity", function()
    it("asks IMDS for the system-assigned identity", function()
      local tok, expires_on = aad.managed_identity{ endpoint = info.identity.imdsEndpoint, env = {} }:token(STORAGE)
      assert.is_true(secret.is(tok))
      assert.are.equal(claims(tok).exp, expires_on)
      local sys = info.identity.identities[1]
      assert.are.equal(sys.clientId, claims(tok).appid)
      local reqs = token_requests("identity.imds")
      assert.are.equal(1, #reqs)
      assert.matches("api-version=2018-02-01", reqs[1].path, 1, true)
      assert.matches("resource=https%3A%2F%2Fstorage.azure.com%2F", reqs[1].path, 1, true)
    end)

    it("selects a user-assigned identity by client_id, object_id or resource_id", function()
      local user = info.identity.identities[2]
      for _, sel in ipairs{ { client_id = user.clientId }, { object_id = user.principalId },
          { resource_id = user.resourceId } } do
        sel.endpoint, sel.env = info.identity.imdsEndpoint, {}
        local tok = aad.managed_identity(sel):token(STORAGE)
        assert.are.equal(user.clientId, claims(tok).appid)
      end
      local paths = {}
      for _, r in ipairs(token_requests("identity.imds")) do paths[#paths + 1] = r.path end
      assert.are.equal(3, #paths)
      assert.matches("client_id=", paths[1], 1, true)
      assert.matches("object_id=", paths[2], 1, true)
      assert.matches("msi_res_id=", paths[3], 1, true)
    end)

    it("uses App Service's IDENTITY_ENDPOINT and IDENTITY_HEADER when they are set", function()
      local env = { IDENTITY_ENDPOINT = info.identity.identityEndpoint, IDENTITY_HEADER = info.identity.identityHeader }
      local user = info.identity.identities[2]
      local cred = aad.managed_identity{ env = env, resource_id = user.resourceId }
      assert.matches("App Service", tostring(cred), 1, true)
      local tok, expires_on = cred:token("https://storage.azure.com/.default")
      assert.are.equal(user.clientId, claims(tok).appid)
      assert.are.equal(claims(tok).exp, expires_on)
      local reqs = token_requests("identity.appservice")
      assert.are.equal(1, #reqs)
      assert.matches("api-version=2019-08-01", reqs[1].path, 1, true)
      assert.matches("mi_res_id=", reqs[1].path, 1, true)
    end)

    it("reports App Service's refusal of a wrong identity header", function()
      local env = { IDENTITY_ENDPOINT = info.identity.identityEndpoint, IDENTITY_HEADER = "wrong-header-value" }
      local tok, err = aad.managed_identity{ env = env }:token(STORAGE)
      assert.is_nil(tok)
      assert.are.equal("aad", err.kind)
      assert.are.equal(401, err.status)
      assert.matches("X-IDENTITY-HEADER", err.message, 1, true)
      assert.is_nil(err.message:find("wrong-header-value", 1, true))
    end)

    it("surfaces IMDS's error for an unknown identity without retrying it", function()
      local tok, err = aad.managed_identity{ endpoint = info.identity.imdsEndpoint, env = {},
        client_id = "00000000-0000-0000-0000-000000000000", retry = fast_retry() }:token(STORAGE)
      assert.is_nil(tok)
      assert.are.equal(400, err.status)
      assert.are.equal("invalid_request", err.code)
      assert.are.equal(1, #token_requests())
    end)
  end)

  describe("cache and refresh", function()
    it("fetches a new token once the old one has expired", function()
      lifetime(1)
      local cred = secret_cred()
      local t1, e1 = cred:token(STORAGE)
      lufa.sleep(2.2)
      local t2, e2 = cred:token(STORAGE)
      assert.are_not.equal(t1, t2)
      assert.is_true(e2 > e1)
      assert.are.equal(2, #token_requests())
    end)

    -- when tokens are refreshed, how close to expiry they may go out, and what a failed early refresh
    -- keeps: tests/spec/aad_refresh_spec.lua (with an injected clock)

    it("computes the refresh time from the margin, refresh_in and half-life", function()
      local cache = require "lufa.aad.cache"
      assert.are.equal(100 + 3599 - 300, cache.refresh_at({ expires_in = 3599 }, 100, {}))
      assert.are.equal(100 + 600, cache.refresh_at({ expires_in = 3599, refresh_in = 600 }, 100, {}))
      assert.are.equal(100 + 43200, cache.refresh_at({ expires_in = 86400 }, 100, {}))
      assert.are.equal(100 + 3599 - 60, cache.refresh_at({ expires_in = 3599 }, 100, { refresh_margin = 60 }))
    end)
  end)

  describe("single-flight", function()
    local function ask_concurrently(n, fn)
      local tasks = {}
      for i = 1, n do tasks[i] = lufa.spawn(fn, i) end
      local results = {}
      for i, t in ipairs(tasks) do results[i] = { t:wait() } end
      return results
    end

    it("sends one request for 50 concurrent asks of the same token", function()
      local cred = secret_cred()
      local results = ask_concurrently(50, function() return cred:token(STORAGE) end)
      for i = 1, 50 do
        assert.is_true(secret.is(results[i][1]))
        assert.are.equal(results[1][1], results[i][1])
      end
      assert.are.equal(1, #token_requests())
    end)

    it("sends one request per distinct token, and one per managed-identity token", function()
      local cred = secret_cred()
      local mi = aad.managed_identity{ endpoint = info.identity.imdsEndpoint, env = {} }
      local targets = { STORAGE, "https://management.azure.com/" }
      local results = ask_concurrently(60, function(i)
        if i % 3 == 0 then return mi:token(STORAGE) end
        return cred:token(targets[i % 3])
      end)
      for _, r in ipairs(results) do assert.is_true(secret.is(r[1])) end
      assert.are.equal(2, #token_requests("aad.token.v2"))
      assert.are.equal(1, #token_requests("identity.imds"))
    end)

    it("shares a failure too, and the next ask tries again", function()
      local cred = secret_cred{ client_secret = "wrong" }
      local results = ask_concurrently(20, function() return cred:token(STORAGE) end)
      for _, r in ipairs(results) do
        assert.is_nil(r[1])
        assert.are.equal("AADSTS7000215", r[2].code)
      end
      assert.are.equal(1, #token_requests())
      cred:token(STORAGE)
      assert.are.equal(2, #token_requests())
    end)

    it("finishes the shared request when the task that started it is cancelled", function()
      local cred = secret_cred()
      local first = lufa.spawn(function() return cred:token(STORAGE) end)
      local second = lufa.spawn(function() return cred:token(STORAGE) end)
      lufa.sleep(0)
      first:cancel("test")
      local tok = second:wait()
      assert.is_true(secret.is(tok))
      assert.are.equal("cancelled", first:status())
      assert.are.equal(1, #token_requests())
    end)
  end)

  describe("errors", function()
    it("surface AADSTS7000215 for a wrong secret, not retried", function()
      local tok, err = secret_cred{ client_secret = "Wr0ng+Secret/Value=" }:token(STORAGE)
      assert.is_nil(tok)
      assert.is_true(E.is(err))
      assert.are.equal("aad", err.kind)
      assert.are.equal("AADSTS7000215", err.code)
      assert.are.equal("invalid_client", err.error)
      assert.are.equal(401, err.status)
      assert.matches("^AADSTS7000215: ", err.description)
      assert.is_nil(err.description:find("Trace ID", 1, true))
      assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", err.correlation_id)
      assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", err.trace_id)
      assert.are.equal(1, err.attempts)
      assert.is_nil(tostring(err):find("Wr0ng", 1, true))
      assert.are.equal(1, #token_requests())
    end)

    it("surface AADSTS700016 for an unknown client", function()
      local tok, err = secret_cred{ client_id = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9" }:token(STORAGE)
      assert.is_nil(tok)
      assert.are.equal("AADSTS700016", err.code)
      assert.are.equal("unauthorized_client", err.error)
      assert.are.equal(400, err.status)
      assert.are.equal(1, #token_requests())
    end)

    it("surface AADSTS90002 for an unknown tenant", function()
      local tok, err = secret_cred{ tenant = "nobody.onmicrosoft.com" }:token(STORAGE)
      assert.is_nil(tok)
      assert.are.equal("AADSTS90002", err.code)
      assert.are.equal("invalid_request", err.error)
      assert.matches("nobody.onmicrosoft.com", err.message, 1, true)
    end)

    it("surface AADSTS500011 for a resource the tenant does not know", function()
      local tok, err = secret_cred():token("https://unknown.example.com/")
      assert.is_nil(tok)
      assert.are.equal("AADSTS500011", err.code)
      assert.are.equal("invalid_resource", err.error)
    end)

    it("report an unreachable authority as a transport failure of kind aad", function()
      local tok, err = secret_cred{ authority = "http://127.0.0.1:1", retry = fast_retry(2) }:token(STORAGE)
      assert.is_nil(tok)
      assert.are.equal("aad", err.kind)
      assert.are.equal("connect", err.code)
      assert.are.equal(2, err.attempts)
      assert.are.equal("http", err.cause.kind)
    end)
  end)

  describe("retries", function()
    it("retry 429 (honouring Retry-After) and 503 until a token comes", function()
      faults{ { route = "aad.token.v2", sequence = {
        { type = "status", status = 429, retryAfter = 0 }, { type = "status", status = 503 } } } }
      local tok = secret_cred():token(STORAGE)
      assert.is_true(secret.is(tok))
      local reqs = token_requests()
      assert.are.same({ 429, 503, 200 }, { reqs[1].status, reqs[2].status, reqs[3].status })
      assert.are.equal(3, #reqs)
    end)

    it("retry a connection reset", function()
      faults{ { route = "aad.token.v2", sequence = { { type = "reset", when = "mid-body" } } } }
      assert.is_true(secret.is(secret_cred():token(STORAGE)))
      local log = control("GET", "/requests?route=aad.token.v2")
      assert.are.equal(2, log.count)
    end)

    it("retry the transient failures of a certificate credential", function()
      faults{ { route = "aad.token.v2", sequence = { { type = "status", status = 500 }, { type = "status", status = 502 } } } }
      assert.is_true(secret.is(cert_cred():token(STORAGE)))
      local reqs = token_requests()
      assert.are.equal(3, #reqs)
      assert.are.equal(200, reqs[3].status)
    end)

    it("give up after the policy's attempts with the last error", function()
      faults{ { route = "aad.token.v2", sequence = { { type = "status", status = 503 } }, ["repeat"] = true } }
      local tok, err = secret_cred{ retry = fast_retry(3) }:token(STORAGE)
      assert.is_nil(tok)
      assert.are.equal(503, err.status)
      assert.are.equal("temporarily_unavailable", err.error)
      assert.are.equal("AADSTS90006", err.code)
      assert.are.equal(3, err.attempts)
      assert.are.equal(3, #token_requests())
    end)

    it("retry IMDS's 503 and 429", function()
      faults{ { route = "identity.imds", sequence = { { type = "status", status = 503 },
        { type = "status", status = 429, retryAfter = 0 } } } }
      local tok = aad.managed_identity{ endpoint = info.identity.imdsEndpoint, env = {}, retry = fast_retry() }:token(STORAGE)
      assert.is_true(secret.is(tok))
      assert.are.equal(3, #token_requests("identity.imds"))
    end)
  end)

  describe("redaction", function()
    it("prints tokens, headers and credentials without their secrets", function()
      local cred = secret_cred()
      local tok = cred:token(STORAGE)
      local auth = cred:authorization(STORAGE)
      local raw = secret.expose(tok)
      assert.are.equal("<redacted>", tostring(tok))
      assert.are.equal("<redacted>", string.format("%s", auth))
      assert.are.equal('{"t":"<redacted>"}', json.encode({ t = tok }))
      for _, text in ipairs{ tostring(cred), tostring(cert_cred()),
          tostring(aad.managed_identity{ env = { IDENTITY_ENDPOINT = info.identity.identityEndpoint,
            IDENTITY_HEADER = info.identity.identityHeader } }) } do
        assert.is_nil(text:find(info.aad.clientSecret, 1, true))
        assert.is_nil(text:find(info.identity.identityHeader, 1, true))
        assert.is_nil(text:find(raw, 1, true))
      end
    end)

    it("prints a token fetched from the SDK environment variables redacted (lufa -e)", function()
      local out_file = os.tmpname()
      local cmd = string.format("env AZURE_TENANT_ID='%s' AZURE_CLIENT_ID='%s' AZURE_CLIENT_SECRET='%s' " ..
        "AZURE_AUTHORITY_HOST='%s' '%s' -e 'local c = assert(require(\"lufa.aad\").environment()); " ..
        "print(assert(c:token(\"https://storage.azure.com/\")))' > '%s' 2>&1",
        info.aad.tenantDomains[1], info.aad.clientId, info.aad.clientSecret, info.aad.authority, lufa_binary(), out_file)
      local ok = os.execute(cmd)
      local out = read(out_file)
      os.remove(out_file)
      assert.is_true(ok, out)
      assert.matches("^<redacted>\t%d+\n$", out)
      assert.are.equal(1, #token_requests())
    end)
  end)

  describe("environment and default chain", function()
    it("builds a secret credential from AZURE_* variables, with AZURE_AUTHORITY_HOST", function()
      local cred = assert(aad.environment{ env = { AZURE_TENANT_ID = info.aad.tenantId,
        AZURE_CLIENT_ID = info.aad.clientId, AZURE_CLIENT_SECRET = info.aad.clientSecret,
        AZURE_AUTHORITY_HOST = info.aad.authority } })
      assert.matches("client_secret", tostring(cred), 1, true)
      assert.is_true(secret.is(cred:token(STORAGE)))
      assert.are.equal(1, #token_requests("aad.token.v2"))
    end)

    it("builds a certificate credential from AZURE_CLIENT_CERTIFICATE_PATH", function()
      local combined = dir .. "/env-combined.pem"
      local f = assert(io.open(combined, "wb"))
      f:write(read(info.clientCert), read(info.clientKey))
      f:close()
      local cred = assert(aad.environment{ env = { AZURE_TENANT_ID = info.aad.tenantId,
        AZURE_CLIENT_ID = info.aad.clientId, AZURE_CLIENT_CERTIFICATE_PATH = combined,
        AZURE_AUTHORITY_HOST = info.aad.authority } })
      assert.matches("client_certificate", tostring(cred), 1, true)
      assert.is_true(secret.is(cred:token(STORAGE)))
      assert.are.equal("client_assertion", token_requests()[1].auth)
    end)

    it("says which variables are missing", function()
      local cred, err = aad.environment{ env = { AZURE_TENANT_ID = info.aad.tenantId } }
      assert.is_nil(cred)
      assert.are.equal("unavailable", err.code)
      assert.matches("AZURE_CLIENT_ID", err.message, 1, true)
      assert.is_nil(err.message:find("AZURE_TENANT_ID", 1, true))
    end)

    it("falls through to the managed identity when the environment is not configured", function()
      local cred = aad.default{ env = {}, endpoint = info.identity.imdsEndpoint }
      local tok = cred:token(STORAGE)
      assert.are.equal(info.identity.identities[1].clientId, claims(tok).appid)
      assert.are.equal(1, #token_requests("identity.imds"))
    end)

    it("prefers the environment credential", function()
      local cred = aad.default{ endpoint = info.identity.imdsEndpoint, env = { AZURE_TENANT_ID = info.aad.tenantId,
        AZURE_CLIENT_ID = info.aad.clientId, AZURE_CLIENT_SECRET = info.aad.clientSecret,
        AZURE_AUTHORITY_HOST = info.aad.authority } }
      assert.are.equal(info.aad.clientId, claims(cred:token(STORAGE)).appid)
      assert.are.equal(0, #token_requests("identity.imds"))
    end)

    it("lists what each source said when none produces a token", function()
      local cred = aad.default{ env = {}, endpoint = "http://127.0.0.1:1" }
      local tok, err = cred:token(STORAGE)
      assert.is_nil(tok)
      assert.are.equal("unavailable", err.code)
      assert.are.equal(2, #err.sources)
      assert.matches("aad.environment: not configured", err.message, 1, true)
      assert.matches("aad.managed_identity (IMDS)", err.message, 1, true)
    end)

    it("stops at a configured source that is refused", function()
      local cred = aad.default{ endpoint = info.identity.imdsEndpoint, env = { AZURE_TENANT_ID = info.aad.tenantId,
        AZURE_CLIENT_ID = info.aad.clientId, AZURE_CLIENT_SECRET = "wrong-secret-value",
        AZURE_AUTHORITY_HOST = info.aad.authority } }
      local tok, err = cred:token(STORAGE)
      assert.is_nil(tok)
      assert.are.equal("AADSTS7000215", err.code)
      assert.is_nil(err.message:find("wrong-secret-value", 1, true))
      assert.are.equal(0, #token_requests("identity.imds"))
    end)
  end)

  describe("misuse", function()
    local base = function(over)
      local o = { tenant = "t", client_id = "c", client_secret = "s", authority = "https://login.example" }
      for k, v in pairs(over) do o[k] = v end
      return o
    end

    it("raises on missing or malformed options", function()
      assert.has_error(function() aad.client_secret(base{ tenant = false }) end)
      assert.has_error(function() aad.client_secret{ client_id = "c", client_secret = "s" } end, "aad.client_secret: tenant: expected a tenant id (GUID) or domain such as contoso.onmicrosoft.com")
      assert.has_error(function() aad.client_secret(base{ tenant = "a/b" }) end)
      assert.has_error(function() aad.client_secret(base{ client_secret = "" }) end)
      assert.has_error(function() aad.client_secret(base{ authority = "http://login.example" }) end)
      assert.has_error(function() aad.client_secret(base{ scope = "x" }) end, "aad.client_secret: unknown option 'scope' " ..
        "(known options: authority, ca_file, client_id, client_secret, env, refresh_margin, refresh_min_interval, " ..
        "retry, tenant, timeout, version)")
      assert.has_error(function() aad.client_secret(base{ version = 3 }) end)
      assert.has_error(function() aad.managed_identity{ client_id = "a", object_id = "b" } end)
    end)

    it("raises when token is not given one resource or scope", function()
      local cred = aad.client_secret(base{})
      assert.has_error(function() cred:token() end)
      assert.has_error(function() cred:token("https://a/.default https://b/.default") end)
      assert.has_error(function() cred.token(STORAGE) end)
    end)

    it("normalises the authority as the SDKs do", function()
      local authority = require "lufa.aad.authority"
      assert.are.equal("https://login.microsoftonline.us", authority.normalize("login.microsoftonline.us/"))
      assert.are.equal("http://127.0.0.1:8080", authority.normalize("http://127.0.0.1:8080/"))
      assert.is_nil(authority.normalize("http://login.microsoftonline.com"))
      assert.matches("login.example", aad.client_secret(base{ authority = "login.example" }).authority)
    end)

    it("maps resources and scopes both ways", function()
      assert.are.equal("https://storage.azure.com/.default", aad.to_scope("https://storage.azure.com/"))
      assert.are.equal("https://storage.azure.com/.default", aad.to_scope("https://storage.azure.com"))
      assert.are.equal("https://management.core.windows.net//.default", aad.to_scope("https://management.core.windows.net/"))
      assert.are.equal("https://acct.blob.core.windows.net/.default", aad.to_scope("https://acct.blob.core.windows.net/.default"))
      assert.are.equal("https://storage.azure.com", aad.to_resource("https://storage.azure.com/.default"))
      assert.are.equal("https://management.core.windows.net/", aad.to_resource("https://management.core.windows.net//.default"))
    end)

    it("reads App Service's legacy expires_on date", function()
      local response = require "lufa.aad.response"
      assert.are.equal(1505390400, response.legacy_date("09/14/2017 00:00:00 PM +00:00"))
      assert.are.equal(1505347200, response.legacy_date("09/14/2017 12:00:00 AM +00:00"))
      assert.are.equal(1505390400 - 7200, response.legacy_date("09/14/2017 02:00:00 PM +04:00"))
    end)
  end)
end)

describe("lufa.aad over TLS", function()
  local tls_dir, tls_info

  setup(function()
    tls_dir, tls_info = start_emulators("--tls")
  end)

  teardown(function()
    stop_emulators(tls_dir)
  end)

  it("gets a token from an https authority trusted through ca_file", function()
    aad.clear_cache()
    local cred = aad.client_secret{ tenant = tls_info.aad.tenantId, client_id = tls_info.aad.clientId,
      client_secret = tls_info.aad.clientSecret, authority = tls_info.aad.authority, ca_file = tls_info.caFile }
    assert.matches("^https://", tls_info.aad.authority)
    local tok, err = cred:token(STORAGE)
    assert.is_true(secret.is(tok), tostring(err))
  end)
end)
