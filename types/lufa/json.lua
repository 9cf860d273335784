---@meta lufa.json
--- JSON that round-trips (host/json.c, strict RFC 8259): empty objects stay `{}` and empty arrays `[]`
--- (decoded tables are marked), `null` is `json.null`, integers within 64 bits stay integers, floats are
--- written in the shortest form that reads back exactly. A table you build is an array when its keys are
--- exactly 1..n and an object when they are strings; an empty table encodes as `{}` unless marked with
--- `json.array`. See docs/api/json.md.
---
--- Example:
--- ```lua
--- local json = require "lufa.json"
--- local doc = assert(json.decode('{"list": [], "n": 3, "x": null}'))
--- print(json.type(doc.list), json.type(doc.n), doc.x == json.null)
--- print(json.encode(doc, { sort_keys = true }))
--- ```
--- ```text output
--- array	integer	true
--- {"list":[],"n":3,"x":null}
--- ```

---@class lufa.json
---@field null lightuserdata the one JSON null value
---@field array_mt table the metatable that marks a table as a JSON array
---@field object_mt table the metatable that marks a table as a JSON object
local json = {}

---@alias lufa.json.type "null"|"boolean"|"integer"|"number"|"bignum"|"string"|"array"|"object"

---@class lufa.json.DecodeOptions
---@field source? string a name put before error messages (e.g. the file)
---@field max_depth? integer nesting limit (default 1000, at most 10000)
---@field big_integers? "bignum"|"float"|"error" integers beyond 64 bits: a bignum keeping every digit (the default), the nearest float, or an error with code "range"

---@class lufa.json.EncodeOptions
---@field pretty? boolean one member or element per line, two-space indentation
---@field indent? integer spaces per level (1 to 16); implies pretty
---@field sort_keys? boolean true: every object's keys in byte order; false: never sorted; not given: decoded objects keep their order, other tables are sorted
---@field max_depth? integer nesting limit
---@field reveal_secrets? boolean write the bytes of secrets; the whole result is then a secret

--- Decodes a JSON text.
--- Errors: returned, never raised: `nil, err` with `err` a `lufa.error` of kind "json", code "syntax",
--- "depth" or "utf8", and `line`, `column` (characters), `position` (byte index).
---@nodiscard
---@param text string
---@param opts? lufa.json.DecodeOptions
---@return any value the value, or nil
---@return lufa.error? err why it is not JSON
function json.decode(text, opts) end

--- Decodes a JSON file; as `decode`, and `err.file` names the file.
--- Errors: `nil, err` as for `decode`, also with code "io" for a file that cannot be read.
---@nodiscard
---@param path string
---@param opts? lufa.json.DecodeOptions
---@return any value the value, or nil
---@return lufa.error? err
function json.decode_file(path, opts) end

--- Encodes a value. A `lufa.secret` is written as "<redacted>" unless `reveal_secrets` is set.
--- Errors: raises, with the JSON path of the offending value (`$.a[2].b`), on functions and userdata, NaN and
--- infinities, cycles, tables that are neither arrays 1..n nor string-keyed, invalid UTF-8, nesting past
--- max_depth.
---@nodiscard
---@param value any
---@param opts? lufa.json.EncodeOptions
---@return string|lufa.secret text a secret when secrets were revealed
function json.encode(value, opts) end

--- Marks `t` (or a new table) as a JSON array.
---@param t? table
---@return table t
function json.array(t) end

--- Marks `t` (or a new table) as a JSON object.
---@param t? table
---@return table t
function json.object(t) end

--- The JSON type of a value, or nil for what JSON cannot hold.
---@nodiscard
---@param v any
---@return lufa.json.type|nil type
function json.type(v) end

--- The string keys of `t` in the order encode writes them by default: a decoded object's in the order of
--- its text (keys removed since left out), then the others sorted by their bytes.
--- Errors: raises when `t` is not a table.
---@nodiscard
---@param t table
---@return string[] keys
function json.keys(t) end

---@class lufa.json.bignum
---An integer beyond 64 bits, kept digit for digit: tostring and .. give the digits, encode writes them
---back, arithmetic converts to the nearest float, comparisons with integers are exact.
local bignum = {}

--- The nearest float.
---@return number
function bignum:tonumber() end

--- What decode gives for an integer written as `digits`: an integer within 64 bits, else a bignum.
--- Errors: raises when `digits` is not an optional minus sign followed by decimal digits.
---@nodiscard
---@param digits string
---@return integer|lufa.json.bignum
function json.bignum(digits) end

return json
