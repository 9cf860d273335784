--- Running a compiled pipeline with ADF's semantics: dependency conditions, Skipped
-- propagation, the leaf rule, policies (timeout, retry, secure input/output),
-- cancellation, variables, parameters and the return value; records every state change.
-- @module lufa.pipeline.run
local lufa = require "lufa"
local json = require "lufa.json"
local E = require "lufa.error"
local secret = require "lufa.secret"
local expression = require "lufa.expression"
local L = require "lufa.pipeline.lenient"
local linked = require "lufa.linked"
local runs = require "lufa.runs"
local status = require "lufa.pipeline.status"
local groups = require "lufa.pipeline.group"
local context = require "lufa.pipeline.context"
local compile = require "lufa.pipeline.compile"

local M = {}

local Run = {}
Run.__index = Run

-- ---------------------------------------------------------------- values and types

local VARIABLE_DEFAULTS = {
  string = function() return "" end, bool = function() return false end,
  boolean = function() return false end, integer = function() return 0 end,
  array = function() return json.array{} end,
}

local function type_name_of(v)
  if secret.is(v) then return "String" end
  local t = json.type(v)
  local names = {string = "String", integer = "Integer", number = "Float", boolean = "Boolean",
    array = "Array", object = "Object", null = "Null"}
  return names[t] or type(v)
end

local function pipeline_error(code, fmt, ...)
  return E.new{kind = "pipeline", code = code, message = string.format(fmt, ...)}
end

--- Coerce a supplied parameter value to its declared type (command-line strings included).
-- @return value, or nil and a message
function M.coerce_parameter(decl, v)
  local t = decl.type:lower()
  if t == "securestring" then
    if secret.is(v) then return v end
    if type(v) == "string" then return secret(v) end
    return nil, "a string"
  elseif t == "string" then
    if type(v) == "string" or secret.is(v) then return v end
    if type(v) == "number" or type(v) == "boolean" then return tostring(v) end
    return nil, "a string"
  elseif t == "int" then
    local n = L.int(v)
    if n then return n end
    return nil, "an integer"
  elseif t == "float" then
    local n = L.number(v)
    if n then return n end
    return nil, "a number"
  elseif t == "bool" then
    local b = L.bool(v)
    if b ~= nil then return b end
    return nil, "true or false"
  elseif t == "array" or t == "object" then
    if type(v) == "string" then
      local decoded = json.decode(v)
      if decoded == nil then return nil, (t == "array" and "an array" or "an object") .. " (as JSON text)" end
      v = decoded
    end
    if json.type(v) == t then return v end
    if t == "object" and type(v) == "table" and next(v) == nil then return json.object(v) end
    return nil, t == "array" and "an array" or "an object"
  end
  return v
end

local function record_string(v)
  if secret.is(v) then return tostring(v) end
  if type(v) == "string" then return v end
  if type(v) == "table" and v ~= json.null then return json.encode(linked.redact(v)) end
  if v == json.null or v == nil then return "" end
  if v == true then return "True" elseif v == false then return "False" end
  return tostring(v)
end

-- Normalise whatever an activity raised or returned into ADF's error shape.
local function to_error(err, target)
  if type(err) == "table" and not secret.is(err) then
    local code = err.errorCode or err.code
    local message = err.message
    if message == nil then message = tostring(err) end
    return {errorCode = tostring(code or "ActivityFailed"), message = tostring(message),
      failureType = err.failureType or "UserError", target = target}
  end
  return {errorCode = "ActivityFailed", message = tostring(err), failureType = "UserError", target = target}
end

-- ---------------------------------------------------------------- frames (scopes)

local Frame = {}
Frame.__index = Frame

local function new_frame(run, parent, group, item, index)
  local iteration = parent and parent.iteration
  if index then iteration = iteration and (iteration .. "." .. index) or tostring(index) end
  return setmetatable({run = run, parent = parent, group = group, results = {}, item = item,
    has_item = item ~= nil, iteration = iteration}, Frame)
end

function Frame:lookup(name)
  local lower = name:lower()
  local f = self
  while f do
    local r = f.results[lower]
    if r then return r end
    f = f.parent
  end
end

--- The expression scope for this frame (built once).
function Frame:scope()
  if self.cached_scope then return self.cached_scope end
  local run = self.run
  local frame = self
  local scope = {
    pipeline = run.pipeline_info,
    trigger = run.trigger,
    now = run.now,
    activity = function(name)
      local r = frame:lookup(tostring(name))
      if not r then
        error(E.new{kind = "expression", code = "evaluation", message = string.format(
          "activity '%s' has not run yet or is not in the current scope", tostring(name))}, 0)
      end
      return r.view
    end,
    variables = function(name) return run:get_variable(tostring(name)) end,
  }
  local f = self
  while f and not f.has_item do f = f.parent end
  if f then
    local value = f.item
    scope.item = function() return value end
  end
  self.cached_scope = scope
  return scope
end

-- ---------------------------------------------------------------- events and records

function Run:emit(event)
  event.runId = self.id
  event.pipelineName = self.plan.name
  event.time = runs.iso8601()
  if self.on_event then
    local ok, err = pcall(self.on_event, event)
    if not ok and not self.event_error_reported then
      self.event_error_reported = true
      io.stderr:write("lufa: event handler failed: ", tostring(err), "\n")
    end
  end
end

local function new_activity_record(run, spec, attempt, frame)
  local now = runs.wall_time()
  local record = {
    iteration = frame and frame.iteration or nil,
    activityRunId = runs.guid(), activityName = spec.name, activityType = spec.type,
    pipelineName = run.plan.name, pipelineRunId = run.id,
    linkedServiceName = linked.reference_name(spec.linkedServiceName) or "",
    status = "InProgress", activityRunStart = runs.iso8601(now), retryAttempt = attempt > 0 and attempt or json.null,
    userProperties = json.object{}, input = json.object{}, output = json.object{},
    error = {errorCode = "", message = "", failureType = "", target = spec.name},
  }
  return record, now
end

local function finish_record(run, record, started, final_status)
  local now = runs.wall_time()
  record.status = final_status
  record.activityRunEnd = runs.iso8601(now)
  record.durationInMs = math.floor((now - started) * 1000 + 0.5)
  run.store:put_activity_run(record)
end

local function activity_event(record, extra)
  local ev = {type = "activity", activityName = record.activityName, activityType = record.activityType,
    activityRunId = record.activityRunId, status = record.status, retryAttempt = record.retryAttempt,
    durationInMs = record.durationInMs}
  if record.status == "Failed" then ev.error = record.error end
  if extra then for k, v in pairs(extra) do ev[k] = v end end
  return ev
end

-- A result that records a status without running (Skipped, Inactive, not started).
local function placeholder(run, spec, final_status, reason, frame)
  local record, started = new_activity_record(run, spec, 0, frame)
  record.input, record.output = json.null, json.null
  record.reason = reason
  finish_record(run, record, started, final_status)
  run:emit(activity_event(record, {reason = reason}))
  return {name = spec.name, status = final_status, inactive_status = spec.inactive_status,
    record = record, view = {status = final_status}}
end

-- ---------------------------------------------------------------- one activity

local function evaluate_policy(ctx, spec)
  local p = spec.policy
  local timeout, retry = p.timeout, p.retry
  if p.timeout_expr then
    local v = ctx:eval(p.timeout_expr)
    local secs, why = L.timespan(v)
    if not secs then error(pipeline_error("policy", "policy.timeout: %s", why), 0) end
    timeout = secs
  end
  if p.retry_expr then
    local n = L.int(ctx:eval(p.retry_expr))
    if not n or n < 0 then error(pipeline_error("policy", "policy.retry must evaluate to a whole number"), 0) end
    retry = n
  end
  return timeout, retry
end

local function run_deferred(ctx)
  for i = #ctx.deferred, 1, -1 do
    local ok, err = pcall(ctx.deferred[i], ctx)
    if not ok then
      ctx:log("warning", "cleanup failed: %s", tostring(err))
    end
  end
  ctx.deferred = {}
end

-- Run one attempt; returns final status, output, error.
local function attempt(run, spec, frame, attempt_no, policy_cache)
  local record, started = new_activity_record(run, spec, attempt_no, frame)
  if attempt_no == 0 and run.resumed_from and run.resumed_from[spec.name:lower()] and not frame.parent then
    record.resumedFrom = run.resumed_from[spec.name:lower()]
  end
  run:emit(activity_event(record))
  local agroup = groups.new(frame.group)
  local ctx = context.new(run, spec, frame, agroup, record, attempt_no)
  local module = spec.module
  local timed_out = false
  local timeout = policy_cache.timeout or spec.policy.timeout

  local task = agroup:spawn(function()
    if not policy_cache.evaluated then
      policy_cache.timeout, policy_cache.retry = evaluate_policy(ctx, spec)
      policy_cache.evaluated = true
    end
    local input
    if module.input then
      input = module.input(ctx, spec)
    else
      input = ctx:eval(spec.typeProperties)
    end
    ctx.input = input
    ctx.properties = ctx.properties or input
    if not spec.policy.secure_input and input ~= nil then
      record.input = linked.redact(input)
    end
    if spec.userProperties then
      local ok, up = pcall(ctx.eval, ctx, spec.userProperties)
      if ok and L.is_array(up) then
        local out = json.object{}
        for _, p in ipairs(up) do
          local n = L.get(p, "name")
          if type(n) == "string" then out[n] = linked.redact(L.get(p, "value")) end
        end
        record.userProperties = out
      end
    end
    run.store:put_activity_run(record)
    return module.run(ctx, spec)
  end)
  local timer
  if timeout and timeout < math.huge then
    timer = lufa.spawn(function()
      lufa.sleep(timeout)
      timed_out = true
      agroup:cancel("timeout")
    end)
  end
  local ok, out, err = pcall(task.wait, task)
  if timer then timer:cancel("finished") end
  agroup:cancel("finished")
  run_deferred(ctx)
  agroup:drain()
  agroup:close()
  ctx:clear_journal()

  local final, output, error_obj
  if ok and out ~= nil then
    final, output = "Succeeded", out
  elseif ok and err == nil then
    final, output = "Succeeded", json.object{}
  elseif timed_out then
    final = "Failed"
    error_obj = {errorCode = "ActivityTimedOut", failureType = "UserError", target = spec.name,
      message = string.format("Activity '%s' timed out after %s seconds (policy.timeout)", spec.name,
        tostring(timeout))}
  elseif frame.group.cancelled then
    final = "Cancelled"
    error_obj = {errorCode = "ActivityCancelled", failureType = "UserError", target = spec.name,
      message = string.format("Activity '%s' was cancelled (%s)", spec.name, frame.group.cancelled)}
  else
    final = "Failed"
    error_obj = to_error(ok and err or out, spec.name)
  end
  if output ~= nil and not L.is_object(output) and json.type(output) ~= "object" then
    output = {value = output}
  end
  if final == "Succeeded" then
    record.output = spec.policy.secure_output and json.null or linked.redact(output)
  else
    record.output = json.null
    record.error = linked.redact(error_obj)
  end
  finish_record(run, record, started, final)
  run:emit(activity_event(record))
  return final, output, error_obj, record
end

-- An activity that succeeded in the run being rerun or resumed: its recorded output stands, nothing runs.
-- A rerun (a new run id) gets a copy of the record that says where it came from.
local function reused(run, spec, prior)
  local record = prior
  if prior.pipelineRunId ~= run.id then
    record = {}
    for k, v in pairs(prior) do record[k] = v end
    record.activityRunId = runs.guid()
    record.pipelineRunId = run.id
    record.reusedFrom = {pipelineRunId = prior.pipelineRunId, activityRunId = prior.activityRunId}
    run.store:put_activity_run(record)
  end
  run:emit(activity_event(record, {reused = true}))
  local output = prior.output
  if output == nil or output == json.null then output = json.object{} end
  return {name = spec.name, status = "Succeeded", output = output, record = record,
    view = {output = output, status = "Succeeded"}}
end

-- Supervise one activity: wait for dependencies, decide, run with retries, publish result.
local function supervise(run, spec, frame, tasks, results)
  for _, d in ipairs(spec.deps) do
    local t = d.target and tasks[d.target]
    if t then pcall(t.wait, t) end
  end
  local result
  local prior = run.reuse and not frame.parent and run.reuse[spec.name:lower()]
  -- activities that only change the run's own state (variables) run again: their effect is not recorded
  if prior and not spec.module.replay and not frame.group.cancelled then
    result = reused(run, spec, prior)
  elseif spec.state == "Inactive" then
    result = placeholder(run, spec, "Inactive", "inactive", frame)
  elseif frame.group.cancelled then
    result = placeholder(run, spec, "Skipped", "run cancelled before the activity started", frame)
  elseif not status.ready_to_run(spec.deps, results) then
    result = placeholder(run, spec, "Skipped", "dependency conditions not met", frame)
  else
    local policy_cache = {}
    local n = 0
    while true do
      local final, output, err, record = attempt(run, spec, frame, n, policy_cache)
      result = {name = spec.name, status = final, output = output, error = err, record = record,
        view = {output = output, status = final, error = err}}
      local retry = policy_cache.retry or spec.policy.retry
      if final ~= "Failed" or n >= retry or frame.group.cancelled then break end
      n = n + 1
      -- The wait between attempts is a task of the scope, so cancellation interrupts it.
      local waiter = frame.group:spawn(lufa.sleep, spec.policy.retry_interval)
      pcall(waiter.wait, waiter)
      if frame.group.cancelled then break end
    end
  end
  results[spec] = result
  frame.results[spec.name:lower()] = result
  return result
end

-- Order a scope so that every activity comes after those it depends on.
local function topological(scope)
  if scope.topo then return scope.topo end
  local order, state = {}, {}
  local function visit(spec)
    if state[spec] then return end
    state[spec] = true
    for _, d in ipairs(spec.deps) do
      if d.target then visit(d.target) end
    end
    order[#order + 1] = spec
  end
  for _, spec in ipairs(scope.list) do visit(spec) end
  scope.topo = order
  return order
end

--- Run one scope (pipeline level or a container branch) in `frame`; waits for it.
-- @return status ("Succeeded", "Failed" or "Cancelled"), the failing result or nil, results
function Run:run_scope(scope, frame)
  local tasks, results = {}, {}
  for _, spec in ipairs(topological(scope)) do
    tasks[spec] = frame.group:supervise(supervise, self, spec, frame, tasks, results)
  end
  for _, spec in ipairs(scope.list) do
    local t = tasks[spec]
    local ok, err = pcall(t.wait, t)
    if not ok and E.is(err) and err.code == "cancelled" then
      error(err, 0)  -- the caller itself was cancelled
    elseif not ok then
      results[spec] = results[spec] or {name = spec.name, status = "Failed",
        error = to_error(err, spec.name), view = {status = "Failed"}}
    end
  end
  local final, failing = status.leaf_rule(scope, results)
  if frame.group.cancelled and final ~= "Succeeded" then final = "Cancelled" end
  local by_name = {}
  for spec, r in pairs(results) do by_name[spec.name] = r end
  return final, failing and results[failing], by_name
end

--- Run a container branch on behalf of an activity (see ctx:run_activities).
function Run:run_branch(ctx, list, opts)
  local scope = self.plan.scopes[list]
  if not scope then
    local problems
    scope, problems = compile.scope(self.plan, list, ctx.activity.path .. ".typeProperties")
    for _, p in ipairs(problems) do
      if p.severity == "error" then
        error(pipeline_error("validation", "%s: %s", p.path, p.message), 0)
      end
    end
    self.plan.scopes[list] = scope
  end
  local group = groups.new(opts.group or ctx.group)
  local item = opts.item
  if item == nil and opts.has_item then item = json.null end
  local frame = new_frame(self, ctx.frame, group, item, opts.index)
  if item ~= nil then frame.has_item = true end
  local final, failing, results = self:run_scope(scope, frame)
  group:close()
  return {status = final, failed = failing, results = results}
end

-- ---------------------------------------------------------------- variables

local function variable_entry(run, name)
  local v = run.variables[tostring(name):lower()]
  if not v then
    error(pipeline_error("variable", "variable '%s' is not declared in pipeline '%s'",
      tostring(name), run.plan.name), 0)
  end
  return v
end

function Run:get_variable(name)
  return variable_entry(self, name).value
end

function Run:set_variable(name, value)
  local v = variable_entry(self, name)
  local ok = compile.value_matches(v.type, value)
  if not ok then
    error(pipeline_error("variable_type",
      "The variable '%s' of type '%s' cannot be updated with a value of type '%s'",
      v.name, v.type, type_name_of(value)), 0)
  end
  v.value = value
  return value
end

function Run:append_variable(name, value)
  local v = variable_entry(self, name)
  if v.type:lower() ~= "array" then
    error(pipeline_error("variable_type", "AppendVariable needs an Array variable; '%s' is of type '%s'",
      v.name, v.type), 0)
  end
  local copy = json.array{}
  for i, x in ipairs(v.value) do copy[i] = x end
  copy[#copy + 1] = value
  v.value = copy
  return copy
end

-- ---------------------------------------------------------------- the run

--- Start a run of a compiled plan.
-- @param factory the factory
-- @param plan the compiled pipeline (no errors)
-- @param opts `parameters`, `on_event`, `store`, `group` (parent group), `parent`
--   (`{pipelineName, runId}` for ExecutePipeline), `trigger` (`{type, name, id, time, outputs}`), `now`;
--   `run_id` (a run id given beforehand, e.g. to a Queued run);
--   for reruns and resumes (lufa.runs.rerun): `group_id`, `reuse` (lower-case top-level activity name →
--   the Succeeded record whose output stands), `resume` (the interrupted run's record: same run id and
--   start, journaled remote work reconnected), `resumed_from` (name → activity run id), `origin` (stored
--   with the record: how to load the run again)
-- @return run handle, or nil and a lufa.error (bad parameters)
function M.start(factory, plan, opts)
  opts = opts or {}
  local resume = opts.resume
  local run = setmetatable({factory = factory, plan = plan, id = resume and resume.runId or opts.run_id or runs.guid(),
    store = opts.store or factory.runs, on_event = opts.on_event, now = opts.now, clients = {}, variables = {},
    parameters = {}, reuse = opts.reuse, resumed_from = opts.resumed_from}, Run)

  -- Parameters: supplied values coerced to their declared types; defaults; required ones.
  local supplied = {}
  -- what was supplied, kept with the record for reruns; secret parameters only as their marker
  local origin = {}
  for k, v in pairs(opts.origin or factory.origin or {}) do origin[k] = v end
  origin.pipeline, origin.parameters = plan.name, json.object{}
  for k, v in pairs(opts.parameters or {}) do
    local decl = plan.parameters[tostring(k):lower()]
    if not decl then
      return nil, pipeline_error("parameters", "pipeline '%s' has no parameter '%s'", plan.name, tostring(k))
    end
    supplied[decl.name:lower()] = v
    origin.parameters[decl.name] = decl.type:lower() == "securestring" and tostring(secret("x")) or linked.redact(v)
  end
  local params_obj = json.object{}
  local record_params = json.object{}
  for lower, decl in pairs(plan.parameters) do
    local v = supplied[lower]
    if v == nil then v = decl.default end
    if v == nil then
      return nil, pipeline_error("parameters", "pipeline '%s' needs a value for parameter '%s' (type %s)",
        plan.name, decl.name, decl.type)
    end
    if type(v) == "string" and v:sub(1, 1) == "@" and supplied[lower] == nil then
      v = expression.evaluate(v, {pipeline = {parameters = json.object{}}})
    end
    local value, expected = M.coerce_parameter(decl, v)
    if value == nil then
      return nil, pipeline_error("parameters", "parameter '%s' of pipeline '%s' must be %s (type %s)",
        decl.name, plan.name, expected, decl.type)
    end
    run.parameters[lower] = {name = decl.name, type = decl.type, value = value}
    params_obj[decl.name] = value
    record_params[decl.name] = record_string(value)
  end
  for lower, decl in pairs(plan.variables) do
    local value = decl.default
    if value == nil then
      local d = VARIABLE_DEFAULTS[decl.type:lower()]
      value = d and d() or json.null
    end
    run.variables[lower] = {name = decl.name, type = decl.type, value = value}
  end

  local parent = opts.parent
  local trigger = opts.trigger or {}
  local start_time = resume and runs.parse_time(resume.runStart) or runs.wall_time()
  run.pipeline_info = {
    DataFactory = factory.name, Pipeline = plan.name, RunId = run.id,
    TriggerType = trigger.type or (parent and "PipelineActivity" or "Manual"),
    TriggerId = trigger.id or run.id, TriggerName = trigger.name or (parent and parent.pipelineName or "Manual"),
    TriggerTime = trigger.time or runs.iso8601(start_time),
    GroupId = opts.group_id or (resume and resume.runGroupId) or run.id,
    TriggeredByPipelineName = parent and parent.pipelineName or json.null,
    TriggeredByPipelineRunId = parent and parent.runId or json.null,
    parameters = params_obj, globalParameters = json.object(factory.global_parameters),
  }
  run.trigger = json.object{scheduledTime = trigger.scheduled_time or trigger.time,
    startTime = trigger.time or run.pipeline_info.TriggerTime, outputs = trigger.outputs}

  local record = {
    runId = run.id, runGroupId = run.pipeline_info.GroupId, isLatest = true, pipelineName = plan.name,
    parameters = record_params,
    invokedBy = {id = run.pipeline_info.TriggerId, name = run.pipeline_info.TriggerName,
      invokedByType = run.pipeline_info.TriggerType,
      pipelineName = parent and parent.pipelineName or json.null,
      pipelineRunId = parent and parent.runId or json.null},
    runStart = runs.iso8601(start_time), runEnd = json.null, durationInMs = json.null,
    status = "InProgress", message = "", lastUpdated = runs.iso8601(start_time),
    annotations = L.dig(plan.entry.resource, "properties", "annotations") or json.array{},
    runDimensions = json.object{},
  }
  if resume then
    record.invokedBy = resume.invokedBy or record.invokedBy
    record.lastUpdated = runs.iso8601()
  end
  run.record = record
  run.store:put_pipeline_run(record, not parent and {origin = origin} or nil)
  run.group = groups.new(opts.group)
  local handle = {runId = run.id, record = record, run = run}
  -- another process may ask, through the store, for this run to be cancelled
  run.store:own(run.id, function(reason) handle:cancel(reason) end)
  run:emit{type = "pipeline", status = "InProgress", resumed = resume ~= nil}

  run.task = lufa.spawn(function()
    local frame = new_frame(run, nil, run.group, nil)
    local ok, final, failing = pcall(run.run_scope, run, plan.scope, frame)
    run.group:drain()
    local now = runs.wall_time()
    if not ok then
      record.message = "internal error: " .. tostring(final)
      final = "Failed"
    elseif run.group.cancelled then
      final = "Cancelled"
      record.message = "Pipeline run cancelled (" .. run.group.cancelled .. ")"
    elseif failing then
      record.message = string.format("Operation on target %s failed: %s", failing.name,
        failing.error and failing.error.message or failing.status)
    end
    record.status = final
    record.runEnd = runs.iso8601(now)
    record.lastUpdated = record.runEnd
    record.durationInMs = math.floor((now - start_time) * 1000 + 0.5)
    if run.return_value ~= nil then record.pipelineReturnValue = linked.redact(run.return_value) end
    run.store:put_pipeline_run(record)
    run.store:disown(run.id)
    run.group:close()
    run:emit{type = "pipeline", status = final, message = record.message, durationInMs = record.durationInMs}
    return record
  end)

  --- Cancel the run: running activities are cancelled (their cleanups run), nothing new starts.
  function handle.cancel(_, reason)
    if record.status == "InProgress" then
      record.status = "Canceling"
      run.store:put_pipeline_run(record)
      run.group:cancel(reason or "cancelled")
    end
  end
  --- Wait for the run to end; returns its pipeline run record.
  function handle.wait()
    return run.task:wait()
  end
  --- The pipeline's return value (after the run), or nil.
  function handle.return_value()
    return run.return_value
  end
  return handle
end

return M
