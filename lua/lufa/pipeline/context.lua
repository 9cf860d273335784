--- The `ctx` object an activity module's `run(ctx, activity)` receives.
-- Documented in docs/extending.md; every method here is public API.
-- @module lufa.pipeline.context
local lufa = require "lufa"
local json = require "lufa.json"
local E = require "lufa.error"
local secret = require "lufa.secret"
local expression = require "lufa.expression"
local L = require "lufa.pipeline.lenient"
local linked = require "lufa.linked"
local groups = require "lufa.pipeline.group"

local Ctx = {}
Ctx.__index = Ctx

local M = {}

--- Make the context for one attempt of one activity (engine internal).
function M.new(run, spec, frame, group, record, attempt)
  return setmetatable({
    run = run, frame = frame, group = group, record = record, attempt = attempt,
    activity = spec, name = spec.name, type = spec.type,
    factory = run.factory, pipeline_name = run.plan.name,
    run_id = run.id, activity_run_id = record.activityRunId,
    deferred = {},
  }, Ctx)
end

--- Evaluate a JSON value's expressions in this activity's scope (deep copy).
-- @param value any JSON value (strings starting with `@`, `@{…}` templates, Expression objects)
-- @param extra optional table of extra scope fields (e.g. `item`)
function Ctx:eval(value, extra)
  local scope = self.frame:scope()
  if extra then
    local s = {}
    for k, v in pairs(scope) do s[k] = v end
    for k, v in pairs(extra) do s[k] = v end
    scope = s
  end
  return expression.evaluate(value, scope)
end

--- Read a property of the evaluated typeProperties (any letter case).
function Ctx:property(name)
  return L.get(self.properties, name)
end

--- The value of a pipeline parameter (any letter case), or nil.
function Ctx:parameter(name)
  local p = self.run.parameters[name:lower()]
  return p and p.value
end

--- All pipeline parameters as an object name → value.
function Ctx:parameters()
  return self.run.pipeline_info.parameters
end

--- The current value of a pipeline variable; raises for an undeclared one.
function Ctx:variable(name)
  return self.run:get_variable(name)
end

--- Set a pipeline variable (type-checked against its declaration).
function Ctx:set_variable(name, value)
  return self.run:set_variable(name, value)
end

--- Append to an Array variable.
function Ctx:append_variable(name, value)
  return self.run:append_variable(name, value)
end

--- Set the pipeline's return value (an object), as SetVariable `pipelineReturnValue` does.
function Ctx:set_return_value(value)
  self.run.return_value = value
end

--- A client for a linked service (by name or LinkedServiceReference).
-- Clients come from the linked-service type registry (lufa.linked); unknown types give
-- `{name, type, properties}` with expressions evaluated and SecureStrings as secrets.
function Ctx:linked_service(ref)
  ref = ref or self.activity.linkedServiceName
  local cache = self.run.clients
  local key = type(ref) == "string" and ref:lower() or nil
  if key and cache[key] then return cache[key] end
  local client, err = linked.client(self.factory, ref, function(v, extra) return self:eval(v, extra) end, self)
  if not client then error(err, 0) end
  if key then cache[key] = client end
  return client
end

--- A dataset by name or DatasetReference: `{name, type, linkedServiceName, properties}`
-- with the reference's parameters visible to `@dataset()`.
function Ctx:dataset(ref)
  local name = linked.reference_name(ref)
  local def = name and self.factory:find("dataset", name)
  if not def then
    error(E.new{kind = "pipeline", code = "dataset", message = "dataset '" .. tostring(name) .. "' is not defined"}, 0)
  end
  local props = L.get(def.resource, "properties") or {}
  local params = {}
  for pname, spec in pairs(L.get(props, "parameters") or {}) do
    params[pname] = L.get(spec, "defaultValue")
  end
  for pname, v in pairs(type(ref) == "table" and L.get(ref, "parameters") or {}) do
    params[pname] = self:eval(v)
  end
  local tp = self:eval(L.get(props, "typeProperties") or json.object{},
    {dataset = function() return json.object(params) end})
  return {name = def.name, type = L.get(props, "type"), linkedServiceName = L.get(props, "linkedServiceName"),
    properties = tp}
end

local LOG_LEVEL = {debug = "debug", info = "info", warning = "warn", warn = "warn", error = "error"}

--- Log a message for this activity (`level`: "debug", "info", "warning", "error").
-- Goes to the run's event handler and to lufa.log (`-v` shows info); secrets format as their redaction marker.
function Ctx:log(level, fmt, ...)
  local ok, msg = pcall(string.format, fmt, ...)
  if not ok then msg = tostring(fmt) end
  self.run:emit{type = "log", level = level, activityName = self.name,
    activityRunId = self.activity_run_id, message = msg}
  local log = require "lufa.log"
  local l = LOG_LEVEL[level] or "info"
  if log.enabled(l) then log[l]("%s: %s", self.name, msg) end
end

--- The reason this activity is being cancelled ("timeout", "cancelled"), or nil.
function Ctx:cancelled()
  return self.group.cancelled
end

--- Register a cleanup to run when the activity ends, however it ends (success, failure,
-- timeout, cancellation). Cleanups run last-registered first, outside the cancelled task,
-- so they may wait (e.g. an HTTP DELETE of a remote job).
function Ctx:defer(fn)
  self.deferred[#self.deferred + 1] = fn
end

--- Sleep (interrupted by cancellation and timeout).
function Ctx:sleep(seconds)
  lufa.sleep(seconds)
end

--- Spawn a helper task that the activity's cancellation also cancels.
function Ctx:spawn(fn, ...)
  return self.group:spawn(fn, ...)
end

--- A new cancellation group under this activity (e.g. to time out one iteration).
function Ctx:new_group()
  return groups.new(self.group)
end

--- Run a list of inner activities (a container's branch) with ADF's dependency rules.
-- @param list the JSON array of activities, as found in `activity.typeProperties`
-- @param opts optional `{item = value}` (for `@item()`), `group` (from `new_group`)
-- @return `{status = "Succeeded"|"Failed"|"Cancelled", failed = result or nil, results = name → result}`
function Ctx:run_activities(list, opts)
  return self.run:run_branch(self, list, opts or {})
end

--- Start another pipeline of the factory as a child run.
-- @param name the pipeline name
-- @param parameters values by parameter name
-- @param opts `{wait = true}` to make cancellation of this activity cascade
-- @return a run handle (`:wait()` → record, `:cancel()`, `.runId`) or nil, err
function Ctx:run_pipeline(name, parameters, opts)
  opts = opts or {}
  return self.run.factory:start(name, {
    parameters = parameters,
    parent = {pipelineName = self.run.plan.name, runId = self.run.id, run = self.run},
    group = opts.wait and self.group or nil,
    on_event = self.run.on_event,
    store = self.run.store,
    now = self.run.now,
  })
end

--- Raise an activity failure with an ADF error code.
-- @param code errorCode (e.g. "2108")
-- @param message text
-- @param failure_type "UserError" (default) or "SystemError"
function Ctx:fail(code, message, failure_type)
  error(E.new{kind = "pipeline", code = "activity", errorCode = tostring(code), message = message,
    failureType = failure_type or "UserError"}, 0)
end

-- The journal's key for this activity: its name, and the ForEach iteration it runs in.
local function journal_prefix(ctx)
  local it = ctx.frame and ctx.frame.iteration
  return ctx.name .. (it and ("[" .. it .. "]") or "") .. "/"
end

--- Journal remote work before waiting on it (a job id, an operation URL): written to the run store at
-- once, so that `lufa resume` after a crash reconnects to it instead of starting the work again. `value`
-- is JSON (no secrets: they are stored as their marker); nil removes the entry. The activity's entries are
-- removed when the attempt ends, however it ends.
function Ctx:journal(key, value)
  local k = journal_prefix(self) .. key
  self.journal_keys = self.journal_keys or {}
  self.journal_keys[k] = value ~= nil or nil
  self.run.store:journal_put(self.run.id, k, value)
end

--- What an interrupted attempt of this activity journaled under `key` before lufa stopped (only in a
-- resumed run's first attempt), or nil.
function Ctx:journaled(key)
  if self.attempt ~= 0 or not self.run.resumed_from then return nil end
  return self.run.store:journal_get(self.run.id, journal_prefix(self) .. key)
end

--- Whether this attempt continues one that lufa was executing when it stopped (`lufa resume`).
function Ctx:resuming()
  return self.attempt == 0 and self.record.resumedFrom ~= nil
end

--- Removes what this attempt journaled, and what an interrupted attempt left (engine internal).
function Ctx:clear_journal()
  if self.attempt == 0 and self.run.resumed_from then
    local prefix = journal_prefix(self)
    for k in pairs(self.run.store:journal(self.run.id)) do
      if k:sub(1, #prefix) == prefix then self.run.store:journal_put(self.run.id, k, nil) end
    end
  end
  for k in pairs(self.journal_keys or {}) do self.run.store:journal_put(self.run.id, k, nil) end
  self.journal_keys = nil
end

--- Whether a value is a secret (lufa.secret).
Ctx.is_secret = secret.is

return M
