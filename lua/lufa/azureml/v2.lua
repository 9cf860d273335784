--- lufa.azureml.v2: clients for Azure ML v2 workspaces (`Microsoft.MachineLearningServices`).
--- One module per concern; this one gathers them:
---
--- `workspace` (lufa.azureml.v2.workspace: credentials, calls, long-running operations), `jobs`, `models`,
--- `batch` (batch endpoints), `online` (online endpoints and deployments), `rollout` (safe rollout).
---
--- Example:
--- ```lua fragment
--- local v2 = require "lufa.azureml.v2"
--- local ws = v2.workspace{ subscription_id = sub, resource_group = rg, workspace = "ws1", managed_identity = true }
--- local job = assert(v2.jobs.run(ws, v2.jobs.name_for("train", run_id), v2.jobs.command{ ... }))
--- local model = assert(v2.models.register(ws, "churn", { model_uri = v2.jobs.output_uri(job.name, "model") }))
--- assert(v2.rollout.run(ws, { endpoint = "churn", deployment = "green", properties = { ... }, request = ... }))
--- ```
local workspace = require "lufa.azureml.v2.workspace"

---@class lufa.azureml.v2
---@field jobs lufa.azureml.v2.jobs
---@field models lufa.azureml.v2.models
---@field batch lufa.azureml.v2.batch batch endpoints
---@field online lufa.azureml.v2.online online endpoints and deployments
---@field rollout lufa.azureml.v2.rollout safe rollout
return {
  --- A workspace client (see lufa.azureml.v2.workspace.new).
  ---@param opts lufa.azureml.v2.WorkspaceOptions
  ---@return lufa.azureml.v2.workspace.Workspace ws
  workspace = function(opts) return workspace.new(opts) end,
  jobs = require "lufa.azureml.v2.jobs",
  models = require "lufa.azureml.v2.models",
  batch = require "lufa.azureml.v2.batch",
  online = require "lufa.azureml.v2.online",
  rollout = require "lufa.azureml.v2.rollout",
}
