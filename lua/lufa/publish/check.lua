--- What would not work in Azure Data Factory: the refusals of `lufa publish`.
-- A factory is published unchanged, so everything that only lufa understands is refused with its file and
-- JSON path: activity types ADF does not have (Lua activity modules), lufa's own properties (an AzureML
-- linked service's `authorityHost` and `requestTimeout`, a BlobEventsTrigger's `linkedServiceName`), and
-- resources changed by an override file, which is local by nature.
-- @module lufa.publish.check
local L = require "lufa.pipeline.lenient"
local activities = require "lufa.activities"

local M = {}

--- The activity types of ADF (2018-06-01), lower-cased; anything else is lufa's own.
M.ADF_ACTIVITY_TYPES = {}
for _, t in ipairs{
  "AppendVariable", "AzureDataExplorerCommand", "AzureFunctionActivity", "AzureMLBatchExecution",
  "AzureMLExecutePipeline", "AzureMLUpdateResource", "Copy", "Custom", "DataLakeAnalyticsU-SQL",
  "DatabricksJob", "DatabricksNotebook", "DatabricksSparkJar", "DatabricksSparkPython", "Delete",
  "ExecuteDataFlow", "ExecutePipeline", "ExecuteSSISPackage", "ExecuteWranglingDataflow", "Fail", "Filter",
  "ForEach", "GetMetadata", "HDInsightHive", "HDInsightMapReduce", "HDInsightPig", "HDInsightSpark",
  "HDInsightStreaming", "IfCondition", "Lookup", "Script", "SetVariable", "SparkJob",
  "SqlServerStoredProcedure", "SynapseNotebook", "Switch", "Until", "Validation", "Wait", "WebActivity",
  "WebHook",
} do M.ADF_ACTIVITY_TYPES[t:lower()] = t end

-- Stands for an ADF activity type that lufa does not run itself (Copy, Lookup, …): it is published, not run.
local PUBLISHED_ONLY = {published_only = true, run = function(_, activity)
  error(string.format("activity type '%s' runs in Azure Data Factory, not in lufa", tostring(activity.type)), 0)
end}

--- A registry with the given folders of Lua activity modules that also knows every ADF activity type lufa
-- does not run, so that a factory using them validates for publishing (a folder's module still comes first).
function M.registry(folders)
  local registry = activities.new(activities.root)
  for _, dir in ipairs(folders or {}) do registry:add_folder(dir) end
  for _, t in pairs(M.ADF_ACTIVITY_TYPES) do
    if not registry:get(t) then registry:register(t, PUBLISHED_ONLY) end
  end
  return registry
end

-- typeProperties keys lufa adds to ADF's linked-service types.
local LINKED_EXTENSIONS = {
  azureml = {authorityHost = "lufa's Azure AD authority for local stand-ins",
    requestTimeout = "lufa's time limit for one request to the service"},
}

-- typeProperties keys lufa adds to ADF's trigger types.
local TRIGGER_EXTENSIONS = {
  blobeventstrigger = {linkedServiceName = "lufa polls the container through this linked service; ADF uses Event Grid"},
}

local function refuse(list, file, path, message)
  list[#list + 1] = {severity = "error", file = file, path = path, message = message}
end

-- The activities nested in a container activity, with their JSON paths.
local function children(activity, path, visit)
  local tp = L.get(activity, "typeProperties")
  if type(tp) ~= "table" then return end
  local tpath = path .. ".typeProperties"
  for _, key in ipairs{"activities", "ifTrueActivities", "ifFalseActivities", "defaultActivities"} do
    local list, spelled = L.lookup(tp, key)
    if L.is_array(list) then visit(list, tpath .. "." .. (spelled or key)) end
  end
  local cases, spelled = L.lookup(tp, "cases")
  if L.is_array(cases) then
    for i, case in ipairs(cases) do
      local list, key = L.lookup(case, "activities")
      if L.is_array(list) then
        visit(list, string.format("%s.%s[%d].%s", tpath, spelled or "cases", i - 1, key or "activities"))
      end
    end
  end
end

local function check_activities(list, path, file, registry, problems)
  for i, activity in ipairs(list) do
    local apath = string.format("%s[%d]", path, i - 1)
    local t = L.get(activity, "type")
    local name = tostring(L.get(activity, "name") or "?")
    local mod = registry and type(t) == "string" and registry:get(t) or nil
    if mod == PUBLISHED_ONLY then mod = nil end
    if type(t) ~= "string" or not M.ADF_ACTIVITY_TYPES[t:lower()] then
      refuse(problems, file, apath .. ".type", string.format(
        "activity '%s' has type '%s', which only lufa runs (%s); ADF would reject the pipeline", name,
        tostring(t), mod and "a Lua activity module" or "not an ADF activity type"))
    elseif mod and mod ~= activities.builtin(M.ADF_ACTIVITY_TYPES[t:lower()]) then
      refuse(problems, file, apath .. ".type", string.format(
        "activity '%s': type '%s' is replaced by a Lua activity module here; ADF would run its own", name, t))
    end
    children(activity, apath, function(sub, subpath) check_activities(sub, subpath, file, registry, problems) end)
  end
end

local function check_extensions(entry, table_of, problems)
  local props = L.get(entry.resource, "properties")
  local t = L.get(props, "type")
  local ext = type(t) == "string" and table_of[t:lower()]
  if not ext then return end
  local tp, tp_key = L.lookup(props, "typeProperties")
  if type(tp) ~= "table" then return end
  for key, why in pairs(ext) do
    local v, spelled = L.lookup(tp, key)
    if v ~= nil then
      refuse(problems, entry.file, "$.properties." .. (tp_key or "typeProperties") .. "." .. spelled, string.format(
        "%s '%s': '%s' is a lufa extension (%s); ADF does not know it", entry.kind, entry.name, spelled, why))
    end
  end
end

--- Everything in a loaded factory that ADF would reject or run differently.
-- @param factory a factory from lufa.pipeline.load_factory
-- @param opts `override` (an override file was given), `activity_folders` (folders of Lua activities)
-- @return list of problems `{severity = "error", file=, path=, message=}` (empty when publishable)
function M.refusals(factory, opts)
  opts = opts or {}
  local problems = {}
  if opts.override then
    refuse(problems, tostring(opts.override), "$",
      "override files are local (endpoints and secrets of this machine) and are never published; publish without --override")
  end
  for _, dir in ipairs(opts.activity_folders or {}) do
    refuse(problems, dir, "$", "a folder of Lua activity modules cannot be published; ADF runs only its own activity types")
  end
  for _, entry in ipairs(factory.order.pipeline) do
    local props, key = L.lookup(entry.resource, "properties")
    local acts, akey = L.lookup(props, "activities")
    if L.is_array(acts) then
      check_activities(acts, "$." .. (key or "properties") .. "." .. (akey or "activities"), entry.file,
        factory.registry, problems)
    end
  end
  for _, entry in ipairs(factory.order.linkedService) do check_extensions(entry, LINKED_EXTENSIONS, problems) end
  for _, entry in ipairs(factory.order.trigger) do check_extensions(entry, TRIGGER_EXTENSIONS, problems) end
  return problems
end

return M
