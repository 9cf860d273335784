--- `lufa run --dry-run`: what a run would do, and nothing of it. The parameters as the run would get them,
-- the linked services it uses (secrets redacted), the activities in execution order (those of a step may
-- run at the same time) with their dependencies, and every remote call each would make, with the
-- expressions resolved that can be resolved before anything runs. No request is sent, no run recorded.
-- Activity modules describe their calls with an optional `dry_run(activity, env)` returning lines.
-- @module lufa.cli.dryrun
local json = require "lufa.json"
local redact = require "lufa.redact"
local expression = require "lufa.expression"
local linked = require "lufa.linked"
local L = require "lufa.pipeline.lenient"
local runner = require "lufa.pipeline.run"

local M = {}

-- What activity types without a dry_run of their own do, by type.
local LOCAL = {
  wait = "waits", setvariable = "sets a variable", appendvariable = "appends to a variable",
  fail = "fails the run on purpose", filter = "filters an array", foreach = "runs its activities for each item",
  ifcondition = "runs one of two branches", switch = "runs one of its cases", ["until"] = "repeats its activities",
  executepipeline = "runs another pipeline of the factory",
}

-- Property names that hold credentials even when a factory writes them as plain strings.
local CREDENTIAL = {apikey = true, serviceprincipalkey = true, password = true, accountkey = true, sastoken = true,
  clientsecret = true, secret = true, token = true, encryptedcredential = true, key = true, accesskey = true}

-- A copy of a JSON value fit to print: SecureStrings and credential-named properties redacted.
local function masked(v)
  if type(v) ~= "table" or v == json.null then return v end
  local copy = {}
  for k, x in pairs(v) do
    if type(k) == "string" and CREDENTIAL[k:lower()] and x ~= json.null then copy[k] = "<redacted>"
    else copy[k] = masked(x) end
  end
  return setmetatable(copy, getmetatable(v))
end

local function show(v)
  if type(v) == "string" then return redact.text(v) end
  if require("lufa.secret").is(v) then return tostring(v) end
  return redact.text(json.encode(masked(linked.redact(linked.protect(v))), {sort_keys = true}))
end

-- Execution steps of one scope: each activity's step is one more than its latest dependency's.
local function steps(scope)
  local step = {}
  local function of(spec, seen)
    if step[spec] then return step[spec] end
    seen = seen or {}
    if seen[spec] then return 1 end
    seen[spec] = true
    local s = 1
    for _, d in ipairs(spec.deps) do
      if d.target then s = math.max(s, of(d.target, seen) + 1) end
    end
    step[spec] = s
    return s
  end
  local order = {}
  for i, spec in ipairs(scope.list) do order[i] = {spec = spec, step = of(spec), index = i} end
  table.sort(order, function(a, b)
    if a.step ~= b.step then return a.step < b.step end
    return a.index < b.index
  end)
  return order
end

local function conditions(d)
  local list = {}
  for c in pairs(d.conditions or {}) do list[#list + 1] = c end
  table.sort(list)
  return table.concat(list, "|")
end

--- Prints the dry run of pipeline `name` through `out(text)`. @return exit status (0, or 2 for an
-- unknown or invalid pipeline or unusable parameters)
function M.run(factory, name, params, out, err)
  local plan, problems = factory:plan(name)
  local pipeline = require "lufa.pipeline"
  if not plan then
    err(string.format("lufa: the factory has no pipeline '%s' (it has: %s)\n", tostring(name),
      table.concat(factory:pipelines(), ", ")))
    return 2
  end
  err(pipeline.format_problems(problems))
  for _, p in ipairs(problems) do if p.severity == "error" then return 2 end end

  out(string.format("dry run of pipeline %s: nothing is called and nothing is recorded\n", plan.name))
  -- parameters, converted as a run converts them
  local values = json.object{}
  local names = {}
  for lower in pairs(plan.parameters) do names[#names + 1] = lower end
  table.sort(names)
  if #names > 0 then out("parameters:\n") end
  local supplied = {}
  for k, v in pairs(params or {}) do
    if not plan.parameters[k:lower()] then
      err(string.format("lufa: pipeline '%s' has no parameter '%s'\n", plan.name, k))
      return 2
    end
    supplied[k:lower()] = v
  end
  for _, lower in ipairs(names) do
    local decl = plan.parameters[lower]
    local v = supplied[lower]
    local source = "given"
    if v == nil then v, source = decl.default, "default" end
    if v == nil then
      out(string.format("  %s (%s): no value — a run needs --param %s=VALUE\n", decl.name, decl.type, decl.name))
    else
      local value, expected = runner.coerce_parameter(decl, linked.protect(v))
      if value == nil then
        err(string.format("lufa: parameter '%s' must be %s (type %s)\n", decl.name, expected, decl.type))
        return 2
      end
      values[decl.name] = value
      out(string.format("  %s (%s) = %s  [%s]\n", decl.name, decl.type, show(value), source))
    end
  end

  local scope = {pipeline = {DataFactory = factory.name, Pipeline = plan.name, RunId = "(dry run)",
    parameters = values, globalParameters = json.object(factory.global_parameters)}}
  local env = {}
  --- The value of `v` with the expressions that can be resolved before the run resolved, shown.
  function env.value(v)
    local ok, r = pcall(expression.evaluate, v, scope)
    return show(ok and r or v)
  end
  --- The typeProperties of a linked service (evaluated, secrets redacted), its type; or nil, why.
  function env.linked(ref)
    local svc, lerr = linked.resolve(factory, ref, function(v, extra)
      local s = scope
      if extra then s = setmetatable(extra, {__index = scope}) end
      local ok, r = pcall(expression.evaluate, v, s)
      return ok and r or v
    end)
    if not svc then return nil, lerr and lerr.message end
    return linked.redact(linked.protect(svc.properties)), svc.type, svc.name
  end
  function env.property(activity, key) return env.value(L.get(activity.typeProperties, key)) end

  -- linked services the pipeline's activities name
  local used, used_order = {}, {}
  local function collect(list)
    for _, spec in ipairs(list) do
      for _, ref in ipairs{spec.linkedServiceName,
          L.get(spec.typeProperties, "trainedModelLinkedServiceName")} do
        local n = ref and linked.reference_name(ref)
        if n and not used[n:lower()] then used[n:lower()] = true; used_order[#used_order + 1] = n end
      end
      for _, inner in ipairs(spec.scopes or {}) do collect(inner.scope.list) end
    end
  end
  collect(plan.scope.list)
  if #used_order > 0 then out("linked services:\n") end
  for _, n in ipairs(used_order) do
    local props, ltype = env.linked(n)
    out(string.format("  %s (%s): %s\n", n, tostring(ltype or "?"), props and show(props) or "cannot be resolved"))
  end

  out("activities, in execution order (those of one step may run at the same time):\n")
  local function walk(list_scope, indent)
    for _, item in ipairs(steps(list_scope)) do
      local spec = item.spec
      local after = {}
      for _, d in ipairs(spec.deps) do after[#after + 1] = d.name .. " " .. conditions(d) end
      out(string.format("%s%d. %s (%s)%s%s%s\n", indent, item.step, spec.name, tostring(spec.type),
        spec.linkedServiceName and (" via " .. tostring(linked.reference_name(spec.linkedServiceName))) or "",
        #after > 0 and (" after " .. table.concat(after, ", ")) or "",
        spec.state == "Inactive" and ("  [inactive: marked " .. spec.inactive_status .. "]") or ""))
      local module = spec.module
      local lines
      if spec.state ~= "Inactive" and module and module.dry_run then
        local ok, r = pcall(module.dry_run, spec, env)
        lines = ok and r or {"(cannot describe its calls: " .. tostring(r) .. ")"}
      elseif spec.state ~= "Inactive" then
        local what = LOCAL[tostring(spec.type):lower()]
        lines = {what and (what .. "; no remote call") or "a custom activity: its calls cannot be listed in advance"}
      end
      for _, line in ipairs(lines or {}) do out(indent .. "     " .. redact.text(line) .. "\n") end
      for _, inner in ipairs(spec.scopes or {}) do
        out(string.format("%s     %s:\n", indent, inner.key or inner.path))
        walk(inner.scope, indent .. "       ")
      end
    end
  end
  walk(plan.scope, "  ")
  return 0
end

return M
