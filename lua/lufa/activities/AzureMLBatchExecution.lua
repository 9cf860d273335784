--- AzureMLBatchExecution: runs a training (or scoring) job on an Azure ML web service's Batch Execution
-- Service. typeProperties: `webServiceInputs` / `webServiceOutputs` (name → `{LinkedServiceName, FilePath}`,
-- member names in any case), `globalParameters` (name → value). The activity's linked service is `AzureML`.
--
-- Output: `{jobId, statusCode, results = {name → {BaseLocation, RelativeLocation, SasBlobToken}}, details,
-- executionDuration}`; SAS tokens are secrets (redacted in records). On failure, timeout or cancellation
-- the remote job is deleted, so a retry never leaves a second job running. The job id is journaled in the
-- run store before the job is started: a run resumed after lufa stopped waits for that job instead of
-- submitting another. With an `AzureMLService` linked service (Azure ML v2) the activity runs as a v2
-- command job instead: lufa.azureml.v2.bridge.
-- @module lufa.activities.AzureMLBatchExecution
local lufa = require "lufa"
local json = require "lufa.json"
local secret = require "lufa.secret"
local L = require "lufa.pipeline.lenient"
local endpoint = require "lufa.linked.endpoint"
local linked_name = require("lufa.linked").reference_name

local M = {}

local INPUT_EXTENSIONS = { csv = true, tsv = true, arff = true }

local function extension(path)
  return path:match("%.([%w]+)$")
end

local function check_files(activity, report, key, is_input)
  local files = L.get(activity.typeProperties, key)
  if files == nil then return end
  if not L.is_object(files) then
    report:error(".typeProperties." .. key, "%s must be an object mapping web-service %s names to files", key,
      is_input and "input" or "output")
    return
  end
  for name, file in pairs(files) do
    local at = string.format(".typeProperties.%s.%s", key, name)
    if not L.is_object(file) then
      report:error(at, "expected {\"LinkedServiceName\": {...}, \"FilePath\": \"container/path\"}")
    else
      if L.get(file, "linkedServiceName") == nil then report:error(at, "missing \"LinkedServiceName\"") end
      local path = L.get(file, "filePath")
      if path == nil then
        report:error(at, "missing \"FilePath\"")
      elseif type(path) == "string" and not endpoint.is_expression(path) then
        local ext = (extension(path) or ""):lower()
        if is_input and not INPUT_EXTENSIONS[ext] then
          report:warning(at .. ".FilePath", "'%s' names no .csv, .tsv or .arff file; the Batch Execution Service " ..
            "refuses inputs without one of these extensions (InvalidBlobExtension)", path)
        elseif not is_input and ext ~= "ilearner" and ext ~= "csv" and ext ~= "tsv" then
          report:warning(at .. ".FilePath", "'%s' names no file (a trained model must end in .ilearner, scored " ..
            "data usually in .csv); the Batch Execution Service refuses such outputs", path)
        end
      end
    end
  end
end

function M.validate(activity, report)
  if activity.linkedServiceName == nil then
    report:error("", "AzureMLBatchExecution requires \"linkedServiceName\" (an AzureML linked service)")
  end
  check_files(activity, report, "webServiceInputs", true)
  check_files(activity, report, "webServiceOutputs", false)
  local gp = L.get(activity.typeProperties, "globalParameters")
  if gp ~= nil and not L.is_object(gp) then
    report:error(".typeProperties.globalParameters", "globalParameters must be an object (name → value)")
  end
end

local function references(ctx, files)
  local out = json.object{}
  for name, file in pairs(files or {}) do
    local storage = ctx:linked_service(L.get(file, "linkedServiceName"))
    if type(storage.bes_reference) ~= "function" then
      ctx:fail("2600", string.format("web-service file '%s': linked service '%s' is not an Azure Storage " ..
        "linked service", name, tostring(storage.name)))
    end
    local path = L.get(file, "filePath")
    if type(path) ~= "string" or path == "" then
      ctx:fail("2600", string.format("web-service file '%s' has no FilePath", name))
    end
    out[name] = storage.bes_reference(path)
  end
  return out
end

local function fail_with(ctx, ml, err)
  -- ADF's own wording for this activity's failures, with the service's answer
  ctx:fail("2600", string.format("Batch Execution failed. The response from the Machine Learning service " ..
    "at endpoint %s was '%s'", ml.ml_endpoint:match("^[^?]*"),
    tostring(err.details or err.service_message or err.message)))
end

--- The calls a run would make (`lufa run --dry-run`), with what can be resolved beforehand.
function M.dry_run(activity, env)
  local props = env.linked(activity.linkedServiceName) or {}
  local url = tostring(env.value(L.get(props, "mlEndpoint")) or "(mlEndpoint)")
  local base = url:match("^[^?]*"):gsub("/+$", "")
  local lines = {string.format("POST %s   submit a batch job", url)}
  for _, key in ipairs{"webServiceInputs", "webServiceOutputs"} do
    local files = L.get(activity.typeProperties, key)
    local names = {}
    for n in pairs(L.is_object(files) and files or {}) do names[#names + 1] = n end
    table.sort(names)
    for _, n in ipairs(names) do
      local f = files[n]
      lines[#lines + 1] = string.format("  %s %s %s %s (storage %s)", key == "webServiceInputs" and "input" or "output", n,
        key == "webServiceInputs" and "<-" or "->", env.value(L.get(f, "filePath")),
        tostring(linked_name(L.get(f, "linkedServiceName"))))
    end
  end
  lines[#lines + 1] = string.format("POST %s/{jobId}/start   start it (the job id is journaled first)", base)
  lines[#lines + 1] = string.format("GET  %s/{jobId}   poll until Finished, Failed or Cancelled", base)
  return lines
end

function M.run(ctx, activity)
  local ml = ctx:linked_service(activity.linkedServiceName)
  -- an Azure ML v2 workspace: the same JSON runs as a v2 command job (docs/azureml-v2.md)
  if type(ml.workspace) == "function" then return require("lufa.azureml.v2.bridge").batch_execution(ctx, activity) end
  if type(ml.batch) ~= "function" then
    ctx:fail("2600", string.format("linked service '%s' is not an AzureML linked service", tostring(ml.name)))
  end
  local tp = ctx.input or json.object{}
  local body = json.object{}
  local inputs, outputs = L.get(tp, "webServiceInputs"), L.get(tp, "webServiceOutputs")
  if inputs then body.Inputs = references(ctx, inputs) end
  if outputs then body.Outputs = references(ctx, outputs) end
  local gp = L.get(tp, "globalParameters")
  body.GlobalParameters = gp and json.object(gp) or json.object{}

  local bes = ml.batch()
  local started = lufa.now()
  local job_id, err
  local not_started = true
  -- resumed after lufa stopped: the job journaled then is reconnected to, never submitted again
  local journaled = ctx:journaled("bes.job")
  if journaled and type(journaled.jobId) == "string" then
    job_id = journaled.jobId
    local st, serr = bes:status(job_id)
    if not st then
      if serr.status == 404 then
        ctx:fail("2600", string.format("batch job %s, started before lufa stopped, no longer exists on the " ..
          "service at %s; 'lufa rerun %s --from-failure' submits a new job", job_id,
          ml.ml_endpoint:match("^[^?]*"), ctx.run_id))
      end
      fail_with(ctx, ml, serr)
    end
    not_started = st.StatusCode == "NotStarted"
    ctx:log("info", "reconnected to batch job %s (%s)", job_id, st.StatusCode)
  else
    job_id, err = bes:submit(body)
    if not job_id then fail_with(ctx, ml, err) end
    -- on disk before the job is started: a job is only ever started when lufa can find it again
    ctx:journal("bes.job", {jobId = job_id})
    ctx:log("info", "submitted batch job %s", job_id)
  end
  local ended = false
  ctx:defer(function()
    if ended then return end
    local ok, derr = bes:delete(job_id)
    if ok then ctx:log("info", "deleted batch job %s", job_id)
    else ctx:log("warning", "could not delete batch job %s: %s", job_id, tostring(derr)) end
  end)
  if not_started then
    local ok, serr = bes:start(job_id)
    if not ok then fail_with(ctx, ml, serr) end
  end
  local final, werr = bes:wait(job_id, {
    sleep = function(s) ctx:sleep(s) end,
    on_status = function(st) ctx:log("info", "batch job %s: %s", job_id, st.StatusCode) end,
  })
  if not final then
    ended = werr.status_code ~= nil  -- Failed or Cancelled by the service: nothing left to delete
    fail_with(ctx, ml, werr)
  end
  ended = true
  local results = json.object{}
  for name, loc in pairs(type(final.Results) == "table" and final.Results or {}) do
    results[name] = json.object{ BaseLocation = loc.BaseLocation, RelativeLocation = loc.RelativeLocation,
      SasBlobToken = loc.SasBlobToken and secret(tostring(loc.SasBlobToken)) or nil }
  end
  return json.object{ jobId = job_id, statusCode = final.StatusCode, results = results,
    details = final.Details == nil and json.null or final.Details,
    executionDuration = math.floor((lufa.now() - started) * 1000 + 0.5) / 1000 }
end

return M
