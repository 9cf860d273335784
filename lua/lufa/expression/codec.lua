--- Text codecs used by the conversion functions: base64, URI components and data URIs.
-- @module lufa.expression.codec

local M = {}

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local decode_map = {}
for i = 1, 64 do decode_map[alphabet:byte(i)] = i - 1 end

--- Standard base64 with padding.
function M.base64_encode(bytes)
  local out = {}
  for i = 1, #bytes, 3 do
    local a, b, c = bytes:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local s1 = (n >> 18) & 63
    local s2 = (n >> 12) & 63
    local s3 = (n >> 6) & 63
    local s4 = n & 63
    out[#out + 1] = alphabet:sub(s1 + 1, s1 + 1) .. alphabet:sub(s2 + 1, s2 + 1) ..
      (b and alphabet:sub(s3 + 1, s3 + 1) or "=") .. (c and alphabet:sub(s4 + 1, s4 + 1) or "=")
  end
  return table.concat(out)
end

--- Decode base64 (whitespace ignored, padding optional, URL-safe letters accepted).
-- @return bytes, or nil and a reason
function M.base64_decode(text)
  text = text:gsub("%s", ""):gsub("-", "+"):gsub("_", "/")
  local body = text:gsub("=+$", "")
  if body:find("=") or #text - #body > 2 then return nil, "misplaced '=' padding" end
  if #body % 4 == 1 then return nil, "wrong length" end
  local out = {}
  local bits, nbits = 0, 0
  for i = 1, #body do
    local v = decode_map[body:byte(i)]
    if not v then return nil, "character '" .. body:sub(i, i) .. "' is not base64" end
    bits = ((bits << 6) | v) & 0xFFFFFF
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      out[#out + 1] = string.char((bits >> nbits) & 0xFF)
    end
  end
  return table.concat(out)
end

--- Percent-encode everything but the unreserved characters (A-Z a-z 0-9 - _ . ~).
function M.uri_encode(text)
  return (text:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", c:byte()) end))
end

--- Percent-decode; '+' stays a plus sign and a '%' not followed by two hex
-- digits stays as it is (as .NET's unescaping does).
function M.uri_decode(text)
  return (text:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- A data URI carrying `text` as UTF-8 plain text.
function M.data_uri(text)
  return "data:text/plain;charset=utf-8;base64," .. M.base64_encode(text)
end

--- The content of a data URI.
-- @return bytes, or nil and a reason
function M.data_uri_content(uri)
  local meta, payload = uri:match("^data:([^,]*),(.*)$")
  if not meta then return nil, "a data URI looks like data:[<media type>][;base64],<data>" end
  if meta:lower():find(";base64$") then return M.base64_decode(payload) end
  return M.uri_decode(payload)
end

return M
