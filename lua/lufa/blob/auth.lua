--- lufa.blob.auth: Shared Key request signing and shared access signatures for Azure Blob Storage.
-- Pure functions (no I/O), so the worked examples of the protocol notes can check them byte for byte.
-- Keys are secrets holding the raw (base64-decoded) account key; signatures are returned inside secrets.
local crypto = require "lufa.crypto"
local secret = require "lufa.secret"
local core_http = require "lufa.core.http"

local auth = {}

--- The service version lufa speaks (accepted by Azure and by the pinned emulator).
auth.VERSION = "2025-11-05"

local DAYS = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }

--- RFC 1123 date for `x-ms-date` (built by hand: strftime's names follow the locale).
-- @tparam[opt] integer t epoch seconds (default: now)
function auth.http_date(t)
  local d = os.date("!*t", t or os.time())
  return ("%s, %02d %s %04d %02d:%02d:%02d GMT"):format(DAYS[d.wday], d.day, MONTHS[d.month], d.year, d.hour,
    d.min, d.sec)
end

--- ISO-8601 UTC time as SAS fields want it (`2026-01-01T00:00:00Z`).
function auth.iso_time(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

--- Percent-encodes a query value: everything outside `A-Z a-z 0-9 - . _ ~`.
auth.encode_query = core_http.urlencode

--- Percent-encodes a path (a container or blob name), keeping `/` between segments.
function auth.encode_path(path)
  return (path:gsub("[^%w%-%._~/]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- The 12 standard headers of the Shared Key string-to-sign, in order (Encoding before Language).
local STANDARD = { "content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
  "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range" }

--- The Shared Key string-to-sign of a request.
-- @tparam string method HTTP verb
-- @tparam string account account name
-- @tparam string path the URL path exactly as sent (percent-encoded), starting with "/"
-- @tparam table query list of `{name, value}` pairs, values not encoded
-- @tparam table headers name → value (names in any case; values as sent)
-- @treturn string
function auth.shared_key_string(method, account, path, query, headers)
  local lower = {}
  for name, value in pairs(headers) do lower[name:lower()] = tostring(value) end
  local lines = { method:upper() }
  for _, name in ipairs(STANDARD) do
    local v = lower[name] or ""
    if name == "content-length" and v == "0" then v = "" end  -- versions >= 2015-02-21: empty when 0
    lines[#lines + 1] = v
  end
  local ms = {}
  for name in pairs(lower) do
    if name:sub(1, 5) == "x-ms-" then ms[#ms + 1] = name end
  end
  table.sort(ms)
  local parts = { table.concat(lines, "\n"), "\n" }
  for _, name in ipairs(ms) do
    parts[#parts + 1] = name .. ":" .. lower[name]:gsub("^%s+", ""):gsub("%s+$", "") .. "\n"
  end
  parts[#parts + 1] = "/" .. account .. path
  -- query parameters by lower-cased name; values decoded; repeated names joined (lufa never repeats one)
  local byname, names = {}, {}
  for _, pair in ipairs(query or {}) do
    local n = pair[1]:lower()
    if not byname[n] then
      byname[n] = {}
      names[#names + 1] = n
    end
    table.insert(byname[n], pair[2])
  end
  table.sort(names)
  for _, n in ipairs(names) do
    table.sort(byname[n])
    parts[#parts + 1] = "\n" .. n .. ":" .. table.concat(byname[n], ",")
  end
  return table.concat(parts)
end

--- The Authorization header value for a string-to-sign.
-- @tparam secret key raw account key bytes
-- @treturn secret `SharedKey account:signature`
function auth.shared_key(key, account, string_to_sign)
  local sig = crypto.base64_encode(crypto.hmac_sha256(key, string_to_sign))
  return secret("SharedKey " .. account .. ":") .. secret(sig)
end

-- SAS permission letters in the order the service and the SDKs emit them.
auth.BLOB_PERMISSIONS = "racwdxtme"
auth.CONTAINER_PERMISSIONS = "racwdxlt"
auth.ACCOUNT_PERMISSIONS = "rwdxftlacup"

--- Puts permission letters into canonical order. Raises on a letter the resource type does not know.
function auth.permissions(letters, allowed, what)
  if type(letters) ~= "string" or letters == "" then
    error(("bad SAS permissions (a non-empty string of letters from '%s' expected)"):format(allowed), 3)
  end
  for c in letters:gmatch(".") do
    if not allowed:find(c, 1, true) then
      error(("bad SAS permission '%s' for a %s (expected letters from '%s')"):format(c, what, allowed), 3)
    end
  end
  local out = {}
  for c in allowed:gmatch(".") do
    if letters:find(c, 1, true) then out[#out + 1] = c end
  end
  return table.concat(out)
end

-- A SAS time: seconds from now (number) or an ISO-8601 UTC string used exactly as given.
local function sas_time(v, name, now)
  if v == nil then return nil end
  if type(v) == "number" then return auth.iso_time(math.floor(now + v)) end
  if type(v) == "string" and (v:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$") or v:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%dZ$")
      or v:match("^%d%d%d%d%-%d%d%-%d%d$") or v:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$")) then
    return v
  end
  error(("bad SAS %s (seconds from now, or an ISO-8601 UTC time such as 2030-01-01T00:00:00Z expected)"):format(name), 4)
end

local function sas_protocol(p)
  if p == nil then return nil end
  if p == "https" or p == "https,http" then return p end
  if p == "http,https" or p == "http" then return "https,http" end
  error("bad SAS protocol ('https' or 'https,http' expected)", 4)
end

local function sas_ip(ip)
  if ip == nil then return nil end
  local ipv4 = "%d+%.%d+%.%d+%.%d+"
  if type(ip) == "string" and (ip:match("^" .. ipv4 .. "$") or ip:match("^" .. ipv4 .. "%-" .. ipv4 .. "$")) then return ip end
  error("bad SAS ip ('a.b.c.d' or 'a.b.c.d-e.f.g.h' expected)", 4)
end

-- Joins query pairs (values percent-encoded) into a token; the signature goes last.
local function token(pairs_, sig)
  local parts = {}
  for _, p in ipairs(pairs_) do
    if p[2] ~= nil and p[2] ~= "" then parts[#parts + 1] = p[1] .. "=" .. auth.encode_query(p[2]) end
  end
  return secret(table.concat(parts, "&") .. "&sig=") .. auth.encode_query(secret(sig))
end

--- A service SAS for a blob (`blob` given) or a container.
-- @tparam table o `key` (secret, raw bytes), `account`, `container`, `blob`, `permissions`, `expiry`, `start`,
--   `protocol`, `ip`, `identifier`, `version`, `cache_control`, `content_disposition`, `content_encoding`,
--   `content_language`, `content_type`, `now` (epoch seconds, for relative times)
-- @treturn secret the query token (no leading "?")
-- @treturn string the string-to-sign (no secret in it)
function auth.service_sas(o)
  local now = o.now or os.time()
  local is_blob = o.blob ~= nil
  local sp = o.permissions and auth.permissions(o.permissions, is_blob and auth.BLOB_PERMISSIONS or
    auth.CONTAINER_PERMISSIONS, is_blob and "blob" or "container")
  local se = sas_time(o.expiry, "expiry", now)
  if not se and not o.identifier then error("bad SAS: an expiry is required (or a stored policy identifier)", 3) end
  if not sp and not o.identifier then error("bad SAS: permissions are required (or a stored policy identifier)", 3) end
  local st = sas_time(o.start, "start", now)
  local spr, sip = sas_protocol(o.protocol), sas_ip(o.ip)
  local sv = o.version or auth.VERSION
  local sr = is_blob and "b" or "c"
  local resource = "/blob/" .. o.account .. "/" .. o.container .. (is_blob and "/" .. o.blob or "")
  local fields = { sp or "", st or "", se or "", resource, o.identifier or "", sip or "", spr or "", sv, sr,
    "" --[[snapshot time]], "" --[[encryption scope]], o.cache_control or "", o.content_disposition or "",
    o.content_encoding or "", o.content_language or "", o.content_type or "" }
  local string_to_sign = table.concat(fields, "\n")
  local sig = crypto.base64_encode(crypto.hmac_sha256(o.key, string_to_sign))
  return token({ { "sv", sv }, { "st", st }, { "se", se }, { "sr", sr }, { "sp", sp }, { "sip", sip },
    { "spr", spr }, { "si", o.identifier }, { "rscc", o.cache_control }, { "rscd", o.content_disposition },
    { "rsce", o.content_encoding }, { "rscl", o.content_language }, { "rsct", o.content_type } }, sig),
    string_to_sign
end

--- An account SAS (blob service).
-- @tparam table o `key`, `account`, `permissions` (letters of "rwdxftlacup"), `resource_types` (of "sco",
--   default "sco"), `services` (default "b"), `expiry`, `start`, `protocol`, `ip`, `version`, `now`
-- @treturn secret token
-- @treturn string the string-to-sign
function auth.account_sas(o)
  local now = o.now or os.time()
  local sp = auth.permissions(o.permissions, auth.ACCOUNT_PERMISSIONS, "account")
  local se = sas_time(o.expiry, "expiry", now)
  if not se then error("bad SAS: an expiry is required", 3) end
  local st = sas_time(o.start, "start", now)
  local spr, sip = sas_protocol(o.protocol), sas_ip(o.ip)
  local ss = o.services or "b"
  local srt = o.resource_types or "sco"
  if not ss:match("^[bqtf]+$") then error("bad SAS services (letters of 'bqtf' expected)", 3) end
  if not srt:match("^[sco]+$") then error("bad SAS resource_types (letters of 'sco' expected)", 3) end
  local sv = o.version or auth.VERSION
  local string_to_sign = table.concat({ o.account, sp, ss, srt, st or "", se, sip or "", spr or "", sv, "", "" }, "\n")
  local sig = crypto.base64_encode(crypto.hmac_sha256(o.key, string_to_sign))
  return token({ { "sv", sv }, { "ss", ss }, { "srt", srt }, { "sp", sp }, { "st", st }, { "se", se },
    { "sip", sip }, { "spr", spr } }, sig), string_to_sign
end

return auth
