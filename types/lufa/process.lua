---@meta lufa.process
--- Child programs without a shell (host/process.c, posix_spawn): every element of `argv` reaches the child
--- verbatim; a bare program name is looked up in PATH. The child gets only descriptors 0, 1 and 2, default
--- signal dispositions and an empty signal mask. Waiting suspends only the calling task. Errors are
--- `lufa.error`s of kind "process" with `code` the errno name ("ENOENT" for a missing program) or "timeout".
--- See docs/api/process.md.
---
--- Example:
--- ```lua
--- local process = require "lufa.process"
--- local p = assert(process.spawn({ "sh", "-c", "exit 3" }, { stdout = "null" }))
--- local status, code = p:wait(10)
--- print(status.exited, status.code, code, process.is_alive(process.getpid()))
--- ```
--- ```text output
--- true	3	3	true
--- ```

---@class lufa.process
local process = {}

---@class lufa.process.SpawnOptions
---@field env? table<string, string> the child's whole environment
---@field env_extra? table<string, string|false> added to lufa's environment; false removes a variable
---@field cwd? string the child's working folder
---@field stdin? string "null" (the default) or a file to read
---@field stdout? string inherited by default; "null" or a file path (created 0600, truncated unless append)
---@field stderr? string as stdout, or "stdout" to share stdout's file
---@field append? boolean append to the stdout/stderr files
---@field new_group? boolean the child leads its own process group; kill reaches the whole group
---@field signals_default? boolean default signal dispositions in the child (default true)

---@class lufa.process.Status
---@field exited? boolean the child exited
---@field code? integer its exit code
---@field signaled? boolean a signal ended it
---@field signal? integer the signal number
---@field signame? string the signal's name, e.g. "TERM"
---@field core? boolean a core was dumped

--- Starts a program.
--- Errors: raises on an unknown option (naming the nearest known one); `nil, err` when the program cannot
--- be started ("ENOENT", "EACCES"; the message names the program).
---@param argv string[] the program and its arguments
---@param opts? lufa.process.SpawnOptions
---@return lufa.process.child|nil child
---@return lufa.error? err
function process.spawn(argv, opts) end

--- lufa's own process id.
---@nodiscard
---@return integer pid
function process.getpid() end

--- Whether a process with that id exists.
---@nodiscard
---@param pid integer
---@return boolean
function process.is_alive(pid) end

--- A child started by `process.spawn`.
---@class lufa.process.child
---@field pid integer the child's process id
local child = {}

--- Waits for the child to end; other tasks run meanwhile. Called again after the end, returns the same.
--- Errors: `nil, err` with code "timeout" when `timeout` seconds passed first (the child keeps running).
---@async
---@param timeout? number seconds
---@return lufa.process.Status|nil status
---@return integer|lufa.error number the shell-style number (`code`, or 128 + signal), or the error
function child:wait(timeout) end

--- "running", or the status table once the child has ended; never waits.
---@nodiscard
---@return "running"|lufa.process.Status status
function child:status() end

--- Sends a signal (a number or a name such as "TERM" or "SIGKILL"; default TERM).
--- Errors: `nil, err` on failure.
---@param signal? integer|string
---@return boolean|nil sent false once the child was reaped
---@return lufa.error? err
function child:kill(signal) end

return process
