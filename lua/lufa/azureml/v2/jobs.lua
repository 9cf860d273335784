--- lufa.azureml.v2.jobs: Azure ML v2 jobs (command and pipeline jobs) of a workspace.
--- A v2 job's name is chosen by the client and `PUT …/jobs/{name}` creates it, so submitting is idempotent:
--- lufa derives the name from the run and activity (`name_for`), and an answer lost in transit is resolved
--- by reading the job under that name, never by creating another. Waiting polls with backoff (Retry-After
--- wins), reports each status change, and a wait that times out or is interrupted cancels the job.
---
--- Example:
--- ```lua fragment
--- local jobs = require "lufa.azureml.v2.jobs"
--- local name = jobs.name_for("train", run_id)
--- local job = assert(jobs.run(ws, name, jobs.command{ command = "python train.py --out ${{outputs.model}}",
---   environment_id = env, compute_id = compute, outputs = { model = { type = "uri_folder" } } }))
--- print(job.properties.status, jobs.output_uri(name, "model"))
--- ```
local lufa = require "lufa"
local options = require "lufa.options"
local http = require "lufa.http"
local json = require "lufa.json"
local E = require "lufa.error"
local workspace = require "lufa.azureml.v2.workspace"

---@class lufa.azureml.v2.jobs
---@field TERMINAL table<string, true> statuses after which a job changes no more: Completed, Failed, Canceled
local M = {}

---@class lufa.azureml.v2.WaitOptions
---@field timeout? number seconds
---@field poll_interval? number first delay, seconds (default the workspace's)
---@field on_status? fun(status: string, job: table) called at each change
---@field sleep? fun(seconds: number)
---@field read? fun(ws: lufa.azureml.v2.workspace.Workspace, name: string): table?, lufa.error? how to read the job (default `get`)

---@class lufa.azureml.v2.RunOptions: lufa.azureml.v2.WaitOptions
---@field resume? boolean the job was submitted before: only wait
---@field on_submitted? fun(job: table, lost: boolean) called once the job exists, before waiting: journal it there

--- Statuses after which a job changes no more. Anything else (including statuses this module does not
--- know, and NotResponding, which may go back to any earlier state) means "keep polling".
M.TERMINAL = { Completed = true, Failed = true, Canceled = true }

-- The job PUT is repeated on throttling and 5xx (same name, same body: nothing doubles), but a transport
-- error is resolved by reading the job.
local SUBMIT_RETRY = { attempts = 6, base_delay = 1, max_delay = 30, retry_transport = false,
  statuses = workspace.RETRY.statuses }

--- A job name (`^[a-zA-Z0-9][a-zA-Z0-9-_]{0,254}$`) made of `parts` (strings or numbers): other characters
--- become "-", so the same parts always give the same name.
---@nodiscard
---@param ... string|number the parts
---@return string name
function M.name_for(...)
  local out = {}
  for i, p in ipairs{ ... } do out[i] = (tostring(p):gsub("[^%w_-]+", "-"):gsub("^-+", ""):gsub("-+$", "")) end
  local name = table.concat(out, "-"):gsub("%-%-+", "-")
  if not name:match("^[%w]") then name = "job-" .. name end
  return name:sub(1, 255)
end

--- The `azureml://` URI of a job's named output (what model registration and later jobs take).
---@nodiscard
---@param name string the job's name
---@param output string
---@return string uri
function M.output_uri(name, output)
  return string.format("azureml://jobs/%s/outputs/%s", name, output)
end

local function io_map(map, discriminator)
  if map == nil then return nil end
  local out = json.object{}
  for k, v in pairs(map) do
    local entry = json.object{}
    for field, value in pairs(v) do
      if field == "type" then entry[discriminator] = value else entry[field] = value end
    end
    out[k] = entry
  end
  return out
end

--- The `properties` of a command job from Lua-style options: `command`, `environment_id`, `compute_id`,
--- optional `code_id`, `inputs` / `outputs` (name → `{type = "uri_folder"|"uri_file"|"literal"|
--- "mlflow_model"|…, uri =, value =, mode =}`), `experiment_name`, `display_name`, `description`, `tags`,
--- `properties`, `environment_variables`, `timeout` (ISO 8601, e.g. "PT2H").
---@nodiscard
---@param o table
---@return table properties
function M.command(o)
  options.check(o, { "command", "environment_id", "compute_id", "code_id", "experiment_name", "display_name",
    "description", "inputs", "outputs", "tags", "properties", "environment_variables", "timeout" }, "jobs.command", 2)
  local p = json.object{ jobType = "Command", command = o.command, environmentId = o.environment_id,
    computeId = o.compute_id, codeId = o.code_id, experimentName = o.experiment_name,
    displayName = o.display_name, description = o.description,
    inputs = io_map(o.inputs, "jobInputType"), outputs = io_map(o.outputs, "jobOutputType"),
    tags = o.tags and json.object(o.tags) or nil, properties = o.properties and json.object(o.properties) or nil,
    environmentVariables = o.environment_variables and json.object(o.environment_variables) or nil }
  if o.timeout then p.limits = json.object{ jobLimitsType = "Command", timeout = o.timeout } end
  return p
end

local function path_of(name) return "/jobs/" .. http.urlencode(name) end

--- The job resource `{id, name, properties = {status, …}}`, or nil, err (err.status 404: no such job).
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param name string
---@return table|nil job
---@return lufa.error? err
function M.get(ws, name)
  return ws:arm("reading job " .. name, "GET", path_of(name))
end

--- Creates the job `name` with `properties` (a command or pipeline job's properties). When the answer is
--- lost, the job is read back: one that exists is the one this call made (the name is ours), so it is
--- returned with `lost = true` as second value; one that does not is sent again (at most twice more).
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param name string
---@param properties table
---@return table|nil job
---@return boolean|lufa.error lost_or_err whether the answer was lost, or the error
function M.submit(ws, name, properties)
  local body = json.object{ properties = properties }
  local err
  for _ = 1, 3 do
    local job
    -- a fresh connection: a PUT re-sent by the transport would hide a lost answer from this loop
    job, err = ws:arm("submitting job " .. name, "PUT", path_of(name), body, SUBMIT_RETRY, { fresh_connection = true })
    if job then return job, false end
    if not err.transport then return nil, err end
    local found, gerr = M.get(ws, name)
    if found then return found, true end
    if gerr.status ~= 404 then return nil, gerr end
  end
  return nil, err
end

--- Asks the service to cancel the job, and follows the cancellation when it answers 202.
--- Errors: `nil, err`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param name string
---@return any ok true or the followed resource, or nil
---@return lufa.error? err
function M.cancel(ws, name)
  local doc, res = ws:arm("cancelling job " .. name, "POST", path_of(name) .. "/cancel", nil,
    { attempts = 4, base_delay = 1, max_delay = 10, retry_unsafe = true, statuses = workspace.RETRY.statuses })
  if not doc then return nil, res end
  if res.status == 202 then return ws:follow(res, { what = "cancelling job " .. name, timeout = 120 }) end
  return true
end

local WAIT_OPTIONS = { "sleep", "timeout", "poll_interval", "read", "on_status" }
local RUN_OPTIONS = { "sleep", "timeout", "poll_interval", "read", "on_status", "resume", "on_submitted" }
local wait

--- Polls the job until it is Completed, Failed or Canceled (batch-endpoint jobs are read on the endpoint's
--- host, through `opts.read`).
--- Errors: `nil, err`; a Failed or Canceled job: `code` "JobFailed"/"JobCanceled", `job` the resource.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param name string
---@param opts? lufa.azureml.v2.WaitOptions
---@return table|nil job the final job resource
---@return lufa.error? err
function M.wait(ws, name, opts)
  return wait(ws, name, options.check(opts or {}, WAIT_OPTIONS, "jobs.wait", 2))
end

wait = function(ws, name, opts)
  local sleep = opts.sleep or ws.sleep
  local deadline = opts.timeout and (lufa.now() + opts.timeout)
  local delay, last = opts.poll_interval or ws.poll_interval, nil
  while true do
    local job, res = (opts.read or M.get)(ws, name)
    if not job then return nil, res end
    local status = type(job.properties) == "table" and job.properties.status or "Unknown"
    if status ~= last and opts.on_status then opts.on_status(status, job) end
    last = status
    if status == "Completed" then return job end
    if status == "Failed" or status == "Canceled" then
      local props = type(job.properties.properties) == "table" and job.properties.properties or {}
      local reason = props["lufa.failureReason"] or props.failureReason
      local studio = type(job.properties.services) == "table" and type(job.properties.services.Studio) == "table"
        and job.properties.services.Studio.endpoint or nil
      return nil, E.new{ kind = "azureml", code = "Job" .. status, job = job, job_name = name, status_code = status,
        message = string.format("job %s %s%s%s", name, status == "Failed" and "failed" or "was canceled",
          reason and (": " .. tostring(reason)) or "", studio and (" (see " .. studio .. ")") or "") }
    end
    local hint = res and http.retry_after(res.headers["retry-after"])
    local d = hint or delay
    if deadline and lufa.now() + d > deadline then
      return nil, E.new{ kind = "azureml", code = "timeout", job_name = name,
        message = string.format("job %s did not finish within %g s (last status %s)", name, opts.timeout, status) }
    end
    sleep(d)
    delay = math.min(ws.max_poll_interval, delay * 1.5)
  end
end

--- Submits (or, with `opts.resume`, reconnects to) the job `name` and waits for it. A wait that ends by
--- timeout or interruption (the calling task cancelled) cancels the remote job.
--- Errors: `nil, err` as for `submit` and `wait`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param name string
---@param properties table
---@param opts? lufa.azureml.v2.RunOptions
---@return table|nil job the final job
---@return lufa.error? err
function M.run(ws, name, properties, opts)
  opts = options.check(opts or {}, RUN_OPTIONS, "jobs.run", 2)
  if not opts.resume then
    local job, err = M.submit(ws, name, properties)
    if not job then return nil, err end
    if opts.on_submitted then opts.on_submitted(job, err) end
  end
  local ended = false
  local guard <close> = setmetatable({}, { __close = function()
    if ended then return end
    -- an interrupted task can no longer wait: cancel from a task of its own
    lufa.spawn(function() M.cancel(ws, name) end)
  end })
  local job, err = wait(ws, name, opts)
  if job or (err and err.status_code) then ended = true end
  if not job and err.code == "timeout" then
    ended = true
    M.cancel(ws, name)
  end
  return job, err
end

return M
