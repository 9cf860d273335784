---@meta lufa.error
--- lufa's error values (host/error.c): tables with `kind`, `code` and `message` and a shared metatable, so
--- code can test `err.code` instead of parsing text. Native modules return or raise them; `tostring(err)` gives
--- the message (with the code when the message does not say it), redacted again.
---
--- Example:
--- ```lua
--- local E = require "lufa.error"
--- local err = E.new { kind = "demo", code = "missing", message = "no such thing" }
--- print(E.is(err), err.code, tostring(err))
--- ```
--- ```text output
--- true	missing	no such thing (missing)
--- ```

---@class lufa.error
---@field kind string the module or area: "json", "fs", "http", "sqlite", …
---@field code string a stable code within the kind
---@field message string what happened, redacted
---@field cause? any the error this one wraps

---@class lufa.error.module
---@field mt table the metatable of every lufa.error
local E = {}

--- Makes `t` a `lufa.error` (the same table): its top-level string fields are redacted and it gets the
--- shared metatable.
--- Errors: raises when `t` is not a table or `t.message` is not a string.
---@param t table with at least `message`; usually `kind` and `code` too
---@return lufa.error err
function E.new(t) end

--- Whether `v` is a `lufa.error`.
---@nodiscard
---@param v any
---@return boolean
function E.is(v) end

return E
