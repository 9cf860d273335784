--- lufa.azureml.classic: clients for Azure ML (classic Studio) web services (also `require "lufa.azureml"`).
---
--- Batch Execution Service (submit, start, poll, delete a training job), the Request-Response Service
--- (score rows), the classic Update Resource call and the Azure Resource Manager web-service definition.
--- Follows the wire protocols of Azure ML Studio web services (`api-version=2.0` on BES/RRS).
--- The example is in lua/lufa/azureml.lua.
local lufa = require "lufa"
local options = require "lufa.options"
local http = require "lufa.http"
local json = require "lufa.json"
local secret = require "lufa.secret"
local E = require "lufa.error"

---@class lufa.azureml
---@field TERMINAL table<string, true> the final job statuses: Finished, Failed, Cancelled
local M = {}

local STATUS_BY_NUMBER = { [0] = "NotStarted", [1] = "Running", [2] = "Failed", [3] = "Cancelled", [4] = "Finished" }
M.TERMINAL = { Finished = true, Failed = true, Cancelled = true }

-- Transient statuses (and transport errors) are retried; every Azure ML call here is safe to repeat
-- except submit, whose repeat could start a second job: it is retried only on answers that prove the
-- first attempt created nothing (429/503 before processing).
local RETRY = { attempts = 5, base_delay = 0.5, max_delay = 20, retry_unsafe = true }
local SUBMIT_RETRY = { attempts = 5, base_delay = 0.5, max_delay = 20, retry_unsafe = true,
  statuses = { [429] = true, [503] = true } }
-- The ARM update is never sent twice on a guess: a lost answer is resolved by reading the web service.
local PATCH_RETRY = { attempts = 5, base_delay = 0.5, max_delay = 20, retry_unsafe = true, retry_transport = false,
  statuses = { [429] = true, [503] = true } }

--- The text of a JSON error body in Azure ML's shape, with its most specific code.
local function service_error(res, what, url)
  local code, message = "HTTP" .. res.status, nil
  local body = res.body and json.decode(res.body)
  local err = type(body) == "table" and body.error
  if type(err) == "table" then
    code = err.code or code
    message = err.message
    local details = err.details
    if type(details) == "table" and type(details[1]) == "table" then
      code = details[1].code or code
      if details[1].message then message = (message and message .. " " or "") .. details[1].message end
    end
  end
  message = message or (res.body and #res.body > 0 and res.body:sub(1, 300)) or "no details in the response"
  return E.new{ kind = "azureml", code = tostring(code), status = res.status,
    request_id = res.headers["x-ms-request-id"], service_message = message,
    message = string.format("%s failed: the Azure ML service at %s answered %d: %s", what, url, res.status,
      message) }
end

local function transport_error(err, what, url)
  return E.new{ kind = "azureml", code = err.code, message = string.format("%s failed: %s (%s)", what,
    err.message, url) }
end

--- Splits a URL into its part before the query and the query (without "?").
local function split_query(url)
  local base, query = url:match("^([^?#]*)%??([^#]*)")
  return base, query
end

--- Normalises a BES URL (`…/jobs`, with or without `?api-version=2.0`) to its base without `/jobs`.
--- Errors: raises when `endpoint` is not a string.
---@nodiscard
---@param endpoint string
---@return string base
function M.service_base(endpoint)
  if type(endpoint) ~= "string" then error("Azure ML endpoint must be a string URL", 3) end
  local base = split_query((endpoint:gsub("^%s+", ""):gsub("%s+$", "")))
  base = base:gsub("/+$", "")
  base = base:gsub("/jobs$", ""):gsub("/execute$", "")
  if not base:match("^https?://[^/]+/") then
    error(string.format("'%s' is not an Azure ML web-service URL (expected https://host/.../jobs)", base), 3)
  end
  return base
end

local function request(self, what, opts, policy)
  opts.headers = opts.headers or {}
  opts.headers["Authorization"] = self.authorization
  opts.headers["Accept"] = "application/json"
  if opts.body then opts.headers["Content-Type"] = "application/json" end
  opts.timeout = opts.timeout or self.timeout
  local res, err = http.request_with_retry(opts, policy or self.retry)
  if not res then return nil, transport_error(err, what, opts.url) end
  if res.status < 200 or res.status > 299 then return nil, service_error(res, what, opts.url), res end
  return res
end

local function decode_body(res, what, url)
  if res.body == "" then return json.null end
  local v, err = json.decode(res.body)
  if v == nil then
    return nil, E.new{ kind = "azureml", code = "bad_response", status = res.status,
      message = string.format("%s: the response from %s is not JSON (%s)", what, url, tostring(err)) }
  end
  return v
end

local function api_key_header(api_key)
  if api_key == nil then error("an Azure ML api_key is required", 3) end
  if not secret.is(api_key) then api_key = secret(api_key) end
  return "Bearer " .. api_key
end

---------------------------------------------------------------------------------------------------
-- Batch Execution Service
---------------------------------------------------------------------------------------------------

--- A Batch Execution Service client (`azureml.batch`).
---@class lufa.azureml.Batch
local Batch = {}
Batch.__index = Batch

---@class lufa.azureml.BatchOptions
---@field endpoint string the BES URL, `…/jobs`
---@field api_key string|lufa.secret
---@field timeout? number seconds per request (default 60)
---@field retry? lufa.http.RetryPolicy
---@field poll_interval? number first poll delay, seconds (default 1)
---@field max_poll_interval? number seconds (default 15)

---@class lufa.azureml.JobStatus
---@field StatusCode "NotStarted"|"Running"|"Failed"|"Cancelled"|"Finished"
---@field Results? table the outputs' locations
---@field Details? string

--- A client for a web service's Batch Execution Service. Makes no request.
---@param opts lufa.azureml.BatchOptions
---@return lufa.azureml.Batch client
function M.batch(opts)
  options.check(opts, { "endpoint", "api_key", "timeout", "retry", "poll_interval", "max_poll_interval" },
    "azureml.batch", 2)
  local base = M.service_base(opts.endpoint)
  return setmetatable({ base = base, jobs_url = base .. "/jobs", authorization = api_key_header(opts.api_key),
    timeout = opts.timeout or 60, retry = opts.retry or RETRY, poll_interval = opts.poll_interval or 1,
    max_poll_interval = opts.max_poll_interval or 15 }, Batch)
end

--- The URL of the jobs collection, or of a job (and a suffix such as "/start"), with the api-version.
---@nodiscard
---@param job_id? string
---@param suffix? string
---@return string url
function Batch:url(job_id, suffix)
  return self.jobs_url .. (job_id and ("/" .. http.urlencode(job_id)) or "") .. (suffix or "") .. "?api-version=2.0"
end

--- Submits a job (not started). `body` is the BES request: Inputs, Outputs, GlobalParameters.
--- Values may be secrets (connection strings); they are sent, never shown.
--- Errors: `nil, err`.
---@async
---@param body table
---@return string|nil job_id
---@return lufa.error? err
function Batch:submit(body)
  local url = self:url()
  local res, err = request(self, "submitting the batch job", { method = "POST", url = url,
    body = json.encode(body, { reveal_secrets = true }), fresh_connection = true }, SUBMIT_RETRY)
  if not res then return nil, err end
  local id, derr = decode_body(res, "submitting the batch job", url)
  if type(id) ~= "string" or id == "" then
    return nil, derr or E.new{ kind = "azureml", code = "bad_response",
      message = "submitting the batch job: the service did not answer with a job id" }
  end
  return id
end

--- Starts a submitted job.
--- Errors: `nil, err`.
---@async
---@param job_id string
---@return true|nil ok
---@return lufa.error? err
function Batch:start(job_id)
  local res, err = request(self, "starting batch job " .. job_id, { method = "POST", url = self:url(job_id, "/start") })
  if res then return true end
  -- a retried start whose first attempt got through is refused as "not NotStarted": that is success
  if err.status == 400 and (err.code == "CannotStartJob" or err.code == "InvalidOperation") then
    local st = self:status(job_id)
    if st and st.StatusCode ~= "NotStarted" then return true end
  end
  return nil, err
end

--- The job's status: `{StatusCode = "Running"|…, Results = …, Details = …}` (numeric codes are mapped).
--- Errors: `nil, err`.
---@async
---@param job_id string
---@return lufa.azureml.JobStatus|nil status
---@return lufa.error? err
function Batch:status(job_id)
  local url = self:url(job_id)
  local res, err = request(self, "reading batch job " .. job_id, { method = "GET", url = url })
  if not res then return nil, err end
  local st, derr = decode_body(res, "reading batch job " .. job_id, url)
  if type(st) ~= "table" then
    return nil, derr or E.new{ kind = "azureml", code = "bad_response",
      message = "reading batch job " .. job_id .. ": the status is not a JSON object" }
  end
  local code = st.StatusCode
  if math.type(code) == "integer" then st.StatusCode = STATUS_BY_NUMBER[code] or tostring(code) end
  if type(st.StatusCode) ~= "string" then
    return nil, E.new{ kind = "azureml", code = "bad_response",
      message = "reading batch job " .. job_id .. ": the status has no StatusCode" }
  end
  return st
end

--- Cancels and deletes a job.
--- Errors: `nil, err`.
---@async
---@param job_id string
---@return true|nil ok
---@return lufa.error? err
function Batch:delete(job_id)
  local res, err = request(self, "deleting batch job " .. job_id, { method = "DELETE", url = self:url(job_id) })
  if not res then return nil, err end
  return true
end

local WAIT_OPTIONS = { "timeout", "on_status", "sleep" }
local RUN_OPTIONS = { "timeout", "on_status", "sleep", "on_job" }

--- Polls a started job until it is Finished, Failed or Cancelled.
--- Errors: `nil, err` (a Failed job is an error with the service's Details; a timeout).
---@async
---@param job_id string
---@param opts? {timeout?: number, on_status?: fun(status: lufa.azureml.JobStatus), sleep?: fun(seconds: number)} `timeout`: seconds in all
---@return lufa.azureml.JobStatus|nil status the final status
---@return lufa.error? err
function Batch:wait(job_id, opts)
  if opts ~= nil then options.check(opts, WAIT_OPTIONS, "batch:wait", 2) end
  opts = opts or {}
  local sleep = opts.sleep or lufa.sleep
  local deadline = opts.timeout and (lufa.now() + opts.timeout)
  local delay, last = self.poll_interval, nil
  while true do
    local st, err = self:status(job_id)
    if not st then return nil, err end
    if opts.on_status and st.StatusCode ~= last then opts.on_status(st) end
    last = st.StatusCode
    if st.StatusCode == "Finished" then return st end
    if st.StatusCode == "Failed" or st.StatusCode == "Cancelled" then
      local details = st.Details
      if details == json.null or details == nil or details == "" then details = "no details given" end
      return nil, E.new{ kind = "azureml", code = "Job" .. st.StatusCode, job_id = job_id, status_code = st.StatusCode,
        details = details, message = string.format("batch job %s %s: %s", job_id,
          st.StatusCode == "Failed" and "failed" or "was cancelled", tostring(details)) }, st
    end
    if deadline and lufa.now() + delay > deadline then
      return nil, E.new{ kind = "azureml", code = "timeout", job_id = job_id,
        message = string.format("batch job %s did not finish within %g s", job_id, opts.timeout) }
    end
    sleep(delay)
    delay = math.min(self.max_poll_interval, delay * 1.5)
  end
end

--- Submits, starts and waits for a job. On failure, timeout or cancellation the remote job is deleted
--- (from a fresh task when the caller's own task is being cancelled).
--- Errors: `nil, err, job_id`.
---@async
---@param body table the BES request, as for `submit`
---@param opts? table as for `wait`
---@return lufa.azureml.JobStatus|nil status the final status
---@return string|lufa.error job_id_or_err the job id, or the error
---@return string? job_id on failure, the job id
function Batch:run(body, opts)
  if opts ~= nil then options.check(opts, RUN_OPTIONS, "batch:run", 2) end
  local job_id, err = self:submit(body)
  if not job_id then return nil, err end
  local finished = false
  local guard <close> = setmetatable({}, { __close = function()
    if finished then return end
    -- a cancelled task can no longer wait: delete from a task of its own
    lufa.spawn(function() self:delete(job_id) end)
  end })
  if opts and opts.on_job then opts.on_job(job_id) end
  local ok, serr = self:start(job_id)
  if not ok then return nil, serr, job_id end
  local st, werr = self:wait(job_id, opts and { timeout = opts.timeout, on_status = opts.on_status, sleep = opts.sleep })
  finished = st ~= nil or (werr and werr.status_code ~= nil)  -- a job that ended needs no delete
  return st, werr, job_id
end

---------------------------------------------------------------------------------------------------
-- Request-Response Service (scoring)
---------------------------------------------------------------------------------------------------

--- A Request-Response Service client (`azureml.scoring`).
---@class lufa.azureml.Scoring
local Scoring = {}
Scoring.__index = Scoring

--- A client for a web service's Request-Response Service. Makes no request.
---@param opts {endpoint: string, api_key: string|lufa.secret, timeout?: number, retry?: lufa.http.RetryPolicy} `endpoint`: the BES or RRS URL of the service
---@return lufa.azureml.Scoring client
function M.scoring(opts)
  options.check(opts, { "endpoint", "api_key", "timeout", "retry" }, "azureml.scoring", 2)
  local base = M.service_base(opts.endpoint)
  return setmetatable({ base = base, authorization = api_key_header(opts.api_key), timeout = opts.timeout or 60,
    retry = opts.retry or RETRY }, Scoring)
end

--- Scores rows. `columns` is a list of names, `rows` a list of lists of values.
--- Errors: `nil, err`.
---@async
---@param columns string[]
---@param rows any[][]
---@param opts? table `timeout` and other request options
---@return {columns: string[], rows: any[][]}|nil first the first output
---@return table|lufa.error response the whole decoded response, or the error
function Scoring:score(columns, rows, opts)
  if opts ~= nil then options.check(opts, { "input", "output", "global_parameters" }, "scoring:score", 2) end
  opts = opts or {}
  local values = json.array{}
  for i, row in ipairs(rows) do
    local r = json.array{}
    for j, v in ipairs(row) do r[j] = tostring(v) end
    values[i] = r
  end
  local input = opts.input or "input1"
  local body = { Inputs = { [input] = { ColumnNames = json.array(columns), Values = values } },
    GlobalParameters = json.object(opts.global_parameters or {}) }
  local url = self.base .. "/execute?api-version=2.0&details=true"
  local res, err = request(self, "scoring", { method = "POST", url = url, body = json.encode(body) })
  if not res then return nil, err end
  local doc, derr = decode_body(res, "scoring", url)
  if type(doc) ~= "table" or type(doc.Results) ~= "table" then
    return nil, derr or E.new{ kind = "azureml", code = "bad_response", message = "scoring: no Results in the response" }
  end
  local name = opts.output or next(doc.Results)
  local out = doc.Results[name]
  local tbl = type(out) == "table" and out.value or nil
  if type(tbl) ~= "table" then
    return nil, E.new{ kind = "azureml", code = "bad_response", message = "scoring: output '" .. tostring(name) .. "' has no table" }
  end
  return { columns = tbl.ColumnNames, rows = tbl.Values, types = tbl.ColumnTypes }, doc
end

---------------------------------------------------------------------------------------------------
-- Updating the scoring service's trained model
---------------------------------------------------------------------------------------------------

--- Whether an update-resource URL is an Azure Resource Manager web service (rather than classic).
---@nodiscard
---@param url string
---@return boolean
function M.is_arm_endpoint(url)
  local path = split_query(url)
  return path:find("/providers/Microsoft.MachineLearning/webServices/", 1, true) ~= nil
      or path:lower():find("/providers/microsoft.machinelearning/webservices/", 1, true) ~= nil
end

---@class lufa.azureml.UpdateClassicOptions
---@field endpoint string the updateResourceEndpoint
---@field api_key string|lufa.secret
---@field name string the trained-model resource name
---@field base_location string
---@field relative_location string
---@field sas string|lufa.secret the SAS query string with its "?"
---@field timeout? number seconds (default 60)

--- Classic Update Resource: PATCH the endpoint with the model's location.
--- Errors: `nil, err`.
---@async
---@param opts lufa.azureml.UpdateClassicOptions
---@return {status: integer, request_id?: string}|nil result
---@return lufa.error? err
function M.update_classic(opts)
  options.check(opts, { "endpoint", "api_key", "timeout", "name", "base_location", "relative_location", "sas" },
    "azureml.update_classic", 2)
  local client = { authorization = api_key_header(opts.api_key), timeout = opts.timeout or 60, retry = RETRY }
  local url = (opts.endpoint:gsub("^%s+", ""):gsub("%s+$", ""))
  local body = { Resources = json.array{ {
    Name = opts.name,
    Location = { BaseLocation = opts.base_location, RelativeLocation = opts.relative_location,
      SasBlobToken = opts.sas },
  } } }
  local res, err = request(client, "updating the trained model of " .. split_query(url),
    { method = "PATCH", url = url, body = json.encode(body, { reveal_secrets = true }) })
  if not res then return nil, err end
  return { status = res.status, request_id = res.headers["x-ms-request-id"] }
end

--- Case-insensitive member lookup: Azure's own examples mix camelCase and PascalCase here.
---@nodiscard
---@param t any
---@param name string
---@return any value nil when there is none (or `t` is not a table)
---@return string? key the key as the table spells it
local function member(t, name)
  if type(t) ~= "table" then return nil end
  if t[name] ~= nil then return t[name], name end
  local lower = name:lower()
  for k, v in pairs(t) do
    if type(k) == "string" and k:lower() == lower then return v, k end
  end
  return nil
end
M.member = member

--- The names of a web-service definition's assets of type Resource (the trained models).
---@nodiscard
---@param definition table
---@return string[] names
function M.resource_assets(definition)
  local names = {}
  local assets = member(member(definition, "properties"), "assets")
  if type(assets) == "table" then
    for _, a in pairs(assets) do
      local t = member(a, "type")
      if type(t) == "string" and t:lower() == "resource" then names[#names + 1] = member(a, "name") end
    end
  end
  table.sort(names)
  return names
end

--- Replaces, in a web-service definition, the location of the Resource asset named `name`.
--- Only that asset's `locationInfo.uri` changes.
--- Errors: `nil, err` (code "TrainedModelNotFound") naming the assets that exist.
---@param definition table
---@param name string
---@param uri string|lufa.secret
---@return true|nil ok
---@return lufa.error? err
function M.set_model_location(definition, name, uri)
  local assets = member(member(definition, "properties"), "assets")
  if type(assets) == "table" then
    for _, a in pairs(assets) do
      local t = member(a, "type")
      if member(a, "name") == name and type(t) == "string" and t:lower() == "resource" then
        local loc, key = member(a, "locationInfo")
        if type(loc) ~= "table" then
          loc = json.object{}
          a[key or "locationInfo"] = loc
        end
        local _, ukey = member(loc, "uri")
        loc[ukey or "uri"] = uri
        return true
      end
    end
  end
  local names = M.resource_assets(definition)
  return nil, E.new{ kind = "azureml", code = "TrainedModelNotFound",
    message = string.format("the web service has no trained-model asset named '%s'; its Resource assets are: %s",
      tostring(name), #names > 0 and ("'" .. table.concat(names, "', '") .. "'") or "(none)") }
end

--- The location (without its query) of the Resource asset named `name`, or nil.
---@nodiscard
---@param definition table
---@param name string
---@return string|nil location
function M.model_location(definition, name)
  local assets = member(member(definition, "properties"), "assets")
  for _, a in pairs(type(assets) == "table" and assets or {}) do
    local t = member(a, "type")
    if member(a, "name") == name and type(t) == "string" and t:lower() == "resource" then
      local uri = member(member(a, "locationInfo"), "uri")
      return type(uri) == "string" and uri:match("^[^?]*") or nil
    end
  end
end

---@class lufa.azureml.UpdateArmOptions
---@field endpoint string the updateResourceEndpoint, with api-version
---@field authorization lufa.secret|fun(fresh: boolean): lufa.secret "Bearer …", or a function returning one (fresh asks for a newly fetched token)
---@field name string the trained-model asset name
---@field uri lufa.secret the model's blob URL, with its SAS
---@field location string the same URL without the SAS, to recognise an update already made
---@field poll_interval? number first poll delay, seconds (default 0.5; backs off to 10 s; Retry-After wins)
---@field timeout? number seconds (default 600)
---@field sleep? fun(seconds: number)
---@field log? fun(fmt: string, ...: any)
---@field journal? fun(value: table) records progress before each wait: `{phase = "sent"}` before the PATCH, `{phase = "accepted", operation = url}` after it
---@field journaled? table what an interrupted update journaled: continue from there

--- Azure Resource Manager web service: GET the definition, swap the trained model's location, PATCH the
--- whole definition back, then follow the long-running operation until it Succeeded or Failed.
--- A PATCH whose answer was lost (the retry then meets 409 "being provisioned", or the connection broke) is
--- judged by the definition the service holds: when it already names this model, the update went through
--- and its provisioning is followed; it is never sent blindly again.
--- Errors: `nil, err`.
---@async
---@param opts lufa.azureml.UpdateArmOptions
---@return table|nil definition the final definition
---@return lufa.error? err
function M.update_arm(opts)
  options.check(opts, { "endpoint", "authorization", "name", "uri", "location", "poll_interval", "request_timeout",
    "timeout", "sleep", "log", "journal", "journaled" }, "azureml.update_arm", 2)
  local url = (opts.endpoint:gsub("^%s+", ""):gsub("%s+$", ""):gsub("%.$", ""))
  local function auth(fresh)
    if type(opts.authorization) == "function" then return opts.authorization(fresh) end
    return opts.authorization
  end
  local function call(what, o, policy)
    local a, aerr = auth(false)
    if not a then return nil, aerr end
    local client = { authorization = a, timeout = opts.request_timeout or 60, retry = policy or RETRY }
    local res, err, raw = request(client, what, o)
    -- a token that expired in flight (clocks differ): one more try with a freshly fetched token
    if not res and err.status == 401 and type(opts.authorization) == "function" then
      a, aerr = auth(true)
      if not a then return nil, aerr end
      client.authorization = a
      res, err, raw = request(client, what, o)
    end
    return res, err, raw
  end
  local log = opts.log or function() end
  local journal = opts.journal or function() end
  local sleep = opts.sleep or lufa.sleep
  local deadline = lufa.now() + (opts.timeout or 600)
  local wanted = opts.location or (type(opts.uri) == "string" and opts.uri:match("^[^?]*")) or nil
  local function read()
    local res, err = call("reading web service " .. split_query(url), { method = "GET", url = url })
    if not res then return nil, err end
    local def, derr = decode_body(res, "reading the web service", url)
    if type(def) ~= "table" then return nil, derr end
    return def
  end
  -- Without the operation's URL: the web service's own provisioningState tells when the update is done.
  local function wait_provisioned()
    local delay = opts.poll_interval or 0.5
    while true do
      local def, err = read()
      if not def then return nil, err end
      local state = member(member(def, "properties"), "provisioningState")
      if state == "Succeeded" then return def end
      if state == "Failed" then
        return nil, E.new{ kind = "azureml", code = "UpdateFailed",
          message = "updating the web service's trained model failed: its provisioningState is Failed" }
      end
      if lufa.now() + delay > deadline then
        return nil, E.new{ kind = "azureml", code = "timeout", message = "the web-service update did not finish in time" }
      end
      sleep(delay)
      delay = math.min(10, delay * 1.5)
    end
  end
  -- Whether an update whose answer was lost went through. The model's location alone cannot tell when each
  -- run writes its model to the same blob (the location was already that): the definition's modifiedOn,
  -- read before the update was sent, must have changed too, or its provisioning be under way.
  local function already_applied(modified_before)
    local def = read()
    if not def or wanted == nil or M.model_location(def, opts.name) ~= wanted then return false end
    local props = member(def, "properties")
    local state = member(props, "provisioningState")
    if state ~= nil and state ~= "Succeeded" and state ~= "Failed" then return true end
    if modified_before == nil then return true end  -- a definition without modifiedOn: the location is all there is
    return member(props, "modifiedOn") ~= modified_before
  end

  local async
  local resumed = type(opts.journaled) == "table" and opts.journaled or nil
  if resumed and resumed.phase == "accepted" and type(resumed.operation) == "string" then
    log("following the web-service update accepted before lufa stopped")
    async = resumed.operation
  elseif resumed and resumed.phase == "sent" and already_applied(resumed.modified) then
    log("the web-service update sent before lufa stopped went through; following its provisioning")
    return wait_provisioned()
  else
    local res, err
    for attempt = 1, 3 do
      local def
      def, err = read()
      if not def then return nil, err end
      local ok, serr = M.set_model_location(def, opts.name, opts.uri)
      if not ok then return nil, serr end
      -- the read-only state is not ours to send back
      local props = member(def, "properties")
      local _, pkey = member(props, "provisioningState")
      if pkey then props[pkey] = nil end
      local modified = member(props, "modifiedOn")
      journal({ phase = "sent", modified = modified })
      res, err = call("updating web service " .. split_query(url), { method = "PATCH", url = url,
        body = json.encode(def, { reveal_secrets = true }), fresh_connection = true }, PATCH_RETRY)
      if res then break end
      -- the answer may have been lost after the service took the update: look before deciding
      if err.status ~= 409 and err.status ~= nil then return nil, err end
      if already_applied(modified) then
        log("the web-service update went through although its answer was lost; following its provisioning")
        return wait_provisioned()
      end
      -- the service did not take it: sending it again cannot apply it twice
      if err.status ~= nil or attempt == 3 then return nil, err end
      log("the web-service update's answer was lost and the service did not take it; sending it again")
    end
    async = res.headers["azure-asyncoperation"]
    if async then journal({ phase = "accepted", operation = async }) end
  end
  if async then
    local delay = opts.poll_interval or 0.5  -- short updates finish fast; longer ones back off to 10 s
    while true do
      local pres, perr = call("polling the web-service update", { method = "GET", url = async })
      if not pres then return nil, perr end
      local st = decode_body(pres, "polling the web-service update", async)
      local status = type(st) == "table" and (member(st, "status") or member(st, "provisioningState")) or nil
      if status == "Succeeded" then break end
      if status == "Failed" or status == "Canceled" or status == "Cancelled" then
        local e = type(st) == "table" and (member(st, "error") or member(st, "errorInfo")) or nil
        local msg = type(e) == "table" and (member(e, "message") or member(e, "code")) or "no details given"
        return nil, E.new{ kind = "azureml", code = "UpdateFailed", message = string.format(
          "updating the web service's trained model %s: %s", status:lower(), tostring(msg)) }
      end
      if lufa.now() + delay > deadline then
        return nil, E.new{ kind = "azureml", code = "timeout", message = "the web-service update did not finish in time" }
      end
      local hint = http.retry_after(pres.headers["retry-after"])
      sleep(hint or delay)
      delay = math.min(10, delay * 1.5)
    end
  end
  return read()
end

return M
