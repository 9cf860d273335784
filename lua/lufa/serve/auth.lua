--- Who may use `lufa serve`. On loopback anyone on this machine may read (as with the store file itself);
-- bound elsewhere every request needs the access token: `?token=...` once (the URL lufa serve prints),
-- then the `lufa_token` cookie it sets, or `Authorization: Bearer ...`. Every POST also needs the CSRF
-- token of the pages (form field `csrf` or header `X-CSRF-Token`), so another site cannot make a browser
-- act on the user's runs; and the Host header must name this server (no DNS rebinding).
-- @module lufa.serve.auth
local crypto = require "lufa.crypto"
local http = require "lufa.serve.http"

local M = {}

function M.random_token()
  return (crypto.base64url_encode(assert(crypto.random_bytes(24))))
end

-- Comparison whose time does not depend on where the strings differ.
local function same(a, b)
  if type(a) ~= "string" or type(b) ~= "string" or #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do diff = diff | (a:byte(i) ~ b:byte(i)) end
  return diff == 0
end
M.same = same

local function host_allowed(app, host)
  if not host then return false end
  host = host:lower()
  local name, port = host:match("^(%[[%x:]+%]):(%d+)$")
  if not name then name, port = host:match("^([^:]+):(%d+)$") end
  if not name or tonumber(port) ~= app.port then return false end
  if name == "127.0.0.1" or name == "localhost" or name == "[::1]" then return true end
  if name == app.bind or name == "[" .. app.bind .. "]" then return true end   -- e.g. 127.0.0.2
  return app.token ~= nil   -- off loopback the token protects; any name that reaches us is accepted
end

--- nil when `req` may proceed; otherwise the response that refuses it.
function M.check(app, req)
  if not host_allowed(app, req.headers.host) then
    return http.text(421, "this server answers only to the address it printed (Host header not accepted)")
  end
  if app.token then
    local given = req.cookies.lufa_token
    local bearer = (req.headers.authorization or ""):match("^[Bb]earer%s+(%S+)$")
    if req.query.token and req.method == "GET" then
      if not same(req.query.token, app.token) then return http.text(401, "wrong access token") end
      -- first visit: keep the token in a cookie and drop it from the address bar
      local query = {}
      for k, v in pairs(req.query) do if k ~= "token" then query[k] = v end end
      local q = http.encode_form(query)
      -- the raw path (printable ASCII, as the parser admits it), never the decoded one, goes into Location
      return http.redirect(req.raw_path .. (q ~= "" and ("?" .. q) or ""), {["Set-Cookie"] =
        "lufa_token=" .. app.token .. "; Path=/; HttpOnly; SameSite=Strict"})
    end
    if not same(given, app.token) and not same(bearer, app.token) then
      return http.text(401, "an access token is needed: open the address lufa serve printed (it ends in ?token=...)")
    end
  end
  if req.method ~= "GET" and req.method ~= "HEAD" then
    local form = (req.headers["content-type"] or ""):find("application/x-www-form-urlencoded", 1, true)
      and http.decode_form(req.body) or {}
    req.form = form
    if not same(req.headers["x-csrf-token"] or form.csrf, app.csrf) then
      return http.text(403, "this request lacks the page's CSRF token; reload the page and try again")
    end
  end
  return nil
end

return M
