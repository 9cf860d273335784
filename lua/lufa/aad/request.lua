--- lufa.aad.request: sends one token request (with retries for transient failures) and returns the parsed
-- token or a lufa.error of kind "aad".
local http = require "lufa.http"
local clock = require "lufa.aad.clock"
local response = require "lufa.aad.response"

local request = {}

--- Azure AD: 408/429/5xx are transient; every other 4xx is a configuration error and is not retried
-- (a wrong secret stays wrong).
request.AAD_RETRY = { attempts = 4, base_delay = 0.5, max_delay = 30,
  statuses = { [408] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true } }

--- IMDS also answers 404 (updating) and 410 (restarting, back within 70 s); the documented schedule
-- spreads about five tries over a minute; 410 asks for at least 70 s, which seven attempts cover.
request.IMDS_RETRY = { attempts = 7, base_delay = 4, max_delay = 60,
  statuses = { [404] = true, [408] = true, [410] = true, [429] = true, [500] = true, [502] = true,
    [503] = true, [504] = true } }

--- Encodes fields as application/x-www-form-urlencoded; a secret value makes the whole body a secret.
-- @tparam table fields list of `{name, value}` pairs (value a string or lufa.secret)
function request.form(fields)
  local body = ""
  -- Two operands per concatenation: Lua 5.4.4 loses the operands after the first of a longer `..` chain
  -- when a metamethod call in it moves the stack (a secret's concatenation can; docs/api/secret.md)
  for i, f in ipairs(fields) do
    local name = (i > 1 and "&" or "") .. http.urlencode(f[1]) .. "="
    local value = http.urlencode(f[2])
    body = body .. name
    body = body .. value
  end
  return body
end

--- Sends a token request.
-- @tparam table opts lufa.http request options
-- @tparam table ctx `source`, `target`, `url` (for messages), `secrets` (scrubbed from any echo), `retry`
--   (policy overrides), `default_retry`, `before_retry` (called before each new attempt; may change
--   opts.body); `ctx.attempts` counts the attempts made
-- @return parsed token `{token, expires_in, expires_on, refresh_in}`, or nil, err
function request.send(opts, ctx)
  local policy = { retry_unsafe = true }
  for k, v in pairs(ctx.default_retry or request.AAD_RETRY) do policy[k] = v end
  for k, v in pairs(ctx.retry or {}) do policy[k] = v end
  ctx.attempts = 1
  policy.on_retry = function()
    ctx.attempts = ctx.attempts + 1
    if ctx.before_retry then ctx.before_retry() end
  end
  opts.timeout = opts.timeout or 30
  opts.connect_timeout = opts.connect_timeout or 10
  local res, herr = http.request_with_retry(opts, policy)
  local tok, err
  if not res then
    err = response.transport_error(herr, ctx)
  elseif res.status >= 200 and res.status < 300 then
    tok, err = response.parse_token(res, ctx, clock.time())
  else
    err = response.error(res, ctx)
  end
  if err then
    err.attempts = ctx.attempts
    if ctx.attempts > 1 then err.message = err.message .. string.format(" [after %d attempts]", ctx.attempts) end
  end
  return tok, err
end

return request
