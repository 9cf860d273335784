--- lufa.http: HTTP(S) requests for Lua code, over the native lufa.core.http.
-- `request` waits without blocking other tasks; `request_with_retry` adds backoff for transient failures.
-- Users may shadow this module with their own lufa/http.lua on package.path.
local core = require "lufa.core.http"
local lufa = require "lufa"
local options = require "lufa.options"
local log = require "lufa.log"

-- What the native layer reads (host/http.c); anything else is a misspelling.
local REQUEST_OPTIONS = { "method", "url", "headers", "body", "body_file", "body_offset", "body_length",
  "output_file", "output_offset", "timeout", "connect_timeout", "low_speed_time", "ca_file", "tls_verify",
  "follow_redirects", "max_body", "no_proxy", "fresh_connection", "meter", "progress" }
local RETRY_OPTIONS = { "attempts", "base_delay", "max_delay", "max_retry_after", "retry_unsafe", "statuses",
  "retry_transport", "on_retry" }

local http = {
  --- Options merged into every request unless it sets them itself.
  -- `ca_file` defaults to $LUFA_CA_FILE, so a private CA (such as the local stand-ins') needs no code.
  defaults = { ca_file = os.getenv("LUFA_CA_FILE") },
  urlencode = core.urlencode,
  curl_version = core.curl_version,
}

local function with_defaults(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'request' (table expected, got " .. type(opts) .. ")", 3)
  end
  options.check(opts, REQUEST_OPTIONS, "lufa.http.request", 3)
  local merged = nil
  for k, v in pairs(http.defaults) do
    if opts[k] == nil and v ~= nil then
      merged = merged or setmetatable({}, { __index = opts })
      merged[k] = v
    end
  end
  if not merged then return opts end
  -- the native layer reads fields with lua_getfield, which honours __index; copy to be explicit anyway
  local copy = {}
  for k, v in pairs(opts) do copy[k] = v end
  for k, v in pairs(merged) do copy[k] = v end
  return copy
end

--- Sends one request.
-- @tparam table opts method, url, headers, body | body_file (+ body_offset, body_length), output_file
--   (+ output_offset), timeout, connect_timeout, low_speed_time, ca_file, tls_verify, follow_redirects, max_body,
--   no_proxy (connect directly even when a proxy is configured), fresh_connection; any other key is an error
--   that names the nearest known option
-- @return response `{status, headers, body | file + size, reused, time}`, or `nil, err` on transport failure
-- Header values that are credentials whatever their type: never logged.
local SENSITIVE = { authorization = true, ["proxy-authorization"] = true, cookie = true, ["set-cookie"] = true,
  ["api-key"] = true, ["x-api-key"] = true, ["ocp-apim-subscription-key"] = true, ["x-ms-copy-source-authorization"] = true }

local function headers_text(headers)
  local names = {}
  for k in pairs(headers or {}) do names[#names + 1] = tostring(k) end
  table.sort(names)
  local out = {}
  for i, k in ipairs(names) do
    out[i] = string.format("\n    %s: %s", k, SENSITIVE[k:lower()] and "<redacted>" or tostring(headers[k]))
  end
  return table.concat(out)
end

-- How often a `progress` function is called at most while a request runs.
http.progress_interval = 0.1

-- Runs core.request with a meter that a ticker task reads: `fn(done, total, rate)` with the bytes of the
-- upload (when there is one) or else of the download; never from curl's callback, never going backwards.
local function request_with_progress(o, fn)
  local copy = {}
  for k, v in pairs(o) do copy[k] = v end
  copy.progress, copy.meter = nil, core.meter()
  local meter, t0, last, last_total, failure = copy.meter, lufa.now(), -1, nil, nil
  local function report(final)
    local up, up_total, down, down_total = meter:read()
    local sending = up_total > 0 or up > 0
    local done, total = sending and up or down, sending and up_total or down_total
    if total <= 0 then total = final and done or nil end
    if done < last then done = last end
    if done == last and (not final or total == last_total) then return end
    last, last_total = done, total
    local elapsed = lufa.now() - t0
    local ok, err = pcall(fn, done, total, elapsed > 0 and done / elapsed or 0)
    if not ok then failure = failure or err end
  end
  local ticker = lufa.spawn(function()
    while true do
      lufa.sleep(http.progress_interval)
      report(false)
    end
  end)
  local _ <close> = setmetatable({}, { __close = function() ticker:cancel("request ended") end })
  local res, err = core.request(copy)
  if res then report(true) end
  if failure ~= nil then error(failure, 0) end
  return res, err
end

local function send(o)
  if o.progress == nil then return core.request(o) end
  if type(o.progress) ~= "function" then
    error("bad request option 'progress' (function expected, got " .. type(o.progress) .. ")", 3)
  end
  return request_with_progress(o, o.progress)
end

function http.request(opts)
  local o = with_defaults(opts)
  if not log.enabled("debug") then return send(o) end
  -- -vv: each request with its outcome and time; -vvv: the headers both ways too (credentials redacted)
  local method = (o.method or ((o.body or o.body_file) and "POST" or "GET")):upper()
  local url = tostring(o.url)
  if log.enabled("trace") then log.trace("> %s %s%s", method, url, headers_text(o.headers)) end
  local t0 = lufa.now()
  local res, err = send(o)
  local ms = (lufa.now() - t0) * 1000
  if res then
    log.debug("%s %s -> %d in %.1f ms%s", method, url, res.status, ms, res.reused and " (connection reused)" or "")
    if log.enabled("trace") then log.trace("< %d%s", res.status, headers_text(res.headers)) end
  else
    log.debug("%s %s -> %s after %.1f ms: %s", method, url, tostring(err.code), ms, tostring(err.message))
  end
  return res, err
end

local RETRY_STATUS = { [408] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }
-- Transport errors that a retry cannot heal.
local PERMANENT = { url = true, file = true, cancelled = true, too_large = true, tls = true, redirect = true }
local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true, TRACE = true }
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
  Nov = 11, Dec = 12 }

--- Seconds to wait according to a Retry-After value (delta seconds or an HTTP date), or nil.
function http.retry_after(value, now)
  if type(value) ~= "string" then return nil end
  local secs = tonumber(value:match("^%s*(%d+%.?%d*)%s*$"))
  if secs then return secs end
  local d, mon, y, h, m, s = value:match("%a+,%s*(%d+)%s+(%a+)%s+(%d+)%s+(%d+):(%d+):(%d+)%s+GMT")
  if not (d and MONTHS[mon]) then return nil end
  -- days since the epoch for a civil date (proleptic Gregorian), so no time zone is involved
  local yy, mm = tonumber(y), MONTHS[mon]
  if mm <= 2 then yy = yy - 1 end
  local era = yy // 400
  local yoe = yy - era * 400
  local doy = (153 * (mm + (mm > 2 and -3 or 9)) + 2) // 5 + tonumber(d) - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local t = (era * 146097 + doe - 719468) * 86400 + tonumber(h) * 3600 + tonumber(m) * 60 + tonumber(s)
  return math.max(0, t - (now or os.time()))
end

--- Sends a request, retrying transient failures with exponential backoff and jitter.
-- Retries 408/429/500/502/503/504 and transport errors (not "url", "file", "cancelled", "too_large", "tls",
-- "redirect") for
-- idempotent methods; other methods only with `policy.retry_unsafe = true`. Honours Retry-After.
-- @tparam table opts as for `request`
-- @tparam[opt] table policy attempts (4), base_delay (0.5 s), max_delay (30 s), max_retry_after (300 s),
--   retry_unsafe, statuses
--   (a set of status codes), retry_transport (false: a transport error is returned at once, for calls whose
--   lost answer the caller resolves by reading the resulting state), on_retry (function(attempt, delay, res_or_err))
-- @return the last response, or `nil, err`
function http.request_with_retry(opts, policy)
  policy = policy or {}
  options.check(policy, RETRY_OPTIONS, "lufa.http.request_with_retry (policy)", 2)
  local attempts = policy.attempts or 4
  local base, cap = policy.base_delay or 0.5, policy.max_delay or 30
  local statuses = policy.statuses or RETRY_STATUS
  local method = (opts.method or ((opts.body or opts.body_file) and "POST" or "GET")):upper()
  local may_retry = IDEMPOTENT[method] or policy.retry_unsafe
  local res, err
  for attempt = 1, attempts do
    res, err = http.request(opts)
    local retryable
    if res then
      retryable = statuses[res.status]
    else
      retryable = not PERMANENT[err.code] and policy.retry_transport ~= false
    end
    if not (retryable and may_retry) or attempt == attempts then break end
    local delay = math.min(cap, base * 2 ^ (attempt - 1))
    delay = delay / 2 + math.random() * delay / 2  -- "equal jitter": spread, but never collapse to zero
    local hinted = res and http.retry_after(res.headers["retry-after"])
    if hinted then delay = math.min(math.max(hinted, 0), policy.max_retry_after or 300) end
    if policy.on_retry then policy.on_retry(attempt, delay, res or err) end
    lufa.sleep(delay)
  end
  return res, err
end

return http
