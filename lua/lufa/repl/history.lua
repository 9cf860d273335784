--- Which prompt lines may be kept in the history file: none that holds a secret.
-- A line is left out when it passes a string literal to `secret(...)` / `lufa.secret.new(...)`, gives a
-- credential-named option (client_secret, password, account_key, sas_token, ...) a literal value, or holds
-- text lufa.redact would hide (a remembered secret's bytes, an AccountKey=, a SAS signature, a bearer token).
-- @module lufa.repl.history
local redact = require "lufa.redact"

local M = {}

--- Option names (compared in lower case, without `_` and `-`) whose literal values are credentials.
M.credential_names = {
  "secret", "clientsecret", "password", "passwd", "pwd", "accountkey", "key", "sharedkey", "sas", "sastoken",
  "sig", "token", "accesstoken", "refreshtoken", "bearer", "connectionstring", "apikey", "credential",
}

local credential = {}
for _, n in ipairs(M.credential_names) do credential[n] = true end

local function passes_literal_secret(line)
  for call in line:gmatch("([%w_%.]*)%s*%(?%s*[\"'%[]") do
    local last = call:match("([%w_]+)$")
    if last == "secret" or (last == "new" and call:find("secret%.new$")) then return true end
  end
  return false
end

local function sets_credential(line)
  for name in line:gmatch("([%w_%-]+)[\"'%]]*%s*[=:]%s*[\"'%[]") do
    local n = name:lower():gsub("[_%-]", "")
    if credential[n] then return true end
    for c in pairs(credential) do
      if #c > 3 and n:sub(-#c) == c then return true end
    end
  end
  return false
end

--- Whether `line` may be written to the history file.
-- @tparam string line
-- @treturn boolean
function M.keep(line)
  if passes_literal_secret(line) or sets_credential(line) then return false end
  return redact.text(line) == line
end

return M
