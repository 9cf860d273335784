--- Deploying a published factory through Azure Resource Manager, as ADF's CI/CD guidance does it:
-- the factory is PUT, the started triggers the deployment changes are stopped, linked services,
-- datasets, pipelines and triggers are PUT in dependency order, and the triggers the factory marks
-- `Started` are started again. `--dry-run` GETs each resource and shows the difference instead.
-- What is PUT is the template itself, its expressions evaluated with the parameter values, so a
-- deployment checks the template as much as the factory.
-- @module lufa.publish.deploy
local json = require "lufa.json"
local secret = require "lufa.secret"
local L = require "lufa.pipeline.lenient"
local arm = require "lufa.publish.arm"
local diff = require "lufa.publish.diff"
local view = require "lufa.cli.view"

local stdout, stderr = view.out, view.err

local M = {}

--- The value of a template string: `[parameters('p')]`, `[concat(parameters('factoryName'), '/N')]`, or
-- `[[…` (a literal '['); other strings as they are.
-- @param s the string
-- @param params name → value
-- @return the value; raises on an expression lufa does not write or an unknown parameter
function M.expression(s, params)
  if s:sub(1, 2) == "[[" then return s:sub(2) end
  if s:sub(1, 1) ~= "[" or s:sub(-1) ~= "]" then return s end
  local p = s:match("^%[parameters%('([^']+)'%)%]$")
  if p then
    if params[p] == nil then error(string.format("the template uses parameter '%s', which has no value", p), 0) end
    return params[p]
  end
  local q, rest = s:match("^%[concat%(parameters%('([^']+)'%), '([^']*)'%)%]$")
  if q then return tostring(M.expression("[parameters('" .. q .. "')]", params)) .. rest end
  error(string.format("unsupported template expression %s", s), 0)
end

--- A JSON value with every template expression evaluated (secrets stay lufa.secret values).
function M.evaluate(v, params)
  if type(v) == "string" then return M.expression(v, params) end
  if type(v) ~= "table" or v == json.null or secret.is(v) then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = M.evaluate(x, params) end
  return setmetatable(out, getmetatable(v))
end

-- Parameter values: the factory's own, replaced by those of a parameters file.
local function parameter_values(built, o)
  local values = {factoryName = o.factory}
  for _, p in ipairs(built.parameters) do values[p.name] = p.value end
  if o.parameters then
    local doc, err = json.decode_file(o.parameters)
    if doc == nil then return nil, string.format("%s: %s", o.parameters, err and err.message or "cannot read it") end
    local list = L.get(doc, "parameters")
    if not L.is_object(list) then return nil, o.parameters .. ": $.parameters: expected an object of parameters" end
    for name, spec in pairs(list) do
      local v = L.get(spec, "value")
      if v == nil then return nil, string.format("%s: $.parameters.%s: expected {\"value\": …}", o.parameters, name) end
      if name ~= "factoryName" and v ~= "" then values[name] = v end
    end
  end
  local missing = {}
  for _, p in ipairs(built.parameters) do
    local v = values[p.name]
    if p.secure and not secret.is(v) then
      if v == nil or v == "" then missing[#missing + 1] = p.name else values[p.name] = secret(tostring(v)) end
    end
  end
  if #missing > 0 then
    return nil, "no value for the secure parameter(s) " .. table.concat(missing, ", ") .. " (give them in --parameters FILE)"
  end
  return values
end

local function started(properties)
  local s = L.get(properties, "runtimeState")
  return type(s) == "string" and s:lower() == "started"
end

-- The plan: one step per resource with its body and what Azure holds now.
local function plan(client, built, values)
  local steps = {}
  for _, r in ipairs(built.resources) do
    local ok, body = pcall(M.evaluate, r.properties, values)
    if not ok then return nil, string.format("%s '%s': %s", r.entry.kind, r.entry.name, body) end
    local remote, err = client:get(r.segment, r.entry.name)
    if remote == nil then return nil, tostring(err) end
    steps[#steps + 1] = {resource = r, body = body, remote = remote or nil,
      changes = diff.properties(remote and remote.properties or nil, body, r.secret_paths)}
  end
  return steps
end

-- Resources in Azure that the factory does not have (left alone, but shown).
local function extras(client, built)
  local lines = {}
  local known = {}
  for _, r in ipairs(built.resources) do known[r.segment .. "/" .. r.entry.name:lower()] = true end
  for _, segment in ipairs{"linkedServices", "datasets", "pipelines", "triggers"} do
    local doc = client:call("GET", client:path(segment))
    for _, item in ipairs(type(doc) == "table" and doc.value or {}) do
      if type(item.name) == "string" and not known[segment .. "/" .. item.name:lower()] then
        lines[#lines + 1] = string.format("? %s %s is in Azure but not in the factory (left as it is)\n", segment, item.name)
      end
    end
  end
  return lines
end

-- The factory's PUT body: its location, tags and identity as Azure has them, and the global parameters of
-- the template (else those Azure has).
local function factory_body(remote, built, values, o)
  local body = json.object{location = o.location or (remote and remote.location) or values.dataFactory_location,
    properties = json.object{}}
  if remote then
    if remote.tags then body.tags = remote.tags end
    if remote.identity then body.identity = remote.identity end
    local gp = type(remote.properties) == "table" and remote.properties.globalParameters
    if gp then body.properties.globalParameters = gp end
  end
  if built.factory_properties then
    body.properties.globalParameters = M.evaluate(built.factory_properties.globalParameters, values)
  end
  return body
end

--- `lufa publish FACTORY --subscription S --resource-group G --factory F [--dry-run]`.
-- @return the exit status
function M.main(factory, built, o, ctx)
  local credential = require("lufa.aad").default()
  local client = arm.client{subscription = o.subscription, resource_group = o.resource_group, factory = o.factory,
    credential = credential, base_url = o.arm_url}
  local values, verr = parameter_values(built, o)
  if not values then return ctx.die("%s", verr) end
  local remote_factory, ferr = client:get()
  if remote_factory == nil then return ctx.die("%s", tostring(ferr)) end
  if not remote_factory and not (o.location or values.dataFactory_location) and not o.dry_run then
    return ctx.die("factory %s does not exist in resource group %s; give --location to create it", o.factory,
      o.resource_group)
  end
  local steps, perr
  if remote_factory then
    steps, perr = plan(client, built, values)
    if not steps then return ctx.die("%s", perr) end
  else
    steps = {}
    for _, r in ipairs(built.resources) do
      local ok, body = pcall(M.evaluate, r.properties, values)
      if not ok then return ctx.die("%s '%s': %s", r.entry.kind, r.entry.name, body) end
      steps[#steps + 1] = {resource = r, body = body}
    end
  end
  local header = string.format("factory %s (resource group %s)%s\n", o.factory, o.resource_group,
    remote_factory and "" or " does not exist yet: everything is new")
  if o.dry_run then
    stdout(header)
    local changed = 0
    if built.factory_properties and remote_factory then
      local want = factory_body(remote_factory, built, values, o).properties
      local have = json.object{globalParameters = type(remote_factory.properties) == "table" and
        remote_factory.properties.globalParameters or nil}
      local changes = diff.properties(have, want, {})
      stdout(diff.format("factory", o.factory, changes))
      if #changes > 0 then changed = changed + 1 end
    end
    for _, s in ipairs(steps) do
      stdout(diff.format(s.resource.entry.kind, s.resource.entry.name, s.changes))
      if s.changes == nil or #s.changes > 0 then changed = changed + 1 end
    end
    if remote_factory then for _, line in ipairs(extras(client, built)) do stdout(line) end end
    local total = #steps + ((built.factory_properties and remote_factory) and 1 or 0)
    stdout(string.format("dry run: %d of %d resource(s) would change; nothing was changed\n", changed, total))
    return 0
  end
  local put_ok, err = client:call("PUT", client:path(), factory_body(remote_factory or nil, built, values, o))
  if not put_ok then return ctx.die("%s", tostring(err)) end
  -- Started triggers are stopped before anything changes, as ADF requires for the triggers it updates.
  local stopped = {}
  for _, s in ipairs(steps) do
    if s.resource.segment == "triggers" and s.remote and started(s.remote.properties) then
      local ok, serr = client:call("POST", client:path("triggers", s.resource.entry.name, "stop"))
      if not ok then return ctx.die("%s", tostring(serr)) end
      stopped[#stopped + 1] = s.resource.entry.name
      stderr(string.format("lufa: stopped trigger %s for the deployment\n", s.resource.entry.name))
    end
  end
  local function restart_stopped()
    for _, name in ipairs(stopped) do client:call("POST", client:path("triggers", name, "start")) end
  end
  for _, s in ipairs(steps) do
    local r = s.resource
    local ok, put_err = client:call("PUT", client:path(r.segment, r.entry.name),
      json.object{name = r.entry.name, properties = s.body})
    if not ok then
      restart_stopped()
      return ctx.die("deployment stopped at %s '%s' (%s): %s", r.entry.kind, r.entry.name, r.entry.file,
        tostring(put_err))
    end
    local what = s.changes == nil and "created" or (#s.changes == 0 and "unchanged" or "updated")
    stdout(string.format("%s %s %s\n", what, r.segment, r.entry.name))
  end
  for _, s in ipairs(steps) do
    if s.resource.segment == "triggers" and started(s.body) then
      local ok, serr = client:call("POST", client:path("triggers", s.resource.entry.name, "start"))
      if not ok then return ctx.die("%s", tostring(serr)) end
      stdout(string.format("started trigger %s\n", s.resource.entry.name))
    end
  end
  stdout(string.format("deployed %d resource(s) to factory %s\n", #steps, o.factory))
  return 0
end

return M
