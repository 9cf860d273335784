--- A factory's triggers as schedules the scheduler can run: ScheduleTrigger, TumblingWindowTrigger and
-- BlobEventsTrigger, each checked (with file and JSON path) and compiled. Unknown trigger types are
-- reported, never guessed at.
-- @module lufa.schedule.triggers
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"

local M = {}

local function problem(list, entry, path, severity, fmt, ...)
  list[#list + 1] = {severity = severity, file = entry.file, path = path, message = string.format(fmt, ...),
    trigger = true}
end

local function pipeline_refs(entry, props, problems)
  local refs = {}
  local function add(p, path)
    local ref = L.get(p, "pipelineReference")
    local name = L.get(ref, "referenceName")
    if type(name) ~= "string" then
      problem(problems, entry, path .. ".pipelineReference", "error", "a trigger's pipeline needs a pipelineReference " ..
        "with a referenceName")
      return
    end
    refs[#refs + 1] = {name = name, parameters = L.get(p, "parameters") or json.object{}, path = path}
  end
  local list, single = L.get(props, "pipelines"), L.get(props, "pipeline")
  if L.is_array(list) then
    for i, p in ipairs(list) do add(p, string.format("$.properties.pipelines[%d]", i - 1)) end
  end
  if single ~= nil then add(single, "$.properties.pipeline") end
  return refs
end

local function relative_problems(entry, base, list, problems)
  for _, p in ipairs(list or {}) do
    problem(problems, entry, base .. (p.path or ""), p.severity or "error", "%s", p.message)
  end
end

-- "/container/blobs/prefix" → container, prefix
local function split_begins(v)
  local container, rest = tostring(v):match("^/([^/]+)/blobs/(.*)$")
  return container, rest
end

local COMPILERS = {}

COMPILERS.scheduletrigger = function(s, entry, tp, problems)
  local recurrence = require "lufa.schedule.recurrence"
  local rec = L.get(tp, "recurrence")
  if not L.is_object(rec) then
    problem(problems, entry, "$.properties.typeProperties", "error", "a ScheduleTrigger needs a recurrence object")
    return
  end
  local compiled, ps = recurrence.compile(rec)
  relative_problems(entry, "$.properties.typeProperties.recurrence", ps, problems)
  s.plan, s.zone = compiled, compiled and compiled.zone
end

COMPILERS.tumblingwindowtrigger = function(s, entry, tp, problems)
  local tumbling = require "lufa.schedule.tumbling"
  local tw, ps = tumbling.compile(tp)
  relative_problems(entry, "$.properties.typeProperties", ps, problems)
  s.plan = tw
end

COMPILERS.blobeventstrigger = function(s, entry, tp, problems)
  local begins, ends = L.get(tp, "blobPathBeginsWith"), L.get(tp, "blobPathEndsWith")
  if begins == nil and ends == nil then
    problem(problems, entry, "$.properties.typeProperties", "error",
      "a BlobEventsTrigger needs blobPathBeginsWith or blobPathEndsWith (or both)")
  end
  local container, prefix
  if begins ~= nil then
    container, prefix = split_begins(begins)
    if not container then
      problem(problems, entry, "$.properties.typeProperties.blobPathBeginsWith", "error",
        "expected '/<container>/blobs/<prefix>', got '%s'", tostring(begins))
    end
  elseif type(ends) == "string" then
    container = ends:match("^/([^/]+)/blobs/")
    if not container then
      problem(problems, entry, "$.properties.typeProperties.blobPathEndsWith", "error", "without blobPathBeginsWith, " ..
        "blobPathEndsWith must name the container: '/<container>/blobs/<suffix>', got '%s'", ends)
    end
    ends = ends:gsub("^/[^/]+/blobs/", "")
  end
  local events = L.get(tp, "events")
  local created = false
  if L.is_array(events) then
    for i, e in ipairs(events) do
      if e == "Microsoft.Storage.BlobCreated" then created = true
      elseif e ~= "Microsoft.Storage.BlobDeleted" then
        problem(problems, entry, string.format("$.properties.typeProperties.events[%d]", i - 1), "error",
          "unknown event '%s' (expected Microsoft.Storage.BlobCreated or Microsoft.Storage.BlobDeleted)", tostring(e))
      end
    end
  else
    problem(problems, entry, "$.properties.typeProperties.events", "error",
      "a BlobEventsTrigger needs events, e.g. [\"Microsoft.Storage.BlobCreated\"]")
  end
  if L.is_array(events) and not created then
    problem(problems, entry, "$.properties.typeProperties.events", "warning",
      "lufa fires BlobEventsTriggers on created blobs only (it lists the container; deletions are not seen)")
  end
  local scope = L.get(tp, "scope")
  s.blob = {container = container, prefix = prefix or "", suffix = type(ends) == "string" and ends or nil,
    ignore_empty = L.bool(L.get(tp, "ignoreEmptyBlobs")) == true,
    account = type(scope) == "string" and scope:match("/storageAccounts/([^/]+)") or nil,
    linked_service = L.get(tp, "linkedServiceName")}
end

--- The schedule of one trigger entry: `{name, kind, file, runtime_state, pipelines, plan, zone, blob}`, and
-- its problems (appended to `problems`, each with `trigger = true`).
function M.compile(factory, entry, problems)
  local props = L.get(entry.resource, "properties") or {}
  local kind = L.get(props, "type")
  local s = {name = entry.name, kind = kind, file = entry.file, runtime_state = L.get(props, "runtimeState") or "Stopped"}
  local compiler = type(kind) == "string" and COMPILERS[kind:lower()]
  if not compiler then
    problem(problems, entry, "$.properties.type", "warning", "lufa does not run triggers of type '%s' (it runs " ..
      "ScheduleTrigger, TumblingWindowTrigger and BlobEventsTrigger)", tostring(kind))
    return nil
  end
  s.kind = ({scheduletrigger = "ScheduleTrigger", tumblingwindowtrigger = "TumblingWindowTrigger",
    blobeventstrigger = "BlobEventsTrigger"})[kind:lower()]
  local state = s.runtime_state
  if state ~= "Started" and state ~= "Stopped" and state ~= "Disabled" then
    problem(problems, entry, "$.properties.runtimeState", "error", "runtimeState must be Started, Stopped or Disabled, got '%s'",
      tostring(state))
  end
  s.pipelines = pipeline_refs(entry, props, problems)
  for _, p in ipairs(s.pipelines) do
    if not factory:find("pipeline", p.name) then
      problem(problems, entry, p.path .. ".pipelineReference.referenceName", "error",
        "reference to a missing pipeline '%s' (the factory has: %s)", p.name, table.concat(factory:pipelines(), ", "))
    end
  end
  if #s.pipelines == 0 then
    problem(problems, entry, "$.properties", "error", "the trigger starts no pipeline (pipelines[] is empty)")
  end
  local tp = L.get(props, "typeProperties") or {}
  compiler(s, entry, tp, problems)
  return s
end

--- Every trigger of a factory: schedules (those that compiled without errors) and all problems.
function M.load(factory)
  local list, problems = {}, {}
  for _, entry in ipairs(factory.order.trigger) do
    local before = #problems
    local s = M.compile(factory, entry, problems)
    local bad = false
    for i = before + 1, #problems do if problems[i].severity == "error" then bad = true end end
    if s and not bad then list[#list + 1] = s end
  end
  return list, problems
end

return M
