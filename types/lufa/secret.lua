---@meta lufa.secret
--- Values that print as `<redacted>` (host/secret.c). A secret holds bytes that Lua code cannot read except
--- through `secret.expose`: `tostring`, `print`, `string.format("%s")`, `json.encode`, error messages and the
--- run store all see `<redacted>`. Concatenation gives a secret (more than two parts: `secret.concat`); two
--- secrets compare in constant time; `#s` and `s.field` raise. Every secret's bytes are remembered by
--- `lufa.redact` for the life of the process. The module is callable: `secret(s)` is `secret.new(s)`. See
--- docs/api/secret.md.
---
--- Example:
--- ```lua
--- local secret = require "lufa.secret"
--- local key = secret("s3cr3t-value")
--- local auth = "Bearer " .. key
--- print(auth, secret.is(auth), #secret.expose(auth))
--- ```
--- ```text output
--- <redacted>	true	19
--- ```

---@class lufa.secret
---@field marker string "<redacted>", what a secret prints as
---@overload fun(s: string|lufa.secret): lufa.secret
local secret = {}

--- A new secret holding the string `s` (a secret is returned as it is).
--- Errors: raises when `s` is not a string or a secret.
---@nodiscard
---@param s string|lufa.secret
---@return lufa.secret value
function secret.new(s) end

--- Whether `v` is a secret.
---@nodiscard
---@param v any
---@return boolean
function secret.is(v) end

--- The strings, numbers and secrets given, joined into one secret (no part given is a secret: still a
--- secret). Use it for three or more parts: Lua 5.4.4 can lose the parts after the first of a `..` chain
--- of three or more operands, or crash, when a secret's concatenation in it moves the Lua stack; two
--- operands (`"Bearer " .. key`) are safe.
--- Errors: raises when a part is not a string, a number or a secret.
---@nodiscard
---@param ... string|number|lufa.secret
---@return lufa.secret value
function secret.concat(...) end

--- The bytes, as a plain string: only where they must leave lufa.
--- Errors: raises when `s` is not a secret.
---@nodiscard
---@param s lufa.secret
---@return string bytes
function secret.expose(s) end

return secret
