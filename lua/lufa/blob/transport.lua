--- lufa.blob.transport: one Blob Storage operation over lufa.http: URL, signing, retries, errors.
-- Every attempt is signed afresh (new x-ms-date, fresh bearer token). Errors are `lufa.error` tables of kind
-- "blob" carrying the service's code, HTTP status and request id; no key, signature or token ever reaches one.
local http = require "lufa.http"
local lufa = require "lufa"
local E = require "lufa.error"
local secret = require "lufa.secret"
local auth = require "lufa.blob.auth"

local transport = {}

-- Statuses and service codes worth another attempt (protocol notes §10).
local RETRY_STATUS = { [408] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }
local RETRY_CODES = { ServerBusy = true, OperationTimedOut = true, InternalError = true }
-- Transport failures that another attempt cannot fix.
local FINAL_TRANSPORT = { url = true, file = true, cancelled = true, too_large = true }

--- Removes anything secret-looking from a message: SAS signatures and Authorization values.
function transport.scrub(text)
  text = tostring(text or "")
  text = text:gsub("([?&][Ss][Ii][Gg]=)[^&%s\"']*", "%1<redacted>")
  text = text:gsub("(SharedKey%s+[%w-]+:)[%w+/=]+", "%1<redacted>")
  text = text:gsub("(Bearer%s+)[%w%-%._~+/=]+", "%1<redacted>")
  return text
end

--- The service's code and message from an XML error body (best effort; HEAD errors have no body).
function transport.parse_error_body(body)
  if type(body) ~= "string" or body == "" then return nil end
  local ok, xml = pcall(require, "lufa.core.xml")
  if not ok then return nil end
  local root = xml.parse(body)
  if not root or root.tag ~= "Error" then return nil end
  local code, message
  for _, el in ipairs(root) do
    if el.tag == "Code" then code = el.text
    elseif el.tag == "Message" then message = el.text end
  end
  return code, message and message:match("^[^\r\n]*")
end

-- A short name of the target for messages: "container/blob".
local function target(req)
  if req.blob then return (req.container or "") .. "/" .. req.blob end
  if req.container then return req.container end
  return "account"
end

local function service_error(req, res)
  local body_code, body_message = transport.parse_error_body(res.body)
  local code = res.headers["x-ms-error-code"] or body_code or ("HTTP" .. res.status)
  local request_id = res.headers["x-ms-request-id"]
  local msg = ("%s %s: %s (HTTP %d)"):format(req.op, target(req), code, res.status)
  if body_message and body_message ~= "" then msg = msg .. ": " .. transport.scrub(body_message) end
  if request_id then msg = msg .. " [request id " .. request_id .. "]" end
  return E.new{ kind = "blob", code = code, message = msg, status = res.status, request_id = request_id,
    operation = req.op, container = req.container, blob = req.blob }
end

local function transport_error(req, err)
  return E.new{ kind = "blob", code = err.code or "transport",
    message = ("%s %s: %s"):format(req.op, target(req), transport.scrub(err.message)),
    operation = req.op, container = req.container, blob = req.blob }
end

--- The URL path of a resource, percent-encoded, as sent.
function transport.path(client, container, blob)
  local p = client.base_path
  if container then p = p .. "/" .. auth.encode_path(container) end
  if blob then p = p .. "/" .. auth.encode_path(blob) end
  if p == "" then p = "/" end
  return p
end

-- Builds the URL and the signed headers of one attempt. Returns url, headers or nil, err.
local function prepare(client, req)
  local path = transport.path(client, req.container, req.blob)
  local parts = {}
  for _, q in ipairs(req.query or {}) do parts[#parts + 1] = q[1] .. "=" .. auth.encode_query(q[2]) end
  if client.sas_token then parts[#parts + 1] = secret.expose(client.sas_token) end
  local url = client.origin .. path .. (#parts > 0 and "?" .. table.concat(parts, "&") or "")
  local headers = { ["x-ms-version"] = client.version, ["x-ms-date"] = auth.http_date() }
  for k, v in pairs(req.headers or {}) do headers[k] = v end
  if client.request_id then headers["x-ms-client-request-id"] = client.request_id() end
  if client.key then
    local signed = {}
    for k, v in pairs(headers) do signed[k] = v end
    local length = req.body and #req.body or req.body_length
    if length then signed["Content-Length"] = tostring(length) end
    local sts = auth.shared_key_string(req.method, client.account, path, req.query, signed)
    headers.Authorization = auth.shared_key(client.key, client.account, sts)
  elseif client.credential then
    local value, err = client.credential:authorization(client.resource)
    if not value then
      return nil, E.new{ kind = "blob", code = "auth", cause = err,
        message = ("%s %s: cannot get a token: %s"):format(req.op, target(req), transport.scrub(tostring(err))) }
    end
    headers.Authorization = value
  end
  return url, headers
end

--- Sends one operation, retrying transient failures when the operation is idempotent.
-- @tparam table client the blob client (endpoint parts, credentials, policy)
-- @tparam table req `op` (name for messages), `method`, `container`, `blob`, `query` (list of {name, value}),
--   `headers`, `body` | `body_file` + `body_offset` + `body_length`, `output_file` + `output_offset`,
--   `ok` (set of success statuses), `idempotent` (default true), `check` (function(res) → true or nil, err,
--   to reject a response that looks fine but is not, e.g. a short read; such failures are retried)
-- @return the response, or nil, err
function transport.send(client, req)
  local policy = client.retry
  local attempts = req.idempotent == false and 1 or policy.attempts
  local last_err
  for attempt = 1, attempts do
    local url, headers = prepare(client, req)
    if not url then return nil, headers end
    local res, err = http.request{ method = req.method, url = url, headers = headers, body = req.body,
      body_file = req.body_file, body_offset = req.body_offset, body_length = req.body_length,
      output_file = req.output_file, output_offset = req.output_offset, ca_file = client.ca_file,
      tls_verify = client.tls_verify, connect_timeout = client.connect_timeout,
      low_speed_time = client.stall_timeout, timeout = req.timeout, progress = req.progress }
    local retryable
    if res then
      if req.ok[res.status] then
        local good, why = true, nil
        if req.check then good, why = req.check(res) end
        if good then return res end
        last_err = E.new{ kind = "blob", code = why.code, operation = req.op, container = req.container,
          blob = req.blob, status = res.status, request_id = res.headers["x-ms-request-id"],
          message = ("%s %s: %s"):format(req.op, target(req), why.message) }
        retryable = true
      elseif attempt > 1 and res.status == 404 and req.gone_ok then
        return res  -- a delete whose first answer was lost
      else
        last_err = service_error(req, res)
        retryable = RETRY_STATUS[res.status] or RETRY_CODES[last_err.code]
      end
    else
      last_err = transport_error(req, err)
      retryable = not FINAL_TRANSPORT[err.code]
    end
    if not retryable or attempt == attempts then break end
    local delay = math.min(policy.max_delay, policy.base_delay * 2 ^ (attempt - 1))
    delay = delay / 2 + math.random() * delay / 2
    local hinted = res and http.retry_after(res.headers["retry-after"])
    if hinted then delay = math.min(hinted, policy.max_delay) end
    lufa.sleep(delay)
  end
  return nil, last_err
end

return transport
