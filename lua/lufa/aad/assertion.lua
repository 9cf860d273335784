--- lufa.aad.assertion: certificate material and the signed JWT client assertion of the certificate
-- credential (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`).
local crypto = require "lufa.crypto"
local json = require "lufa.json"
local secret = require "lufa.secret"
local E = require "lufa.error"

local assertion = {}

--- Lifetime of an assertion in seconds (Azure AD wants 5-10 minutes; MSAL mints 600 s).
assertion.LIFETIME = 600

local function fail(code, fmt, ...)
  return nil, E.new{ kind = "aad", code = code, message = string.format(fmt, ...) }
end

local function is_pem(v)
  return secret.is(v) or (type(v) == "string" and v:find("-----BEGIN ", 1, true) ~= nil)
end

-- Reads PEM material given as text, a secret, or a file path. The private key stays a secret.
local function read_pem(value, what, keep_secret)
  if is_pem(value) then
    if keep_secret and not secret.is(value) then return secret(value) end
    return value
  end
  local f, oerr = io.open(value, "rb")
  if not f then return fail("file", "aad.client_certificate: cannot read the %s file: %s", what, oerr) end
  local text, rerr = f:read("a")
  f:close()
  if not text then return fail("file", "aad.client_certificate: cannot read the %s file '%s': %s", what, value, rerr) end
  if not text:find("-----BEGIN ", 1, true) then
    return fail("certificate", "aad.client_certificate: the %s file '%s' is not PEM (expected a -----BEGIN block)", what, value)
  end
  return keep_secret and secret(text) or text
end

--- Loads and checks the certificate and its private key.
-- @tparam string certificate PEM text or a path (may be a combined key + certificate file)
-- @tparam[opt] string|secret private_key PEM text, a secret, or a path; defaults to the certificate file
-- @return `{key = secret, der =, sha1 =, sha256 =, not_after =}`, or nil, err (`code` "file",
--   "certificate", "key", "key_mismatch", …; never quoting key bytes)
function assertion.load(certificate, private_key)
  local cert_pem, err = read_pem(certificate, "certificate", false)
  if not cert_pem then return nil, err end
  local key
  key, err = read_pem(private_key or certificate, "private key", true)
  if not key then return nil, err end
  local cert, cerr = crypto.load_certificate(cert_pem)
  if not cert then
    return fail("certificate", "aad.client_certificate: %s", tostring(cerr and cerr.message or cerr))
  end
  -- sign a probe and check it against the certificate, so a wrong or mismatched key fails here, not at
  -- the first token request
  local probe = "lufa.aad key check"
  local sig, serr = crypto.sign_rs256(key, probe)
  if not sig then return fail(serr.code or "key", "aad.client_certificate: the private key is unusable: %s", serr.message) end
  if not crypto.verify_rs256(cert_pem, probe, sig) then
    return fail("key_mismatch", "aad.client_certificate: the private key does not belong to the certificate (%s)", cert.subject or "?")
  end
  return { key = key, der = cert.der, sha1 = cert.sha1, sha256 = cert.sha256, not_after = cert.not_after,
    subject = cert.subject }
end

--- Builds and signs a client assertion for one token request.
-- @tparam table material from `load`
-- @tparam table opts `client_id`, `audience` (the token endpoint posted to), `use_sha256_thumbprint`,
--   `send_x5c`, `now` (Unix seconds)
-- @return the compact JWT as a secret, or nil, err
function assertion.sign(material, opts)
  local header = { alg = "RS256", typ = "JWT" }
  if opts.use_sha256_thumbprint then
    header["x5t#S256"] = crypto.base64url_encode(material.sha256)
  else
    header.x5t = crypto.base64url_encode(material.sha1)
  end
  if opts.send_x5c then header.x5c = { crypto.base64_encode(material.der) } end
  local now = opts.now or os.time()
  local jti, uerr = crypto.uuid4()
  if not jti then return nil, uerr end
  local claims = {
    aud = opts.audience, iss = opts.client_id, sub = opts.client_id, jti = jti,
    nbf = now, iat = now, exp = now + assertion.LIFETIME,
  }
  local input = crypto.base64url_encode(json.encode(header)) .. "." .. crypto.base64url_encode(json.encode(claims))
  local sig, serr = crypto.sign_rs256(material.key, input)
  if not sig then return fail(serr.code or "sign", "aad.client_certificate: signing the assertion failed: %s", serr.message) end
  return secret(input .. "." .. crypto.base64url_encode(sig))
end

return assertion
