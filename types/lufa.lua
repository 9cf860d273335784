---@meta lufa
--- The event loop from Lua: tasks (coroutines the loop resumes when what they wait for is ready), sleeping,
--- monotonic and wall-clock time, interrupts. Native code (host/lufa_module.c, host/loop.c). A native call
--- that waits suspends only its task when called in one; elsewhere (the main chunk, the REPL) it drives the
--- loop itself until its wait is over, so tasks keep running. See docs/api/lufa.md.
---
--- Example:
--- ```lua
--- local lufa = require "lufa"
--- local t = lufa.spawn(function(a, b) lufa.sleep(0.01) return a + b end, 2, 3)
--- print(t:status(), t:wait(), t:status())
--- ```
--- ```text output
--- ready	5	done
--- ```

---@class lufa
---@field version string the version string, e.g. "0.1.0"
local lufa = {}

---@alias lufa.task.status "ready"|"running"|"waiting"|"done"|"failed"|"cancelled"

--- A task: a coroutine run by the event loop. `tostring(task)` gives `lufa.task (0x…): STATUS`.
---@class lufa.task
local task = {}

--- Creates a task that calls `fn(...)`. It does not run at once: it is queued and starts at the loop's next
--- step. The loop keeps the task alive until it ends, so the returned object need not be kept.
--- Errors: raises if `fn` is not a function.
---@param fn function the task's body
---@param ... any arguments passed to `fn`
---@return lufa.task task
function lufa.spawn(fn, ...) end

--- Waits at least `seconds` (0 or less: until the next step, which lets other tasks run). Inside a task it
--- suspends only that task; outside any task it drives the loop until the time has passed.
--- Errors: raises the "cancelled" `lufa.error` when the waiting task is cancelled.
---@async
---@param seconds number
function lufa.sleep(seconds) end

--- Monotonic time in seconds (a float), for measuring intervals; not related to the wall clock.
---@nodiscard
---@return number seconds
function lufa.now() end

--- The wall clock: seconds since 1970-01-01 UTC as a float with sub-second precision.
---@nodiscard
---@return number seconds
function lufa.time() end

--- Runs the loop until no task is left. The `lufa` command does the same after the main chunk ends.
--- Errors: raises `deadlock: N task(s) wait for each other and nothing else is pending` when tasks remain
--- that nothing can wake, and when called from inside a task.
function lufa.run() end

--- The task running this code, or nil in the main chunk (and in a plain coroutine created inside a task).
---@nodiscard
---@return lufa.task|nil task
function lufa.current() end

--- The number of tasks not yet finished.
---@nodiscard
---@return integer count
function lufa.tasks() end

--- Whether the descriptor is a terminal.
---@param fd? integer the descriptor (default 1, standard output)
---@return boolean
function lufa.isatty(fd) end

--- Makes the next SIGINT, SIGTERM or SIGHUP run `fn(name, number)` in a new task instead of ending the
--- process (`name` is "SIGINT", "SIGTERM" or "SIGHUP"). The first of them restores the default action of all
--- three, so a second one ends the process at once. `nil` restores the default now.
---@param fn fun(name: string, number: integer)|nil
function lufa.on_interrupt(fn) end

---@class lufa.inspect.Options
---@field depth? integer nesting shown (default 4)
---@field items? integer items shown per table (default 100)
---@field string? integer bytes shown of a string (default 2000)
---@field width? integer width of a table written on one line (default 96)
---@field indent? string indentation (default two spaces)

--- The text of any value as the interactive prompt prints it: tables nested and indented (on one line when
--- they fit), `json.null`, marked empty tables, secrets as `<secret>`, tasks with their status. The whole text
--- passes `lufa.redact`.
--- Errors: raises on an option of the wrong type, naming it.
---@nodiscard
---@param v any
---@param opts? lufa.inspect.Options
---@return string text
function lufa.inspect(v, opts) end

--- Waits for the task to end and returns everything its function returned (trailing nils included). A
--- finished task can be waited for any number of times.
--- Errors: raises the task's error value unchanged if it failed; a `lufa.error` with kind "task", code
--- "cancelled" if it was cancelled; raises when a task waits for itself.
---@async
---@return any ... the results of the task's function
function task:wait() end

--- Asks the task to stop; does nothing to a finished task. A task not started never runs; a waiting one has
--- its wait aborted at once and the wait raises the "cancelled" error (`task cancelled: REASON`) inside it.
---@param reason? string put in the error message
function task:cancel(reason) end

--- The task's state.
---@nodiscard
---@return lufa.task.status status
function task:status() end

return lufa
