--- ExecutePipeline: starts another pipeline of the factory. With `waitOnCompletion`
-- (default false, as the REST spec) it mirrors the child's status and cancelling it
-- cancels the child; its output then holds the child's `pipelineReturnValue`.
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"
local linked = require "lufa.linked"

local M = {}

function M.validate(activity, report)
  local ref = report:require(activity.typeProperties, "pipeline")
  if ref ~= nil and not linked.reference_name(ref) then
    report:error(".typeProperties.pipeline", "pipeline must be a PipelineReference {referenceName}")
  end
  local name = linked.reference_name(ref)
  if name and report.pipeline_name and name:lower() == report.pipeline_name:lower() then
    report:warning(".typeProperties.pipeline", "pipeline '%s' executes itself; make sure the recursion ends", name)
  end
  local w = L.get(activity.typeProperties, "waitOnCompletion")
  if w ~= nil and L.bool(w) == nil then
    report:error(".typeProperties.waitOnCompletion", "waitOnCompletion must be true or false")
  end
end

function M.run(ctx)
  local name = linked.reference_name(ctx:property("pipeline"))
  local wait = L.bool(ctx:property("waitOnCompletion")) == true
  local params = ctx:property("parameters") or {}
  local handle, err = ctx:run_pipeline(name, params, {wait = wait})
  if not handle then ctx:fail("ExecutePipelineFailed", tostring(err.message or err)) end
  local output = json.object{pipelineName = name, pipelineRunId = handle.runId}
  if not wait then return output end
  local record = handle:wait()
  output.pipelineName = record.pipelineName
  if handle:return_value() ~= nil then output.pipelineReturnValue = handle:return_value() end
  if record.status ~= "Succeeded" then
    ctx:fail("ChildPipelineFailed", string.format("Operation on target pipeline '%s' (run %s) ended %s: %s",
      record.pipelineName, record.runId, record.status, record.message))
  end
  return output
end

return M
