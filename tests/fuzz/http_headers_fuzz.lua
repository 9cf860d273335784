--- Fuzzes response header blocks: the header table lufa.http builds (host/http_headers.c) and what lufa
-- reads from it (Retry-After). The input is the raw header block; lua_fuzz.c passes the table it becomes.
local http = require "lufa.http"

return function(raw, headers)
  if type(headers) ~= "table" then error("no header table for the block") end
  for name, value in pairs(headers) do
    if type(name) ~= "string" or type(value) ~= "string" then error("a header field is not a string pair") end
    if name ~= name:lower() then error("header name not lowercased: " .. name) end
    if name == "" or name:find("[:\n]") then error("bad header name: " .. name) end
    if value:find("\n", 1, true) then error("a header value holds a line break: " .. name) end
    -- (a repeated field joins its values with ", ", so only the start is sure to be trimmed)
    if value:match("^[ \t]") then error("a header value is not trimmed: " .. name) end
    if headers[name:upper()] ~= value then error("lookup ignoring case fails for " .. name) end
    if not raw:lower():find(name, 1, true) then error("a header name that the block does not hold: " .. name) end
  end
  local wait = http.retry_after(headers["retry-after"], 0)
  if wait ~= nil and (type(wait) ~= "number" or wait ~= wait or wait < 0) then
    error("retry_after gave " .. tostring(wait) .. " for " .. tostring(headers["retry-after"]))
  end
end
