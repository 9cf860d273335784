---@meta lufa.fs
--- Files and folders without a shell (host/fs.c): system calls only, so a path is only a path. Misuse (a
--- wrong type, an empty path or one holding NUL, a bad mode) raises; a failing call returns `nil, err` with
--- `err` a `lufa.error` of kind "fs", `code` the errno name ("ENOENT", "EACCES", …), `path` and `errno`
--- (`rename` also sets `to`). Modes are integers (`tonumber("750", 8)`) or strings of octal digits ("750");
--- what lufa.fs creates gets exactly the mode asked for: by default 0600 for files, 0700 for folders.
--- See docs/api/fs.md.
---
--- Example:
--- ```lua
--- local fs = require "lufa.fs"
--- assert(fs.mkdir("state/runs"))
--- assert(fs.write_file("state/runs/r1.json", "{}"))
--- print(table.concat(assert(fs.list("state/runs")), ","), fs.stat("state/runs/r1.json").size)
--- print(fs.is_dir("state"), fs.is_file("missing"), select(2, fs.read_file("missing")).code)
--- ```
--- ```text output
--- r1.json	2
--- true	false	ENOENT
--- ```

---@class lufa.fs
local fs = {}

---@class lufa.fs.Stat
---@field type "file"|"directory"|"link"|"other" "link" from lstat only
---@field size integer bytes
---@field mtime number modification time, Unix seconds with the file system's sub-second part
---@field mode integer the permission bits (st_mode & 07777)

---@class lufa.fs.WriteOptions
---@field mode? integer|string the file's mode (default 0600), also when it already existed
---@field atomic? boolean write a temporary file, fsync, rename over the path, fsync the folder (default true)

--- The names in `dir`, sorted by bytes, hidden entries included, without `.` and `..`.
--- Errors: `nil, err`.
---@nodiscard
---@param dir string
---@return string[]|nil names
---@return lufa.error? err
function fs.list(dir) end

--- The file's type, size, mtime and mode, following symbolic links.
--- Errors: `nil, err`.
---@nodiscard
---@param path string
---@return lufa.fs.Stat|nil stat
---@return lufa.error? err
function fs.stat(path) end

--- As `stat`, for a link itself (`type = "link"`).
--- Errors: `nil, err`.
---@nodiscard
---@param path string
---@return lufa.fs.Stat|nil stat
---@return lufa.error? err
function fs.lstat(path) end

--- Whether `path` is a folder (links followed); false for anything that names nothing.
---@nodiscard
---@param path string
---@return boolean
function fs.is_dir(path) end

--- Whether `path` is a regular file (links followed); false for anything that names nothing.
---@nodiscard
---@param path string
---@return boolean
function fs.is_file(path) end

--- Creates the folder; with `parents` (the default) missing parents too, with the same mode. An existing
--- folder is fine and keeps its mode.
--- Errors: `nil, err`: "EEXIST" for a file at `path`, "ENOENT" for a missing parent without `parents`.
---@param path string
---@param mode? integer|string default 0700
---@param parents? boolean default true
---@return true|nil ok
---@return lufa.error? err
function fs.mkdir(path, mode, parents) end

--- Removes a file, a link or an empty folder.
--- Errors: `nil, err` ("ENOTEMPTY" for a folder with entries).
---@param path string
---@return true|nil ok
---@return lufa.error? err
function fs.remove(path) end

--- rename(2): atomic within one file system; replaces a file at `to`.
--- Errors: `nil, err` with `err.to`.
---@param from string
---@param to string
---@return true|nil ok
---@return lufa.error? err
function fs.rename(from, to) end

--- The absolute path with every link, `.` and `..` resolved; the path must exist.
--- Errors: `nil, err`.
---@nodiscard
---@param path string
---@return string|nil path
---@return lufa.error? err
function fs.realpath(path) end

--- The bytes of the file (files that report no size, such as in /proc, are read to their end).
--- Errors: `nil, err` ("EISDIR" for a folder).
---@nodiscard
---@param path string
---@return string|nil content
---@return lufa.error? err
function fs.read_file(path) end

--- Writes `data` (a string, or a secret whose bytes are written without a Lua copy), atomically by default:
--- a reader sees the old content or the new, never part of either.
--- Errors: `nil, err`; on failure the temporary file is removed and the old file untouched.
---@param path string
---@param data string|lufa.secret
---@param opts? lufa.fs.WriteOptions
---@return true|nil ok
---@return lufa.error? err
function fs.write_file(path, data, opts) end

return fs
