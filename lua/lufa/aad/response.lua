--- lufa.aad.response: turns token-endpoint answers into tokens or lufa.error values of kind "aad".
-- Bodies are never quoted in messages: a success body holds the token, and an error body is reduced to
-- the fields Azure AD documents (error, AADSTS code, description, trace and correlation ids).
local json = require "lufa.json"
local secret = require "lufa.secret"
local E = require "lufa.error"

local response = {}

-- A JSON number or a numeric string (v1 and managed identity send strings, v2 numbers).
local function number_of(v)
  if math.type(v) then return v end
  if type(v) == "string" then return tonumber(v:match("^%s*(%-?%d+%.?%d*)%s*$")) end
  return nil
end

local MONTHS_DAYS = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 }

-- The legacy App Service form "09/14/2017 00:00:00 PM +00:00" (month/day/year, 12-hour clock, offset).
local function legacy_date(v)
  if type(v) ~= "string" then return nil end
  local mo, d, y, h, mi, s, ampm, sign, oh, om =
    v:match("^%s*(%d+)/(%d+)/(%d+)%s+(%d+):(%d+):(%d+)%s*([AaPp]?[Mm]?)%s*([+-]?)(%d*):?(%d*)")
  if not mo then return nil end
  mo, d, y, h = tonumber(mo), tonumber(d), tonumber(y), tonumber(h)
  if mo < 1 or mo > 12 then return nil end
  ampm = ampm:upper()
  if ampm == "PM" and h < 12 then h = h + 12 elseif ampm == "AM" and h == 12 then h = 0 end
  local leap = (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
  local days = (y - 1970) * 365 + (y - 1969) // 4 - (y - 1901) // 100 + (y - 1601) // 400
    + MONTHS_DAYS[mo] + (leap and mo > 2 and 1 or 0) + d - 1
  local offset = ((tonumber(oh) or 0) * 3600 + (tonumber(om) or 0) * 60) * (sign == "-" and -1 or 1)
  return days * 86400 + h * 3600 + tonumber(mi) * 60 + tonumber(s) - offset
end

--- Replaces every occurrence of the given secrets' bytes in text by "<redacted>" (a service that echoes
-- what it was sent must not leak it through an error).
-- @tparam string text
-- @tparam table secrets list of lufa.secret or strings
function response.scrub(text, secrets)
  if type(text) ~= "string" or not secrets then return text end
  for _, s in ipairs(secrets) do
    local bytes = secret.is(s) and secret.expose(s) or s
    if type(bytes) == "string" and #bytes >= 4 then
      local out, from = {}, 1
      while true do
        local i, j = text:find(bytes, from, true)
        if not i then break end
        out[#out + 1] = text:sub(from, i - 1) .. "<redacted>"
        from = j + 1
      end
      if #out > 0 then text = table.concat(out) .. text:sub(from) end
    end
  end
  return text
end

local function context_prefix(ctx)
  return string.format("%s: token request for '%s'", ctx.source, ctx.target)
end

--- Parses a 2xx token response.
-- @tparam table res the lufa.http response
-- @tparam table ctx `{source=, target=, url=}` for messages
-- @tparam integer now_epoch Unix seconds at receipt
-- @return `{token = secret, expires_in =, expires_on =, refresh_in =}`, or nil, err (`code` "bad_response")
function response.parse_token(res, ctx, now_epoch)
  local function bad(what)
    return nil, E.new{
      kind = "aad", code = "bad_response", status = res.status, source = ctx.source, url = ctx.url,
      message = string.format("%s: the answer from %s (HTTP %d) %s", context_prefix(ctx), ctx.url, res.status, what),
    }
  end
  local body = json.decode(res.body or "")
  if type(body) ~= "table" then return bad("is not a JSON object") end
  local access = body.access_token
  if type(access) ~= "string" or access == "" then return bad("has no access_token") end
  if type(body.token_type) == "string" and body.token_type:lower() ~= "bearer" then
    return bad("has token_type '" .. body.token_type .. "', expected Bearer")
  end
  local expires_in = number_of(body.expires_in)
  local expires_on = number_of(body.expires_on) or legacy_date(body.expires_on)
  -- receipt time + expires_in is the rule; expires_on only stands in when expires_in is missing (App Service)
  if not expires_in and expires_on then expires_in = expires_on - now_epoch end
  if not expires_in then return bad("has neither expires_in nor expires_on") end
  expires_in = math.floor(expires_in)
  return {
    token = secret(access),
    expires_in = expires_in,
    expires_on = now_epoch + expires_in,
    refresh_in = number_of(body.refresh_in),
  }
end

-- Removes the "Trace ID: …", "Correlation ID: …" and "Timestamp: …" lines Azure AD appends.
local function split_description(desc)
  local trace = desc:match("Trace ID:%s*([%w%-]+)")
  local corr = desc:match("Correlation ID:%s*([%w%-]+)")
  local lines = {}
  for line in (desc .. "\n"):gmatch("([^\r\n]*)\r?\n") do
    if line ~= "" and not line:find("^Trace ID:") and not line:find("^Correlation ID:")
        and not line:find("^Timestamp:") then
      lines[#lines + 1] = line
    end
  end
  return table.concat(lines, " "), trace, corr
end

--- Builds the lufa.error for a non-2xx token response.
-- Azure AD: `{error, error_description, error_codes, trace_id, correlation_id}`; IMDS: `{error,
-- error_description}`; App Service: `{statusCode, message, correlationId}`.
-- @tparam table res the lufa.http response
-- @tparam table ctx `{source=, target=, url=, secrets=}`
-- @return err with kind "aad", code (AADSTS code, else the OAuth error, else "http_<status>"), error,
--   description, correlation_id, trace_id, status
function response.error(res, ctx)
  local body = json.decode(res.body or "")
  if type(body) ~= "table" then body = {} end
  local oauth_error = type(body.error) == "string" and body.error or nil
  local desc = body.error_description or body.message
  if type(desc) ~= "string" then desc = nil end
  desc = response.scrub(desc, ctx.secrets)
  local description, trace, corr
  if desc then description, trace, corr = split_description(desc) end
  trace = type(body.trace_id) == "string" and body.trace_id or trace
  corr = type(body.correlation_id) == "string" and body.correlation_id
    or type(body.correlationId) == "string" and body.correlationId or corr
  local code
  if type(body.error_codes) == "table" and math.type(body.error_codes[1]) then
    code = "AADSTS" .. body.error_codes[1]
  elseif description and description:match("AADSTS%d+") then
    code = description:match("AADSTS%d+")
  else
    code = oauth_error or ("http_" .. res.status)
  end
  local parts = { context_prefix(ctx), " failed: ", description or oauth_error or "no error description",
    " (HTTP ", tostring(res.status) }
  if oauth_error and description then parts[#parts + 1] = ", " .. oauth_error end
  if corr then parts[#parts + 1] = ", correlation id " .. corr end
  parts[#parts + 1] = ")"
  return E.new{
    kind = "aad", code = code, error = oauth_error, description = description, correlation_id = corr,
    trace_id = trace, status = res.status, source = ctx.source, url = ctx.url,
    message = table.concat(parts),
  }
end

--- Wraps a transport failure (connect, timeout, TLS, …) from lufa.http.
-- @tparam table herr the lufa.http error
-- @tparam table ctx `{source=, target=, url=}`
function response.transport_error(herr, ctx)
  return E.new{
    kind = "aad", code = herr.code or "transport", source = ctx.source, url = ctx.url, cause = herr,
    message = string.format("%s failed: %s", context_prefix(ctx),
      response.scrub(tostring(herr.message or herr), ctx.secrets)),
  }
end

response.number_of = number_of
response.legacy_date = legacy_date

return response
