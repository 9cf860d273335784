--- ARMTemplateForFactory.json: a factory as the ARM template ADF's own Publish writes.
-- Resources are `Microsoft.DataFactory/factories/<kind>` named `[concat(parameters('factoryName'), '/Name')]`
-- (apiVersion 2018-06-01), listed in dependency order: linked services, datasets, pipelines, triggers, and
-- within one kind what is referenced comes before what references it. `dependsOn` names every resource of
-- the factory a resource references, as `[concat(variables('factoryId'), '/<kind>/Name')]`.
-- @module lufa.publish.template
local json = require "lufa.json"
local secret = require "lufa.secret"
local L = require "lufa.pipeline.lenient"
local parameters = require "lufa.publish.parameters"

local M = {}

M.API_VERSION = "2018-06-01"
M.SCHEMA = "http://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json#"

--- factory kind → ARM child resource type segment, in deployment order.
M.KINDS = {
  {kind = "linkedService", segment = "linkedServices"},
  {kind = "dataset", segment = "datasets"},
  {kind = "pipeline", segment = "pipelines"},
  {kind = "trigger", segment = "triggers"},
}
local SEGMENT = {}
for _, k in ipairs(M.KINDS) do SEGMENT[k.kind] = k.segment end
M.SEGMENT = SEGMENT

local REFERENCE_KIND = {
  linkedservicereference = "linkedService", datasetreference = "dataset", pipelinereference = "pipeline",
}

--- The resources of the factory that `entry` references: list of `{kind, name}` entries (names as the
-- factory spells them), each once, in the order they are first met.
function M.references(factory, entry)
  local found, seen = {}, {}
  local function walk(v)
    if type(v) ~= "table" or v == json.null or secret.is(v) then return end
    local t, name = L.get(v, "type"), L.get(v, "referenceName")
    local kind = type(t) == "string" and REFERENCE_KIND[t:lower()]
    if kind and type(name) == "string" then
      local target = factory:find(kind, name)
      if target and target ~= entry and not seen[target] then
        seen[target] = true
        found[#found + 1] = target
      end
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do walk(v[k]) end
  end
  walk(L.get(entry.resource, "properties"))
  return found
end

-- The entries of one kind, each after the entries of the same kind it references (load order otherwise).
local function ordered(factory, kind, refs)
  local out, state = {}, {}
  local function visit(entry)
    if state[entry] == "done" or state[entry] == "visiting" then return end
    state[entry] = "visiting"
    for _, r in ipairs(refs[entry]) do
      if r.kind == kind then visit(r) end
    end
    state[entry] = "done"
    out[#out + 1] = entry
  end
  for _, entry in ipairs(factory.order[kind]) do visit(entry) end
  return out
end

--- The ARM resource name expression and dependency expression of an entry.
function M.resource_name(entry)
  return "[concat(parameters('factoryName'), '/" .. entry.name .. "')]"
end
function M.dependency(entry)
  return "[concat(variables('factoryId'), '/" .. SEGMENT[entry.kind] .. "/" .. entry.name .. "')]"
end

-- Secrets outside linked services cannot become parameters the way ADF makes them.
local function stray_secrets(entry, problems)
  local function walk(v, path)
    if secret.is(v) then
      problems[#problems + 1] = {severity = "error", file = entry.file, path = path, message = string.format(
        "%s '%s' holds a SecureString; only linked services may hold secrets in a published factory " ..
        "(use a linked service or an AzureKeyVaultSecret reference)", entry.kind, entry.name)}
      return
    end
    if type(v) ~= "table" or v == json.null then return end
    for k, x in pairs(v) do
      walk(x, path .. (type(k) == "number" and string.format("[%d]", k - 1) or ("." .. tostring(k))))
    end
  end
  walk(L.get(entry.resource, "properties"), "$.properties")
end

-- ARM parameter types of ADF's global-parameter types; a Float has none and is written as it is.
local GLOBAL_TYPES = {string = "string", int = "int", bool = "bool", array = "array", object = "object"}

-- The factory resource ADF writes when the factory has global parameters: its location and each global
-- parameter's value become parameters (`dataFactory_location`, `dataFactory_properties_globalParameters_<n>_value`).
local function factory_resource(factory, template_params, params, problems)
  local file = factory.files[1]
  if not file then return nil end
  local doc, err = json.decode_file(file)
  if doc == nil then
    problems[#problems + 1] = {severity = "error", file = file, path = "$", message = err and err.message or "cannot read it"}
    return nil
  end
  local gp = L.dig(doc, "properties", "globalParameters")
  if not L.is_object(gp) or next(gp) == nil then return nil end
  local location = L.get(doc, "location")
  template_params.dataFactory_location = json.object{type = "string", defaultValue = location}
  params[#params + 1] = {name = "dataFactory_location", type = "string", defaultValue = location, value = location}
  local names = {}
  for n in pairs(gp) do names[#names + 1] = n end
  table.sort(names)
  local out = json.object{}
  for _, n in ipairs(names) do
    local spec = gp[n]
    local t, v = L.get(spec, "type"), L.get(spec, "value")
    local arm_type = type(t) == "string" and GLOBAL_TYPES[t:lower()]
    if arm_type then
      local pname = "dataFactory_properties_globalParameters_" .. n .. "_value"
      template_params[pname] = json.object{type = arm_type, defaultValue = v}
      params[#params + 1] = {name = pname, type = arm_type, defaultValue = v, value = v}
      out[n] = json.object{type = t, value = "[parameters('" .. pname .. "')]"}
    else
      out[n] = parameters.escape(spec)
    end
  end
  local properties = json.object{globalParameters = out}
  return json.object{name = "[parameters('factoryName')]", type = "Microsoft.DataFactory/factories",
    apiVersion = M.API_VERSION, location = "[parameters('dataFactory_location')]", properties = properties,
    dependsOn = json.array{}}, properties
end

--- Build the template.
-- @param factory a loaded factory
-- @param opts `name` (the factoryName parameter's default; default: the factory's name)
-- @return `{template = the JSON table, parameters = list (see lufa.publish.parameters), resources = list of
--   {entry, segment, properties, depends = entries, secret_paths = {"typeProperties.apiKey", …}},
--   factory_properties = the factory's own properties (global parameters) or nil, problems}`
function M.build(factory, opts)
  opts = opts or {}
  local problems, params, resources = {}, {}, {}
  local template_params = json.object{factoryName = json.object{type = "string", metadata = "Data Factory name",
    defaultValue = opts.name or factory.name}}
  local refs = {}
  for _, k in ipairs(M.KINDS) do
    for _, entry in ipairs(factory.order[k.kind]) do refs[entry] = M.references(factory, entry) end
  end
  local list = json.array{}
  local factory_res, factory_properties = factory_resource(factory, template_params, params, problems)
  if factory_res then list[1] = factory_res end
  for _, k in ipairs(M.KINDS) do
    for _, entry in ipairs(ordered(factory, k.kind, refs)) do
      local props = L.get(entry.resource, "properties")
      local copy = {}
      for key, v in pairs(props) do copy[key] = v end
      setmetatable(copy, getmetatable(props))
      local secret_paths = {}
      if k.kind == "linkedService" then
        local p = parameters.linked_service(entry)
        local _, tp_key = L.lookup(props, "typeProperties")
        for key, v in pairs(copy) do if key ~= tp_key then copy[key] = parameters.escape(v) end end
        if p.typeProperties then copy[tp_key] = p.typeProperties end
        for _, param in ipairs(p.parameters) do
          params[#params + 1] = param
          local spec = json.object{type = param.type, metadata = param.metadata, defaultValue = param.defaultValue}
          template_params[param.name] = spec
          if param.secure then secret_paths[#secret_paths + 1] = tp_key .. "." .. param.property end
        end
      else
        stray_secrets(entry, problems)
        copy = parameters.escape(copy)
      end
      local depends = json.array{}
      for _, r in ipairs(refs[entry]) do depends[#depends + 1] = M.dependency(r) end
      list[#list + 1] = json.object{name = M.resource_name(entry), type = "Microsoft.DataFactory/factories/" .. k.segment,
        apiVersion = M.API_VERSION, properties = copy, dependsOn = depends}
      resources[#resources + 1] = {entry = entry, segment = k.segment, properties = copy, depends = refs[entry],
        secret_paths = secret_paths}
    end
  end
  local template = json.object{
    ["$schema"] = M.SCHEMA,
    contentVersion = "1.0.0.0",
    parameters = template_params,
    variables = json.object{factoryId = "[concat('Microsoft.DataFactory/factories/', parameters('factoryName'))]"},
    resources = list,
  }
  return {template = template, parameters = params, resources = resources, problems = problems,
    factory_properties = factory_properties}
end

return M
