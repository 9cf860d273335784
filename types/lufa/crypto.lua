---@meta lufa.crypto
--- The primitives Azure signing needs (host/crypto.c, OpenSSL 3): digests, HMAC-SHA256, base64 and
--- base64url, secure random bytes and GUIDs, RS256 signatures, certificate thumbprints. Digests, MACs and
--- signatures are raw bytes; `hex` and the base64 functions give text. Every byte argument may be a
--- `lufa.secret`, and a transform of a secret (hex, base64 in either direction) is a secret again.
--- Misuse (a wrong type, a negative count, a finished hash) raises; bad data gives `nil, err` with `err` a
--- `lufa.error` of kind "crypto" and a stable code. See docs/api/crypto.md.
---
--- Example:
--- ```lua
--- local crypto = require "lufa.crypto"
--- print(crypto.hex(crypto.sha256("abc")))
--- print(crypto.base64_encode("foobar"), crypto.base64url_encode("\xfb\xff"))
--- local bytes, err = crypto.base64_decode("Zm9v!mFy")
--- print(bytes, err.code, err.position)
--- ```
--- ```text output
--- ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
--- Zm9vYmFy	-_8
--- nil	base64	5
--- ```

---@class lufa.crypto
local crypto = {}

--- SHA-256 digest.
---@nodiscard
---@param data string|lufa.secret
---@return string digest 32 raw bytes
function crypto.sha256(data) end

--- SHA-1 digest, for certificate thumbprints only.
---@nodiscard
---@param data string|lufa.secret
---@return string digest 20 raw bytes
function crypto.sha1(data) end

--- MD5 digest, for Content-MD5 only.
---@nodiscard
---@param data string|lufa.secret
---@return string digest 16 raw bytes
function crypto.md5(data) end

--- HMAC-SHA256 (RFC 2104 / RFC 4231); `key` is any length.
---@nodiscard
---@param key string|lufa.secret
---@param data string|lufa.secret
---@return string mac 32 raw bytes
function crypto.hmac_sha256(key, data) end

--- Lowercase hexadecimal, two characters per byte; a secret gives a secret.
---@nodiscard
---@param bytes string|lufa.secret
---@return string|lufa.secret hex
function crypto.hex(bytes) end

--- Standard base64 (`+`, `/`) with `=` padding; a secret gives a secret.
---@nodiscard
---@param bytes string|lufa.secret
---@return string|lufa.secret text
function crypto.base64_encode(bytes) end

--- Strict standard base64: padding required, no whitespace, unused bits zero.
--- Errors: `nil, err` with code "base64" and `err.position`, the 1-based position of the fault.
---@nodiscard
---@param text string|lufa.secret
---@return string|lufa.secret|nil bytes a secret when `text` is one
---@return lufa.error? err
function crypto.base64_decode(text) end

--- base64url (`-`, `_`) without padding, the JWT form; a secret gives a secret.
---@nodiscard
---@param bytes string|lufa.secret
---@return string|lufa.secret text
function crypto.base64url_encode(bytes) end

--- base64url; padding optional but complete when present; otherwise as strict as `base64_decode`.
--- Errors: `nil, err` with code "base64" and `err.position`.
---@nodiscard
---@param text string|lufa.secret
---@return string|lufa.secret|nil bytes
---@return lufa.error? err
function crypto.base64url_decode(text) end

--- `n` cryptographically secure random bytes (OpenSSL RAND_bytes); 0 ≤ n ≤ 2^31 − 1.
--- Errors: raises on a bad `n`; `nil, err` (code "random") when the generator fails.
---@nodiscard
---@param n integer
---@return string|nil bytes
---@return lufa.error? err
function crypto.random_bytes(n) end

--- A random version-4 GUID in lowercase, e.g. "0f8fad5b-d9cb-469f-a165-70867728950e".
--- Errors: `nil, err` (code "random") when the generator fails.
---@nodiscard
---@return string|nil uuid
---@return lufa.error? err
function crypto.uuid4() end

--- RSASSA-PKCS1-v1_5 over SHA-256 (JWT RS256) with an unencrypted PEM RSA key (PKCS#8 or PKCS#1; other
--- PEM blocks are skipped). Deterministic.
--- Errors: `nil, err` with code "key" (no key), "key_encrypted", "key_type" (not RSA) or "sign".
---@nodiscard
---@param pem_private_key string|lufa.secret
---@param data string|lufa.secret
---@return string|nil signature raw bytes, as many as the key's modulus
---@return lufa.error? err
function crypto.sign_rs256(pem_private_key, data) end

--- Checks an RS256 signature against a PUBLIC KEY block or the first CERTIFICATE block.
--- Errors: `nil, err` with code "key" or "key_type" for an unusable key.
---@nodiscard
---@param pem_public_key_or_certificate string
---@param data string|lufa.secret
---@param signature string raw bytes
---@return boolean|nil valid false for a wrong signature, including a wrong length
---@return lufa.error? err
function crypto.verify_rs256(pem_public_key_or_certificate, data, signature) end

---@class lufa.crypto.Thumbprints
---@field sha1 string 20 raw bytes (base64url it for the JWT header x5t)
---@field sha256 string 32 raw bytes (x5t#S256)

---@class lufa.crypto.Certificate: lufa.crypto.Thumbprints
---@field der string the DER bytes
---@field subject string the subject name in RFC 2253 form, e.g. "O=Example,CN=app"
---@field issuer string the issuer name in RFC 2253 form
---@field not_before integer start of validity, Unix seconds (UTC)
---@field not_after integer end of validity, Unix seconds (UTC)

--- The SHA-1 and SHA-256 digests of the first certificate's DER encoding.
--- Errors: `nil, err` with code "certificate" when there is no well-formed certificate.
---@nodiscard
---@param pem_certificate string
---@return lufa.crypto.Thumbprints|nil thumbprints
---@return lufa.error? err
function crypto.certificate_thumbprints(pem_certificate) end

--- The first certificate of a PEM text, read.
--- Errors: `nil, err` with code "certificate".
---@nodiscard
---@param pem string
---@return lufa.crypto.Certificate|nil certificate
---@return lufa.error? err
function crypto.load_certificate(pem) end

--- A streaming MD5 hash object, for data that arrives in pieces.
---@nodiscard
---@return lufa.crypto.hash hash
function crypto.md5_new() end

--- A streaming SHA-256 hash object.
---@nodiscard
---@return lufa.crypto.hash hash
function crypto.sha256_new() end

--- The MD5 digest of a file or of the byte range [offset, offset + length), read in 32 KiB pieces.
--- Errors: raises on a negative offset or length; `nil, err` (code "io", `err.file`) for a file that cannot be
--- read or a range that does not fit.
---@nodiscard
---@param path string
---@param offset? integer default 0
---@param length? integer default: to the end; when given, the file must hold all of it
---@return string|nil digest 16 raw bytes
---@return lufa.error? err
function crypto.md5_file(path, offset, length) end

--- The SHA-256 digest of a file or byte range; as `md5_file`.
--- Errors: as `md5_file`.
---@nodiscard
---@param path string
---@param offset? integer
---@param length? integer
---@return string|nil digest 32 raw bytes
---@return lufa.error? err
function crypto.sha256_file(path, offset, length) end

--- A hasher that reads and hashes file regions on a worker thread while the loop keeps running.
---@nodiscard
---@param algorithm? "md5"|"sha256" default "md5"
---@return lufa.crypto.file_hasher hasher
function crypto.file_hasher(algorithm) end

--- A streaming hash (`crypto.md5_new`, `crypto.sha256_new`); also closed by `<close>` and the collector.
---@class lufa.crypto.hash
local hash = {}

--- Feeds data.
--- Errors: raises on a finished or closed hash.
---@param data string|lufa.secret
---@return lufa.crypto.hash self so calls chain
function hash:update(data) end

--- The raw digest; afterwards only `close` is allowed.
--- Errors: raises on a finished or closed hash.
---@nodiscard
---@return string digest
function hash:final() end

--- Frees the state; idempotent.
function hash:close() end

--- A worker-thread file hasher (`crypto.file_hasher`).
---@class lufa.crypto.file_hasher
local file_hasher = {}

--- Queues a region; regions are hashed in the order fed.
--- Errors: raises after `finish`.
---@param path string
---@param offset integer
---@param length integer
function file_hasher:feed(path, offset, length) end

--- Waits until everything fed is hashed.
--- Errors: `nil, err` (code "io", naming the file) for an unreadable file or a region past its end.
---@async
---@return string|nil digest raw bytes
---@return lufa.error? err
function file_hasher:finish() end

--- Stops the worker and frees the hasher; idempotent (also `__gc` and `<close>`).
function file_hasher:close() end

return crypto
