--- ADF pipelines in lufa: load a factory, validate it, run its pipelines. Errors are `lufa.error` values;
--- problems are tables `{severity = "error"|"warning", file, path (JSON path), message}`. Records have
--- ADF's monitoring shape. The guide is docs/pipelines.md.
---
--- Example:
--- ```lua
--- local pipeline = require "lufa.pipeline"
--- local factory = assert(pipeline.from_table {
---   name = "Hello",
---   properties = { activities = { { name = "Pause", type = "Wait", typeProperties = { waitTimeInSeconds = 0 } } } },
--- })
--- io.write(pipeline.format_problems(factory:validate()))
--- local record = assert(factory:run("Hello"))
--- print(record.pipelineName, record.status)
--- print(table.concat(factory:pipelines(), ","), factory:activity_runs(record.runId)[1].activityName)
--- ```
--- ```text output
--- Hello	Succeeded
--- Hello	Pause
--- ```
local json = require "lufa.json"
local options = require "lufa.options"
local E = require "lufa.error"
local L = require "lufa.pipeline.lenient"
local load = require "lufa.pipeline.load"
local compile = require "lufa.pipeline.compile"
local suggest = require "lufa.suggest"
local blob_names = require "lufa.blob.names"
local runner = require "lufa.pipeline.run"
local activities = require "lufa.activities"
local runs = require "lufa.runs"

---@class lufa.pipeline.Problem
---@field severity "error"|"warning"
---@field file? string
---@field path? string the JSON path in the file
---@field message string
---@field column? integer

---@class lufa.pipeline.RunOptions
---@field parameters? table<string, any> name → value; strings are converted to the declared type
---@field on_event? fun(event: table) called at each state change
---@field store? table a lufa.runs store

---@class lufa.pipeline.RerunOptions
---@field from_failure? boolean reuse what succeeded
---@field from? string rerun from this top-level activity
---@field parameters? table<string, any> secret parameters again, which the store does not keep
---@field on_event? fun(event: table)

---@class lufa.pipeline.LoadOptions
---@field override? string|table a JSON file of overrides, or a table
---@field activities? table an activity registry
---@field activity_folders? string[] folders with `<Type>.lua` activity modules
---@field store? table a lufa.runs store
---@field partial? boolean return the factory even when some files could not be loaded (validate reports them)

--- A run in progress (`factory:start`, `rerun`, `resume`).
---@class lufa.pipeline.RunHandle
---@field runId string
---@field record table the pipeline run record, updated as the run goes
---@field wait fun(self: lufa.pipeline.RunHandle): table waits for the run and returns its record
---@field cancel fun(self: lufa.pipeline.RunHandle, reason?: string) cancels the run

---@class lufa.pipeline
---@field Factory lufa.pipeline.Factory the factories' methods
local M = {}

--- A data factory: its pipelines, datasets, linked services and triggers, and a run store.
---@class lufa.pipeline.Factory
---@field name string
---@field load_problems lufa.pipeline.Problem[] what loading found
local Factory = {}
Factory.__index = Factory

local function new_factory(name, opts)
  opts = opts or {}
  local f = setmetatable({name = name or "lufa", resources = {}, order = {}, global_parameters = {},
    files = {}, load_problems = {}, plans = {},
    registry = opts.activities or activities.new(activities.root),
    runs = opts.store or runs.memory()}, Factory)
  for _, k in ipairs(load.KINDS) do
    f.resources[k] = {}
    f.order[k] = {}
  end
  for _, dir in ipairs(opts.activity_folders or {}) do f.registry:add_folder(dir) end
  return f
end

--- Find a resource entry by kind and name (letter case ignored).
---@nodiscard
---@param kind string "pipeline", "linkedService", "dataset" or "trigger" (any case, or plural)
---@param name string
---@return {name: string, kind: string, file: string, resource: table}|nil entry
function Factory:find(kind, name)
  local k = load.kind(kind)
  if not k or type(name) ~= "string" then return nil end
  return self.resources[k][name:lower()]
end

--- Names of the factory's pipelines, in load order.
---@nodiscard
---@return string[] names
function Factory:pipelines()
  local out = {}
  for _, e in ipairs(self.order.pipeline) do out[#out + 1] = e.name end
  return out
end

--- Register an activity type for this factory only (shadows the process-wide registry); see
--- docs/extending.md.
---@param type_name string the activity type, e.g. "MyCopy"
---@param module table|string the activity module, or its name
---@return any result what the registry returns
function Factory:register(type_name, module)
  self.plans = {}
  return self.registry:register(type_name, module)
end

--- The compiled plan of a pipeline and its problems (cached); nil, nil for an unknown pipeline.
---@param name string
---@return table|nil plan
---@return lufa.pipeline.Problem[]|nil problems
function Factory:plan(name)
  local entry = self:find("pipeline", name)
  if not entry then return nil, nil end
  local cached = self.plans[entry]
  if cached then return cached.plan, cached.problems end
  entry.factory = self
  local plan, problems = compile.pipeline(self, entry, self.registry)
  plan.registry = self.registry
  self.plans[entry] = {plan = plan, problems = problems}
  return plan, problems
end

--- Whether a list of problems holds an error (not only warnings).
---@nodiscard
---@param problems lufa.pipeline.Problem[]
---@return boolean
local function has_errors(problems)
  for _, p in ipairs(problems) do
    if p.severity == "error" then return true end
  end
  return false
end
M.has_errors = has_errors

--- Validate the whole factory; see `pipeline.validate`.
---@return lufa.pipeline.Problem[] problems
function Factory:validate()
  return M.validate(self)
end

-- `parameters`, `on_event` and `store` are for callers; the rest are the runtime's own (child runs,
-- triggers, reruns and resumed runs).
local START_OPTIONS = { "parameters", "on_event", "store", "now", "parent", "group", "group_id", "run_id",
  "trigger", "resume", "resumed_from", "reuse", "origin" }

--- Start a pipeline run without waiting for it.
--- Errors: `nil, err` (code "not_found" for an unknown pipeline, an invalid pipeline, bad parameters).
---@param name string pipeline name (letter case ignored)
---@param opts? lufa.pipeline.RunOptions
---@return lufa.pipeline.RunHandle|nil run
---@return lufa.error? err
function Factory:start(name, opts)
  if opts ~= nil then options.check(opts, START_OPTIONS, "factory:start", 2) end
  local plan, problems = self:plan(name)
  if not plan then
    local names = self:pipelines()
    return nil, E.new{kind = "pipeline", code = "not_found", pipelines = names,
      message = string.format("the factory has no pipeline '%s'%s; its pipelines are: %s", tostring(name),
        suggest.hint(name, names), #names > 0 and table.concat(names, ", ") or "(none)")}
  end
  if has_errors(problems) then
    return nil, E.new{kind = "pipeline", code = "invalid", problems = problems,
      message = string.format("pipeline '%s' is not valid:\n%s", plan.name, M.format_problems(problems, true))}
  end
  return runner.start(self, plan, opts)
end

--- Run a pipeline and wait for it. An error while waiting (Ctrl-C at the prompt, the calling task
--- cancelled) cancels the run first, as SIGINT does under `lufa run`: its remote jobs are deleted and it is
--- recorded Cancelled.
--- Errors: `nil, err` for an unknown pipeline, an invalid pipeline or bad parameters.
---@async
---@param name string pipeline name (letter case ignored)
---@param opts? lufa.pipeline.RunOptions
---@return table|nil record the pipeline run record (ADF monitoring shape; `status` is Succeeded, Failed or Cancelled)
---@return lufa.error? err
function Factory:run(name, opts)
  if opts ~= nil then options.check(opts, START_OPTIONS, "factory:run", 2) end
  local handle, err = self:start(name, opts)
  if not handle then return nil, err end
  local ok, record = pcall(handle.wait, handle)
  if ok then return record end
  handle:cancel("interrupted")
  pcall(handle.wait, handle)  -- a second interrupt abandons waiting for the cancellation
  error(record, 0)
end

--- A client for one of the factory's linked services, outside any run (for scripts and the REPL).
--- Expressions in its typeProperties see the factory's global parameters.
--- Errors: `nil, err`.
---@param name string
---@return table|nil client see lufa.linked
---@return lufa.error? err
function Factory:linked_service(name)
  local expression = require "lufa.expression"
  local linked = require "lufa.linked"
  local scope = {pipeline = {DataFactory = self.name, parameters = json.object{},
    globalParameters = json.object(self.global_parameters)}}
  local ok, client, err = pcall(linked.client, self, name, function(v, extra)
    local s = scope
    if extra then
      s = setmetatable({}, {__index = scope})
      for k, x in pairs(extra) do s[k] = x end
    end
    return expression.evaluate(v, s)
  end)
  if not ok then return nil, client end
  return client, err
end

--- Start a rerun of a recorded run of this factory (a new run in the same run group, same parameters).
--- Errors: `nil, err`.
---@param run_id string the earlier run (in this factory's store)
---@param opts? lufa.pipeline.RerunOptions
---@return lufa.pipeline.RunHandle|nil run
---@return lufa.error? err
function Factory:rerun(run_id, opts)
  if opts ~= nil then options.check(opts, { "from_failure", "from", "parameters", "on_event" }, "factory:rerun", 2) end
  return require("lufa.runs.rerun").rerun(self, self.runs, run_id, opts)
end

--- Continue a run that was interrupted (its lufa process died) under its own run id: what succeeded stands,
--- and activities that were executing reconnect to the remote work they journaled.
--- Errors: `nil, err`.
---@param run_id string
---@param opts? lufa.pipeline.RunOptions
---@return lufa.pipeline.RunHandle|nil run
---@return lufa.error? err
function Factory:resume(run_id, opts)
  if opts ~= nil then options.check(opts, { "parameters", "on_event" }, "factory:resume", 2) end
  return require("lufa.runs.rerun").resume(self, self.runs, run_id, opts)
end

--- Activity run records of a pipeline run (optionally filtered, e.g. `{activityName = "x"}`).
---@nodiscard
---@param run_id string
---@param filter? table field → value the records must have
---@return table[] records
function Factory:activity_runs(run_id, filter)
  return self.runs:activity_runs(run_id, filter)
end

-- Paths kept with run records must not depend on the folder a later `lufa rerun` is started in.
local function absolute(path)
  local ok, fs = pcall(require, "lufa.fs")
  if ok and fs.realpath then
    local real = fs.realpath(path)
    if real then return real end
  end
  if path:sub(1, 1) == "/" then return path end
  local cwd = os.getenv("PWD")
  return cwd and (cwd .. "/" .. path) or path
end

local function absolute_all(list)
  local out = {}
  for i, p in ipairs(list) do out[i] = absolute(p) end
  return out
end

--- Load a factory from an ADF git-layout folder or a single JSON file.
--- Errors: `nil, problems` when files cannot be loaded (unless `partial`).
---@param path string folder (with pipeline/, linkedService/, dataset/, trigger/) or a file
---@param opts? lufa.pipeline.LoadOptions
---@return lufa.pipeline.Factory|nil factory
---@return lufa.pipeline.Problem[]? problems
function M.load_factory(path, opts)
  opts = options.check(opts or {}, { "override", "activities", "activity_folders", "store", "partial" },
    "pipeline.load_factory", 2)
  if type(path) ~= "string" then error("load_factory: path must be a string", 2) end
  local name = path:gsub("/+$", ""):match("([^/]+)$")
  local factory = new_factory(name, opts)
  factory.origin = {factory = absolute(path), override = type(opts.override) == "string" and absolute(opts.override)
    or nil, activities = opts.activity_folders and json.array(absolute_all(opts.activity_folders)) or nil}
  local problems = factory.load_problems
  if load.is_dir(path) then
    load.load_dir(factory, path, problems)
  else
    load.load_file(factory, path, nil, problems)
  end
  M.apply_override(factory, opts.override)
  -- `partial`: the files that could be read still make a factory, so validation reports every
  -- problem at once (its load problems are part of `factory:validate()`).
  if has_errors(problems) and not opts.partial then return nil, problems end
  return factory
end

--- Apply an override (file path or table) to a loaded factory; problems go to load_problems.
---@param factory lufa.pipeline.Factory
---@param override string|table|nil
function M.apply_override(factory, override)
  if override == nil then return end
  local problems = factory.load_problems
  local value, file = override, "<override>"
  if type(override) == "string" then
    file = override
    local err
    value, err = json.decode_file(override)
    if value == nil then
      problems[#problems + 1] = {severity = "error", file = override, path = "$",
        message = err and err.message or "cannot read the override file"}
      return
    end
  end
  load.apply_override(factory, value, file, problems)
  factory.plans = {}
end

--- Make a factory from Lua tables: one pipeline (`{name=, properties={activities=…}}`
--- or `{name=, activities=…}`) or `{pipelines = {...}, linkedServices = {...}, …}`.
--- Errors: `nil, problems`.
---@param t table
---@param opts? lufa.pipeline.LoadOptions
---@return lufa.pipeline.Factory|nil factory
---@return lufa.pipeline.Problem[]? problems
function M.from_table(t, opts)
  opts = options.check(opts or {}, { "name", "override", "activities", "activity_folders", "store" },
    "pipeline.from_table", 2)
  local factory = new_factory(opts.name, opts)
  load.load_table(factory, t, factory.load_problems)
  M.apply_override(factory, opts.override)
  if has_errors(factory.load_problems) then return nil, factory.load_problems end
  return factory
end

local function check_reference(factory, problems, file, path, ref, kind, what)
  local name = L.get(ref, "referenceName")
  if type(name) ~= "string" then
    problems[#problems + 1] = {severity = "error", file = file, path = path,
      message = what .. " reference needs a referenceName"}
  elseif not factory:find(kind, name) then
    problems[#problems + 1] = {severity = "error", file = file, path = path .. ".referenceName",
      message = string.format("reference to a missing %s '%s'%s", what, name,
        suggest.hint(name, factory.order[kind] or {}))}
  end
end

local function literal(v)
  return type(v) == "string" and v ~= "" and not v:find("@", 1, true)
end

-- A blob dataset's container and folder as written (AzureBlobStorageLocation's `container`,
-- `folderPath`, `fileName`, or the older AzureBlob `folderPath` = "container/folder"): names Azure refuses.
local function check_blob_names(problems, file, tp)
  if not L.is_object(tp) then return end
  local function refuse(path, why)
    problems[#problems + 1] = {severity = "error", file = file, path = "$.properties.typeProperties" .. path,
      message = why .. "; Azure Storage would refuse it"}
  end
  local location = L.get(tp, "location")
  local kind = L.is_object(location) and L.get(location, "type")
  if type(kind) == "string" and kind:lower() == "azureblobstoragelocation" then
    local container = L.get(location, "container")
    if literal(container) then
      local ok, why = blob_names.container(container)
      if not ok then refuse(".location.container", why) end
    end
    local folder, name = L.get(location, "folderPath"), L.get(location, "fileName")
    if literal(folder) and literal(name) then
      local ok, why = blob_names.blob(folder:gsub("/+$", "") .. "/" .. name)
      if not ok then refuse(".location", "folderPath/fileName: " .. why) end
    end
  elseif kind == nil or kind == false then
    local folder = L.get(tp, "folderPath")
    if literal(folder) then
      local ok, why = blob_names.container((folder:match("^/?([^/]*)")))
      if not ok then refuse(".folderPath", why) end
    end
  end
end

--- Validate a factory: every pipeline, and the references of datasets, linked services
--- and triggers. Returns all problems at once.
---@param factory lufa.pipeline.Factory
---@return lufa.pipeline.Problem[] problems
function M.validate(factory)
  local problems = {}
  for _, p in ipairs(factory.load_problems) do problems[#problems + 1] = p end
  for _, entry in ipairs(factory.order.pipeline) do
    local _, ps = factory:plan(entry.name)
    for _, p in ipairs(ps) do problems[#problems + 1] = p end
  end
  for _, entry in ipairs(factory.order.dataset) do
    local props = L.get(entry.resource, "properties")
    local ls = L.get(props, "linkedServiceName")
    if ls == nil then
      problems[#problems + 1] = {severity = "error", file = entry.file, path = "$.properties",
        message = "a dataset needs a linkedServiceName"}
    else
      check_reference(factory, problems, entry.file, "$.properties.linkedServiceName", ls,
        "linkedService", "linked service")
    end
    check_blob_names(problems, entry.file, L.get(props, "typeProperties"))
  end
  local linked = require "lufa.linked"
  for _, entry in ipairs(factory.order.linkedService) do
    local props = L.get(entry.resource, "properties")
    if entry.name:find("-", 1, true) then
      problems[#problems + 1] = {severity = "warning", file = entry.file, path = "$.name",
        message = "ADF does not allow '-' in linked service names"}
    end
    local spec = linked.get_type(L.get(props, "type"))
    if spec and spec.validate then
      local report = compile.new_report(problems, entry.file, "$.properties")
      local ok, err = pcall(spec.validate, props, report)
      if not ok then report:error("", "validation failed: %s", tostring(err)) end
    end
    local function walk(v, path)
      if type(v) ~= "table" or v == json.null then return end
      local t = L.get(v, "type")
      if type(t) == "string" and t:lower() == "linkedservicereference" then
        check_reference(factory, problems, entry.file, path, v, "linkedService", "linked service")
      elseif linked.is_key_vault_secret(v) then
        local name = L.get(v, "secretName")
        if type(name) ~= "string" or name == "" then
          problems[#problems + 1] = {severity = "error", file = entry.file, path = path,
            message = "an AzureKeyVaultSecret needs a \"secretName\" string"}
        elseif not name:match("^@") and (#name > 127 or not name:match("^[%w%-]+$")) then
          problems[#problems + 1] = {severity = "error", file = entry.file, path = path .. ".secretName",
            message = string.format("'%s' is not a Key Vault secret name (1-127 letters, digits and '-')", name)}
        end
        local store = L.get(v, "store")
        local store_name = linked.reference_name(store)
        if store_name and store_name:lower() == entry.name:lower() then
          problems[#problems + 1] = {severity = "error", file = entry.file, path = path .. ".store.referenceName",
            message = "an AzureKeyVaultSecret cannot take its secret from its own linked service"}
        elseif store == nil then
          problems[#problems + 1] = {severity = "error", file = entry.file, path = path,
            message = "an AzureKeyVaultSecret needs \"store\" (a LinkedServiceReference to an AzureKeyVault linked service)"}
        else
          local vault = factory:find("linkedService", linked.reference_name(store) or "")
          local vault_type = vault and L.get(L.get(vault.resource, "properties"), "type")
          if vault and (type(vault_type) ~= "string" or vault_type:lower() ~= "azurekeyvault") then
            problems[#problems + 1] = {severity = "error", file = entry.file, path = path .. ".store.referenceName",
              message = string.format("the store '%s' is a %s linked service, not AzureKeyVault", vault.name,
                tostring(vault_type))}
          end
        end
      end
      for k, x in pairs(v) do walk(x, path .. compile.key_path(k)) end
    end
    walk(L.get(props, "typeProperties"), "$.properties.typeProperties")
  end
  -- triggers: types, recurrences, zones and pipeline references (lufa.schedule.triggers)
  local _, trigger_problems = require("lufa.schedule.triggers").load(factory)
  for _, p in ipairs(trigger_problems) do problems[#problems + 1] = p end
  return M.sort_problems(problems)
end

--- Problems sorted by file, then line and column where known, otherwise in the order
--- they were found (which follows the file); a problem reported twice appears once.
---@param problems lufa.pipeline.Problem[]
---@return lufa.pipeline.Problem[] sorted a new list
function M.sort_problems(problems)
  local seen, list = {}, {}
  for i, p in ipairs(problems) do
    local key = table.concat({ tostring(p.file), tostring(p.path), tostring(p.line), tostring(p.column),
      tostring(p.severity), tostring(p.message) }, "\0")
    if not seen[key] then
      seen[key] = true
      list[#list + 1] = { p = p, i = i }
    end
  end
  -- Problems at one JSON path stay where that path was first reported, ordered by column.
  local first_at = {}
  for _, e in ipairs(list) do
    local where = tostring(e.p.file) .. "\0" .. tostring(e.p.path)
    first_at[where] = first_at[where] or e.i
    e.at = first_at[where]
  end
  table.sort(list, function(a, b)
    local fa, fb = tostring(a.p.file), tostring(b.p.file)
    if fa ~= fb then return fa < fb end
    local la, lb = a.p.line or math.huge, b.p.line or math.huge
    if la ~= lb then return la < lb end
    if a.at ~= b.at then return a.at < b.at end
    local ca, cb = a.p.column or 0, b.p.column or 0
    if ca ~= cb then return ca < cb end
    return a.i < b.i
  end)
  local out = {}
  for i, e in ipairs(list) do out[i] = e.p end
  return out
end

--- Format problems one per line: `file: path: severity: message`, errors first.
---@nodiscard
---@param problems lufa.pipeline.Problem[] from `validate` or `load_factory`
---@param errors_only? boolean leave warnings out
---@return string text "" when there is nothing to say
function M.format_problems(problems, errors_only)
  local lines = {}
  -- Errors first; each group by file and position (M.sort_problems).
  local sorted = {}
  for _, p in ipairs(M.sort_problems(problems)) do
    if p.severity == "error" then sorted[#sorted + 1] = p end
  end
  for _, p in ipairs(M.sort_problems(problems)) do
    if p.severity ~= "error" then sorted[#sorted + 1] = p end
  end
  for _, p in ipairs(sorted) do
    if not errors_only or p.severity == "error" then
      local where = p.path or "$"
      if p.line then where = where .. string.format(" (line %d, column %d)", p.line, p.column or 0)
      elseif p.column then where = where .. string.format(" (column %d)", p.column) end
      lines[#lines + 1] = string.format("%s: %s: %s: %s", p.file or "?", where, p.severity or "error", p.message)
    end
  end
  if #lines == 0 then return "" end
  return table.concat(lines, "\n") .. "\n"
end

M.Factory = Factory
return M
