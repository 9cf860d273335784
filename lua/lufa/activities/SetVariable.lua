--- SetVariable: sets a pipeline variable, or the pipeline return value
-- (`variableName: pipelineReturnValue` with `setSystemVariable: true`).
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"

local M = {}

-- Only the run's variables change: a rerun runs it again rather than reusing its recorded output.
M.replay = true

local function is_return_value(tp)
  local name = L.get(tp, "variableName")
  return type(name) == "string" and name:lower() == "pipelinereturnvalue"
    and L.bool(L.get(tp, "setSystemVariable")) == true
end

function M.validate(activity, report)
  local tp = activity.typeProperties
  local name = report:require(tp, "variableName")
  if L.get(tp, "value") == nil and not is_return_value(tp) then
    report:error(".typeProperties", "SetVariable requires \"value\"")
  end
  if type(name) ~= "string" or is_return_value(tp) then return end
  local refs = require("lufa.expression").references(L.get(tp, "value") or "")
  local vars = refs and (refs.variables or {}) or {}
  for _, v in ipairs(vars) do
    if v:lower() == name:lower() then
      report:error(".typeProperties.value",
        "SetVariable value may not reference the variable being set ('%s'); use a second variable", name)
    end
  end
end

local CONTENT_TYPES = {string = true, expression = true, int = true, float = true, boolean = true,
  bool = true, array = true, object = true, null = true}

-- The return value list [{key, value = {type, content}}] as an object; only the
-- Expression items are evaluated (ADF's typed return-value entries).
local function return_value(ctx, list)
  local out = json.object{}
  for _, item in L.items(list) do
    local key = L.get(item, "key")
    local v = L.get(item, "value")
    local t = (L.get(v, "type") or "String"):lower()
    local content = L.get(v, "content")
    if not CONTENT_TYPES[t] then t = "string" end
    if t == "null" then content = json.null
    elseif t == "expression" then content = ctx:eval(content)
    elseif t == "object" then content = return_value(ctx, content)
    elseif t == "int" then content = L.int(content) or content
    elseif t == "boolean" or t == "bool" then
      local b = L.bool(content)
      if b ~= nil then content = b end
    end
    if content == nil then content = json.null end
    if type(key) == "string" then out[key] = content end
  end
  return out
end

function M.input(ctx, activity)
  local tp = activity.typeProperties
  if is_return_value(tp) then
    return json.object{variableName = "pipelineReturnValue", setSystemVariable = true,
      value = return_value(ctx, L.get(tp, "value"))}
  end
  return ctx:eval(tp)
end

function M.run(ctx)
  local tp = ctx.properties
  local name = L.get(tp, "variableName")
  if is_return_value(tp) then
    local value = L.get(tp, "value")
    ctx:set_return_value(value)
    return {name = "pipelineReturnValue", value = value}
  end
  local value = L.get(tp, "value")
  if value == nil then value = json.null end
  ctx:set_variable(name, value)
  return {name = name, value = value}
end

return M
