--- lufa.http: HTTP(S) requests for Lua code, over the native lufa.core.http.
--- `request` waits without blocking other tasks; `request_with_retry` adds backoff for transient failures.
--- Users may override this module deliberately (LUA_PATH, LUFA_PATH: docs/extending.md), not from the
--- working directory. Every status is a response
--- (404 and 503 included); what goes wrong at run time returns `nil, err` with `err` a `lufa.error` of kind
--- "http" and code "timeout", "connect", "dns", "tls", "reset", "url", "file", "too_large", "redirect" or
--- "transfer". Misuse (a non-table `opts`, a missing `url`, an unknown option) raises. See docs/api/http.md.
---
--- Example:
--- ```lua
--- local http = require "lufa.http"
--- print(http.urlencode("a b/c"), http.retry_after("120"))
--- local res, err = http.request { url = "http://127.0.0.1:1/", connect_timeout = 5, no_proxy = true }
--- print(res, err.kind, err.code)
--- ```
--- ```text output
--- a%20b%2Fc	120
--- nil	http	connect
--- ```
local core = require "lufa.core.http"
local lufa = require "lufa"
local options = require "lufa.options"
local log = require "lufa.log"

-- What the native layer reads (host/http.c); anything else is a misspelling.
local REQUEST_OPTIONS = { "method", "url", "headers", "body", "body_file", "body_offset", "body_length",
  "output_file", "output_offset", "timeout", "connect_timeout", "low_speed_time", "ca_file", "tls_verify",
  "follow_redirects", "max_body", "no_proxy", "fresh_connection", "body_parts", "meter", "progress" }
local RETRY_OPTIONS = { "attempts", "base_delay", "max_delay", "max_retry_after", "retry_unsafe", "statuses",
  "retry_transport", "on_retry" }

---@class lufa.http.RequestOptions
---@field url? string|lufa.secret required
---@field method? string default "GET", or "POST" when there is a body; sent as given
---@field headers? table<string, string|number|lufa.secret> name to value; no CR/LF in either
---@field body? string|lufa.secret sent as is with its Content-Length
---@field body_file? string a file to upload, streamed from disk
---@field body_offset? integer bytes of `body_file` to skip (default 0)
---@field body_length? integer bytes of `body_file` to send (default: to the end)
---@field output_file? string a 2xx body streams to this file instead of memory
---@field output_offset? integer write `output_file` in place at this offset
---@field timeout? number seconds for the whole request (default: none)
---@field connect_timeout? number seconds to connect (default 30)
---@field low_speed_time? number fail with "timeout" when less than 1 byte/s moves for this long
---@field ca_file? string PEM file of CAs to trust instead of the system's
---@field tls_verify? boolean default true
---@field follow_redirects? boolean default false; true follows up to 10 redirects
---@field max_body? integer largest body kept in memory (default 256 MiB)
---@field no_proxy? boolean connect directly even when a proxy is configured
---@field fresh_connection? boolean send the request on a new connection (never re-sent by libcurl)
---@field body_parts? boolean deliver an in-memory body as a list of 32 KiB strings (`res.body_parts`), one made per loop step, instead of one string
---@field progress? fun(done: integer, total: integer|nil, rate: number) called at most every `http.progress_interval` seconds while the request runs, with the bytes of the upload (or else the download)

---@class lufa.http.Response
---@field status integer the HTTP status
---@field headers table<string, string> names lowercased; lookup ignores case
---@field body? string the body (absent when it went to `output_file`)
---@field file? string with `output_file` and a 2xx status: the path
---@field size? integer with `output_file`: the bytes written
---@field reused boolean the request went over a connection kept from an earlier one
---@field time number seconds the transfer took

---@class lufa.http.RetryPolicy
---@field attempts? integer default 4
---@field base_delay? number seconds (default 0.5)
---@field max_delay? number seconds (default 30)
---@field max_retry_after? number largest Retry-After honoured, seconds (default 300)
---@field retry_unsafe? boolean retry methods that are not idempotent too
---@field statuses? table<integer, boolean> the set of status codes to retry
---@field retry_transport? boolean false: return a transport error at once (default true)
---@field on_retry? fun(attempt: integer, delay: number, res_or_err: lufa.http.Response|lufa.error) called before each wait

---@class lufa.http
---@field defaults lufa.http.RequestOptions options merged into every request unless it sets them itself; `ca_file` defaults to $LUFA_CA_FILE
---@field curl_version string the libcurl version
---@field progress_interval number how often, in seconds, a `progress` function is called at most (default 0.1)
local http = {
  --- Options merged into every request unless it sets them itself.
  --- `ca_file` defaults to $LUFA_CA_FILE, so a private CA (such as the local stand-ins') needs no code.
  defaults = { ca_file = os.getenv("LUFA_CA_FILE") },
  --- Percent-encodes every byte but the RFC 3986 unreserved characters, for query values and path segments.
  ---@param s string
  ---@return string encoded
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

--- Sends one request. Inside a task it suspends only that task; outside tasks it drives the loop.
--- Errors: `nil, err` on transport failure (kind "http"); raises on misuse, on any option it does not know
--- (naming the nearest known one), and the "cancelled" error when the task is cancelled.
---@async
---@param opts lufa.http.RequestOptions
---@return lufa.http.Response|nil res the response, whatever its status
---@return lufa.error? err why there is no response
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
---@nodiscard
---@param value string|nil the header's value
---@param now? integer the current time for an HTTP date (default os.time())
---@return number|nil seconds
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
--- Retries 408/429/500/502/503/504 and transport errors (not "url", "file", "cancelled", "too_large", "tls",
--- "redirect") for
--- idempotent methods; other methods only with `policy.retry_unsafe = true`. Honours Retry-After.
--- `retry_transport = false` returns a transport error at once, for calls whose lost answer the caller
--- resolves by reading the resulting state.
--- Errors: as `request`, for the last attempt.
---@async
---@param opts lufa.http.RequestOptions as for `request`
---@param policy? lufa.http.RetryPolicy
---@return lufa.http.Response|nil res the last response
---@return lufa.error? err
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
