--- Requests and responses of `lufa serve`: the target split into path and query, cookies, form bodies, and
-- the response written to the connection. Every response body passes lufa.redact on its way out, so nothing
-- shaped like a credential leaves the server even if a record held one.
-- @module lufa.serve.http
local redact = require "lufa.redact"

local M = {}

local function unescape(s)
  s = s:gsub("%+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
M.unescape = unescape

function M.escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

--- "a=1&b=x+y" → {a = "1", b = "x y"} (the first value of a repeated name wins).
function M.decode_form(s)
  local out = {}
  for pair in (s or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k = unescape(k)
    if k ~= "" and out[k] == nil then out[k] = unescape(v) end
  end
  return out
end

--- {a = "1"} → "a=1", names sorted (stable links).
function M.encode_form(t)
  local keys = {}
  for k, v in pairs(t) do if v ~= nil and v ~= "" then keys[#keys + 1] = k end end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = M.escape(k) .. "=" .. M.escape(t[k]) end
  return table.concat(parts, "&")
end

function M.cookies(header)
  local out = {}
  for pair in (header or ""):gmatch("[^;]+") do
    local k, v = pair:match("^%s*([^=%s]+)%s*=%s*(.-)%s*$")
    if k and out[k] == nil then out[k] = v end
  end
  return out
end

--- Adds `path` and `query` to a request from lufa.server (an absolute-form target keeps only its path).
function M.prepare(req)
  local target = req.target:gsub("^https?://[^/]*", "")
  local path, query = target:match("^([^?#]*)%??([^#]*)")
  req.raw_path = path ~= "" and path or "/"
  req.path = unescape((path or "/"):gsub("%+", "%%2B"))
  req.query = M.decode_form(query)
  req.cookies = M.cookies(req.headers.cookie)
  return req
end

--- Writes `res` = {status =, headers = {name → value}, body =} and closes the connection.
function M.respond(conn, res)
  local body = redact.text(res.body or "")
  local lines = {string.format("HTTP/1.1 %d %s", res.status or 200, M.REASONS[res.status or 200] or "Error")}
  local headers = res.headers or {}
  headers["Content-Length"] = tostring(#body)
  headers["Connection"] = "close"
  headers["Cache-Control"] = headers["Cache-Control"] or "no-store"
  headers["X-Content-Type-Options"] = "nosniff"
  headers["X-Frame-Options"] = "DENY"
  headers["Referrer-Policy"] = "no-referrer"
  local names = {}
  for k in pairs(headers) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    -- a header value never ends the head early, whatever it was built from
    lines[#lines + 1] = k .. ": " .. tostring(headers[k]):gsub("[%c]", "")
  end
  local ok = conn:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. body)
  conn:close()
  return ok
end

M.REASONS = {[200] = "OK", [303] = "See Other", [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
  [404] = "Not Found", [405] = "Method Not Allowed", [409] = "Conflict", [421] = "Misdirected Request",
  [500] = "Internal Server Error"}

function M.text(status, message)
  return {status = status, headers = {["Content-Type"] = "text/plain; charset=utf-8"}, body = message .. "\n"}
end

function M.redirect(location, headers)
  headers = headers or {}
  headers.Location = location
  headers["Content-Type"] = "text/plain; charset=utf-8"
  return {status = 303, headers = headers, body = "see " .. location .. "\n"}
end

return M
