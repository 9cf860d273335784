--- Compiling a pipeline resource into a run plan, reporting every problem on the way.
-- The same pass serves validation (all problems at once, each with file and JSON path)
-- and running (the plan: activities per scope with parsed dependencies and policies).
-- @module lufa.pipeline.compile
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"
local linked = require "lufa.linked"
local expression = require "lufa.expression"
local suggest = require "lufa.suggest"

local M = {}

--- Most activities one pipeline may hold, counting those inside containers (ForEach, If, Switch, Until).
M.MAX_ACTIVITIES = 10000
M.CONDITIONS = {"Succeeded", "Failed", "Skipped", "Completed"}
M.PARAMETER_TYPES = {"String", "Int", "Float", "Bool", "Array", "Object", "SecureString"}
M.VARIABLE_TYPES = {"String", "Bool", "Boolean", "Array", "Integer"}
M.STATUSES_ON_INACTIVE = {"Succeeded", "Failed", "Skipped"}
-- Properties of an activity that never hold expressions (adf-pipelines.md §3.1).
local STRUCTURAL = {name = true, type = true, dependson = true, description = true,
  state = true, oninactivemarkas = true}
local FORBIDDEN_NAME_CHARS = "[%.%+%?/<>%*%%&:\\]"

--- A problem reporter bound to one file; `at(path)` gives one bound to a JSON path.
local Report = {}
Report.__index = Report

local function new_report(problems, file, path)
  return setmetatable({problems = problems, file = file, path = path or "$"}, Report)
end

--- Record an error at `subpath` (appended to the report's path).
function Report:error(subpath, fmt, ...)
  self.problems[#self.problems + 1] = {severity = "error", file = self.file,
    path = self.path .. (subpath or ""), message = string.format(fmt, ...)}
end

--- Record a warning at `subpath`.
function Report:warning(subpath, fmt, ...)
  self.problems[#self.problems + 1] = {severity = "warning", file = self.file,
    path = self.path .. (subpath or ""), message = string.format(fmt, ...)}
end

--- A reporter for a deeper path.
function Report:at(subpath)
  return new_report(self.problems, self.file, self.path .. subpath)
end

--- Check that `props[key]` is present; reports "requires …" otherwise.
-- @return the value
function Report:require(props, key, subpath)
  local v = L.get(props, key)
  if v == nil then
    self:error(subpath or ".typeProperties", "%s requires \"%s\"", self.activity_type or "this", key)
  end
  return v
end

M.new_report = new_report

local function key_path(k)
  if type(k) == "number" then return "[" .. (k - 1) .. "]" end
  if tostring(k):match("^[%a_][%w_]*$") then return "." .. k end
  return "['" .. tostring(k) .. "']"
end
M.key_path = key_path

-- Walk the expression-bearing parts of an activity, skipping inner activity lists.
local function each_reference(value, path, skip, fn)
  if type(value) ~= "table" or value == json.null or skip[value] then return end
  local t = L.get(value, "type")
  local rn = L.get(value, "referenceName")
  if type(t) == "string" and rn ~= nil then fn(t, rn, path) end
  for k, v in pairs(value) do
    each_reference(v, path .. key_path(k), skip, fn)
  end
end

local function parse_policy(raw, report, spec)
  local policy = {timeout = 7 * 86400, retry = 0, retry_interval = 30,
    secure_input = false, secure_output = false}
  if raw == nil then return policy end
  if not L.is_object(raw) then
    report:error(".policy", "policy must be an object")
    return policy
  end
  local function dynamic(v) return type(v) == "string" and v:sub(1, 1) == "@" end
  local timeout = L.get(raw, "timeout")
  if timeout ~= nil then
    if dynamic(timeout) or L.is_object(timeout) then
      policy.timeout_expr = timeout
    else
      local secs, why = L.timespan(timeout)
      if not secs then
        report:error(".policy.timeout", "bad timeout: %s", why)
      else
        policy.timeout = secs
      end
    end
  end
  local retry = L.get(raw, "retry")
  if retry ~= nil then
    if dynamic(retry) or L.is_object(retry) then
      policy.retry_expr = retry
    else
      local n = L.int(retry)
      if not n or n < 0 then
        report:error(".policy.retry", "bad retry: expected a whole number of retries (0 or more), got %s",
          json.encode(linked.redact(retry)))
      else
        policy.retry = n
      end
    end
  end
  local interval = L.get(raw, "retryIntervalInSeconds")
  if interval ~= nil then
    local n = L.number(interval)
    if not n or n < 0 then
      report:error(".policy.retryIntervalInSeconds",
        "bad retryIntervalInSeconds: expected a number of seconds (0 or more), got %s",
        json.encode(linked.redact(interval)))
    else
      policy.retry_interval = n
    end
  end
  for _, key in ipairs{"secureInput", "secureOutput"} do
    local v = L.get(raw, key)
    if v ~= nil then
      local b = L.bool(v)
      if b == nil then
        report:error(".policy." .. key, "bad %s: expected true or false", key)
      else
        policy[key == "secureInput" and "secure_input" or "secure_output"] = b
      end
    end
  end
  spec.has_policy = true
  return policy
end

--- Check a value against a declared parameter/variable type (after lenient coercion).
-- @return true, or false and what was expected
function M.value_matches(type_name, v)
  local t = type_name:lower()
  local jt = json.type(v)
  local secret = require "lufa.secret"
  if t == "string" or t == "securestring" then return jt == "string" or secret.is(v), "a string" end
  if t == "int" or t == "integer" then return jt == "integer", "an integer" end
  if t == "float" then return jt == "integer" or jt == "number", "a number" end
  if t == "bool" or t == "boolean" then return jt == "boolean", "true or false" end
  -- An empty Lua table can be either (JSON text keeps the difference; Lua tables cannot).
  local empty = type(v) == "table" and getmetatable(v) == nil and next(v) == nil
  if t == "array" then return jt == "array" or empty, "an array" end
  if t == "object" then return jt == "object" or empty, "an object" end
  return true
end

local function check_declarations(map, kind, allowed, report, path)
  local out, seen = {}, {}
  if map == nil then return out end
  if not L.is_object(map) then
    report:error(path, "%s must be an object mapping names to {type, defaultValue}", kind)
    return out
  end
  local names = {}
  for name in pairs(map) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local spec = map[name]
    local p = path .. key_path(name)
    local lower = name:lower()
    if seen[lower] then
      report:error(p, "duplicate %s name '%s' (same as '%s' ignoring letter case)", kind, name, seen[lower])
    end
    seen[lower] = name
    local t = L.get(spec, "type")
    local canonical = L.enum(t, allowed)
    if not canonical then
      report:error(p .. ".type", "bad %s type %s for '%s': expected one of %s", kind,
        t == nil and "(missing)" or ("'" .. tostring(t) .. "'"), name, table.concat(allowed, ", "))
    end
    local d = L.get(spec, "defaultValue")
    if canonical and d ~= nil and not (type(d) == "string" and d:sub(1, 1) == "@") then
      local ok, expected = M.value_matches(canonical, d)
      if not ok then
        report:error(p .. ".defaultValue", "default value of %s '%s' must be %s (type %s)",
          kind, name, expected, canonical)
      end
    end
    out[lower] = {name = name, type = canonical or "String", default = d}
  end
  return out
end

local function name_problems(report, subpath, name, what, max)
  if #name > max then report:error(subpath, "%s name '%s' is longer than %d characters", what, name, max) end
  if name:find(FORBIDDEN_NAME_CHARS) then
    report:error(subpath, "%s name '%s' must not contain any of . + ? / < > * %% & : \\", what, name)
  end
end

local compile_scope

-- A copy of `value` without the tables in `skip` (inner activity lists).
local function strip(value, skip)
  if type(value) ~= "table" or value == json.null then return value end
  local out = {}
  for k, v in pairs(value) do
    if not skip[v] then out[k] = strip(v, skip) end
  end
  return setmetatable(out, getmetatable(value))
end

local function compile_activity(ctx, raw, path, depth)
  local report = new_report(ctx.problems, ctx.file, path)
  report.pipeline_name = ctx.pipeline_name
  local spec = {raw = raw, path = path, file = ctx.file, deps = {}, scopes = {}}
  if not L.is_object(raw) then
    report:error("", "an activity must be an object")
    return nil
  end
  local name = L.get(raw, "name")
  if type(name) ~= "string" or name == "" then
    report:error(".name", "an activity needs a \"name\" string")
    name = "#" .. path
  else
    name_problems(report, ".name", name, "activity", 55)
  end
  spec.name = name
  local atype = L.get(raw, "type")
  spec.type = atype
  report.activity_type = type(atype) == "string" and atype or nil
  spec.description = L.get(raw, "description")
  spec.typeProperties = L.get(raw, "typeProperties") or json.object{}
  spec.linkedServiceName = L.get(raw, "linkedServiceName")
  spec.userProperties = L.get(raw, "userProperties")

  local state = L.get(raw, "state")
  spec.state = "Active"
  if state ~= nil then
    spec.state = L.enum(state, {"Active", "Inactive"})
    if not spec.state then
      report:error(".state", "bad state '%s': expected Active or Inactive", tostring(state))
      spec.state = "Active"
    end
  end
  local mark = L.get(raw, "onInactiveMarkAs")
  spec.inactive_status = "Succeeded"
  if mark ~= nil then
    spec.inactive_status = L.enum(mark, M.STATUSES_ON_INACTIVE)
    if not spec.inactive_status then
      report:error(".onInactiveMarkAs", "bad onInactiveMarkAs '%s': expected Succeeded, Failed or Skipped",
        tostring(mark))
      spec.inactive_status = "Succeeded"
    end
  end

  local deps = L.get(raw, "dependsOn")
  if deps ~= nil and not L.is_array(deps) then
    report:error(".dependsOn", "dependsOn must be an array of {activity, dependencyConditions}")
  else
    for i, d in L.items(deps) do
      local dp = ".dependsOn[" .. (i - 1) .. "]"
      local target = L.get(d, "activity")
      local conds = L.get(d, "dependencyConditions")
      local set = {}
      if type(target) ~= "string" then
        report:error(dp .. ".activity", "a dependency needs an \"activity\" name")
      end
      if not L.is_array(conds) or #conds == 0 then
        report:error(dp .. ".dependencyConditions",
          "a dependency needs a non-empty dependencyConditions array (Succeeded, Failed, Skipped, Completed)")
      else
        for j, c in ipairs(conds) do
          local canon = L.enum(c, M.CONDITIONS)
          if not canon then
            report:error(string.format("%s.dependencyConditions[%d]", dp, j - 1),
              "unknown dependency condition '%s': expected Succeeded, Failed, Skipped or Completed", tostring(c))
          else
            set[canon] = true
          end
        end
        if set.Completed and (set.Succeeded or set.Failed) then
          report:warning(dp .. ".dependencyConditions",
            "Completed already includes Succeeded and Failed (ADF's editor does not allow combining them)")
        end
      end
      if type(target) == "string" then
        spec.deps[#spec.deps + 1] = {name = target, conditions = set, path = path .. dp}
      end
    end
  end

  spec.policy = parse_policy(L.get(raw, "policy"), report, spec)

  local module
  if type(atype) ~= "string" or atype == "" then
    report:error(".type", "an activity needs a \"type\" string")
  else
    local ok, mod, canonical = pcall(ctx.registry.get, ctx.registry, atype)
    if not ok then
      report:error(".type", "activity type '%s' could not be loaded: %s", atype, tostring(mod))
    elseif not mod then
      if spec.state == "Inactive" then
        report:warning(".type", "unknown activity type '%s' (the activity is inactive, so it will not run)", atype)
      else
        report:error(".type", "unknown activity type '%s' (no module lufa.activities.%s and none registered)",
          atype, atype)
      end
    else
      module = mod
      spec.type = canonical or atype
    end
  end
  spec.module = module

  -- Inner activity lists (containers) are compiled as scopes of their own.
  local skip = {}
  if module and module.scopes then
    for _, s in ipairs(module.scopes(spec) or {}) do
      if s.activities ~= nil then
        if not L.is_array(s.activities) then
          report:error(s.path, "expected an array of activities")
        else
          skip[s.activities] = true
          if depth >= 1 then
            report:warning(s.path,
              "containers inside containers are not allowed by ADF (lufa runs them; use ExecutePipeline for ADF)")
          end
          spec.scopes[#spec.scopes + 1] = {path = s.path, key = s.key,
            list = s.activities, scope = compile_scope(ctx, s.activities, path .. s.path, depth + 1, spec)}
        end
      end
    end
  end

  -- Expressions: syntax and references, outside the structural fields and inner lists.
  if spec.state ~= "Inactive" then
    for k, v in pairs(raw) do
      if type(k) == "string" and not STRUCTURAL[k:lower()] and not skip[v] then
        local value = next(skip) and strip(v, skip) or v
        for _, p in ipairs(expression.check(value, path .. key_path(k))) do
          ctx.problems[#ctx.problems + 1] = {severity = "error", file = ctx.file, path = p.path,
            column = p.column, message = p.message}
        end
        local refs = expression.references(value, path .. key_path(k))
        local reported = {}
        for _, site in ipairs(refs.sites) do
          local once = site.kind .. "\0" .. site.name .. "\0" .. site.path
          if site.kind == "activity" then
            ctx.activity_refs[#ctx.activity_refs + 1] = {name = site.name, path = site.path, column = site.column}
          elseif reported[once] then
            -- Each name once per string.
          elseif site.kind == "variable" and not ctx.variables[site.name:lower()] then
            reported[once] = true
            ctx.problems[#ctx.problems + 1] = {severity = "error", file = ctx.file, path = site.path,
              column = site.column, message = string.format(
                "variables('%s') names a variable the pipeline does not declare%s", site.name,
                suggest.hint(site.name, ctx.variables))}
          elseif site.kind == "parameter" and ctx.parameters and not ctx.parameters[site.name:lower()] then
            reported[once] = true
            ctx.problems[#ctx.problems + 1] = {severity = "error", file = ctx.file, path = site.path,
              column = site.column, message = string.format(
                "pipeline().parameters.%s names a parameter the pipeline does not declare%s", site.name,
                suggest.hint(site.name, ctx.parameters))}
          end
        end
      end
    end
    each_reference(raw, path, skip, function(t, ref, p)
      local kinds = {linkedservicereference = "linkedService", datasetreference = "dataset",
        pipelinereference = "pipeline"}
      local kind = kinds[t:lower()]
      if kind then
        if type(ref) ~= "string" then
          report:error(p:sub(#path + 1) .. ".referenceName", "referenceName must be a string")
        elseif ref:sub(1, 1) ~= "@" and not ctx.factory:find(kind, ref) then
          local what = {linkedService = "linked service", dataset = "dataset", pipeline = "pipeline"}
          report:error(p:sub(#path + 1) .. ".referenceName", "reference to a missing %s '%s'%s", what[kind], ref,
            suggest.hint(ref, ctx.factory.order[kind] or {}))
        end
      end
    end)
    if module and module.validate then
      local ok, err = pcall(module.validate, spec, report)
      if not ok then report:error("", "validation of %s failed: %s", tostring(atype), tostring(err)) end
    end
  end
  return spec
end

-- Find a dependency cycle in one scope; returns the list of names or nil.
local function find_cycle(scope)
  local color, stack = {}, {}
  local function visit(spec)
    color[spec] = "grey"
    stack[#stack + 1] = spec.name
    for _, d in ipairs(spec.deps) do
      local target = d.target
      if target then
        if color[target] == "grey" then
          local cycle, start = {}, nil
          for i, n in ipairs(stack) do if n == target.name then start = i end end
          for i = start, #stack do cycle[#cycle + 1] = stack[i] end
          cycle[#cycle + 1] = target.name
          return cycle, spec
        elseif not color[target] then
          local c, at = visit(target)
          if c then return c, at end
        end
      end
    end
    stack[#stack] = nil
    color[spec] = "black"
  end
  for _, spec in ipairs(scope.list) do
    if not color[spec] then
      local c, at = visit(spec)
      if c then return c, at end
    end
  end
end

function compile_scope(ctx, raw_list, path, depth, container)
  local scope = {list = {}, by_name = {}, path = path, container = container}
  ctx.scopes[raw_list] = scope
  for i, raw in ipairs(raw_list) do
    local spec = compile_activity(ctx, raw, path .. "[" .. (i - 1) .. "]", depth)
    if spec then
      spec.scope = scope
      local lower = spec.name:lower()
      local other = ctx.all[lower]
      if other then
        local report = new_report(ctx.problems, ctx.file, spec.path)
        if other.name == spec.name then
          report:error(".name", "duplicate activity name '%s' (also at %s)", spec.name, other.path)
        else
          report:error(".name", "activity names '%s' and '%s' (at %s) differ only by letter case; " ..
            "names match ignoring case, so they collide", spec.name, other.name, other.path)
        end
      else
        ctx.all[lower] = spec
      end
      if not scope.by_name[lower] then scope.by_name[lower] = spec end
      scope.list[#scope.list + 1] = spec
    end
  end
  -- Resolve dependencies inside this scope.
  for _, spec in ipairs(scope.list) do
    local report = new_report(ctx.problems, ctx.file, "")
    for _, d in ipairs(spec.deps) do
      local target = scope.by_name[d.name:lower()]
      if target == spec then
        report:error(d.path .. ".activity", "activity '%s' depends on itself (dependency cycle)", spec.name)
      elseif target then
        d.target = target
        if target.name ~= d.name then
          report:warning(d.path .. ".activity",
            "dependsOn names '%s' but the activity is called '%s'; lufa matches names ignoring letter case",
            d.name, target.name)
        end
      else
        ctx.pending_deps[#ctx.pending_deps + 1] = {dep = d, spec = spec}
      end
    end
  end
  local cycle = find_cycle(scope)
  if cycle then
    local first = scope.by_name[cycle[1]:lower()]
    new_report(ctx.problems, ctx.file, first.path):error(".dependsOn",
      "dependency cycle: %s", table.concat(cycle, " -> "))
  end
  return scope
end

--- Compile one pipeline entry of a factory.
-- @param factory the factory
-- @param entry the pipeline entry `{name, resource, file}`
-- @param registry the activity registry to resolve types with
-- @return plan, problems (a list; the plan is usable only when no problem is an error)
local function too_many(file, count)
  return {severity = "error", file = file, path = ".properties.activities",
    message = string.format("%d activities, counting those inside containers; lufa runs at most %d per " ..
      "pipeline (ADF allows 80): split the pipeline with ExecutePipeline", count, M.MAX_ACTIVITIES)}
end

function M.pipeline(factory, entry, registry)
  local problems = {}
  local report = new_report(problems, entry.file, "$")
  local props = L.get(entry.resource, "properties") or {}
  name_problems(report, ".name", entry.name, "pipeline", 140)
  local ctx = {problems = problems, file = entry.file, factory = factory, registry = registry,
    all = {}, scopes = {}, activity_refs = {}, pending_deps = {}, pipeline_name = entry.name}
  local plan = {name = entry.name, entry = entry, file = entry.file}
  plan.parameters = check_declarations(L.get(props, "parameters"), "parameter", M.PARAMETER_TYPES,
    report, ".properties.parameters")
  plan.variables = check_declarations(L.get(props, "variables"), "variable", M.VARIABLE_TYPES,
    report, ".properties.variables")
  ctx.variables = plan.variables
  ctx.parameters = plan.parameters
  local acts, key = L.lookup(props, "activities")
  if acts == nil then
    report:error(".properties", "a pipeline needs an \"activities\" array")
    acts = json.array{}
  elseif not L.is_array(acts) then
    report:error(".properties." .. key, "activities must be an array")
    acts = json.array{}
  end
  if #acts > M.MAX_ACTIVITIES then  -- refused before compiling: a hostile file could hold a million
    problems[#problems + 1] = too_many(entry.file, #acts)
    acts = json.array{}
  end
  plan.scope = compile_scope(ctx, acts, "$.properties." .. (key or "activities"), 0, nil)
  plan.scopes = ctx.scopes
  plan.all = ctx.all
  for _, p in ipairs(ctx.pending_deps) do
    local r = new_report(problems, entry.file, "")
    local elsewhere = ctx.all[p.dep.name:lower()]
    if elsewhere then
      r:error(p.dep.path .. ".activity",
        "dependsOn names activity '%s', which is in another scope (dependencies must be in the same " ..
        "pipeline level or container branch)", p.dep.name)
    else
      r:error(p.dep.path .. ".activity", "dependsOn names a missing activity '%s'%s", p.dep.name,
        suggest.hint(p.dep.name, ctx.all))
    end
  end
  local reported = {}
  for _, ref in ipairs(ctx.activity_refs) do
    local once = ref.name .. "\0" .. ref.path
    if not ctx.all[ref.name:lower()] and not reported[once] then
      reported[once] = true
      problems[#problems + 1] = {severity = "error", file = entry.file, path = ref.path, column = ref.column,
        message = string.format("activity('%s') refers to a missing activity%s", ref.name,
          suggest.hint(ref.name, ctx.all))}
    end
  end
  local count = 0
  for _ in pairs(ctx.all) do count = count + 1 end
  if count > M.MAX_ACTIVITIES then
    problems[#problems + 1] = too_many(entry.file, count)
  elseif count > 80 then
    report:warning(".properties.activities", "%d activities; ADF allows at most 80 per pipeline", count)
  end
  return plan, problems
end

--- Compile an extra list of activities at run time (built by a module, not in the JSON).
function M.scope(plan, raw_list, path)
  local problems = {}
  local ctx = {problems = problems, file = plan.file, factory = plan.entry.factory,
    registry = plan.registry, all = {}, scopes = plan.scopes, activity_refs = {}, pending_deps = {},
    variables = plan.variables}
  local scope = compile_scope(ctx, raw_list, path or "$", 1, nil)
  return scope, problems
end

return M
