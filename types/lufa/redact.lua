---@meta lufa.redact
--- The one redaction point for everything lufa shows (host/redact.c). Replaces with `<redacted>` the bytes of
--- every `lufa.secret` ever made in the process, values given to `redact.add`, and credential-shaped text
--- (SAS `sig=`, `AccountKey=`, `client_secret=`, `Bearer` tokens, `Authorization:` lines, JWTs, …). Text with
--- nothing to hide comes back unchanged. See docs/api/redact.md.
---
--- Example:
--- ```lua
--- local redact = require "lufa.redact"
--- print(redact.text("https://a.blob.core.windows.net/c/b?sv=2021-08-06&sig=abcdef123456&se=x"))
--- ```
--- ```text output
--- https://a.blob.core.windows.net/c/b?sv=2021-08-06&sig=<redacted>&se=x
--- ```

---@class lufa.redact
---@field marker string "<redacted>"
---@field min_length integer values shorter than this (6) are not remembered
local redact = {}

--- `s` with both rules applied; a `lufa.secret` gives the marker.
--- Errors: raises for a type other than string, number or secret.
---@nodiscard
---@param s string|number|lufa.secret
---@return string text
function redact.text(s) end

--- Remembers `value` as secret text for the rest of the process.
---@param value string|lufa.secret
---@return boolean remembered false when it is shorter than `redact.min_length`
function redact.add(value) end

--- Redacts in place every string field of a table and of the tables it holds (to a depth of 16, cycles
--- included); a string gives `redact.text(e)`, other values are returned as they are.
---@param e any
---@return any e
function redact.error(e) end

return redact
