--- AzureMLSafeRollout (a lufa extension): rolls a new deployment out on an Azure ML v2 online endpoint of
-- the activity's `AzureMLService` workspace, and reverts the traffic automatically when it is unhealthy.
-- typeProperties: `endpointName`, `deploymentName` (the new deployment), `deployment` (its properties as the
-- REST API takes them: `model` (the model version's asset id), `instanceType`, `environmentId`,
-- `codeConfiguration`, …), `sampleRequest` (a scoring body for the smoke test and the probes), optional
-- `expect` (`{"equals": …}`, `{"contains": "…"}`, `{"min": n, "max": n}` on the numbers answered),
-- `trafficSteps` (percentages, default [10, 50, 100]), `probesPerStep` (default 5), `maxErrorRate` (0..1,
-- default 0), `maxLatencySeconds`, `mirrorPercent` (shadow this share first), `deletePrevious` (delete the
-- old deployments after success), `keepFailed` (keep a failed new deployment for inspection), `sku`.
-- See lufa.azureml.v2.rollout for the steps. The traffic from before is journaled before anything changes:
-- a resumed run puts it back first, and an interrupted one (timeout, cancellation) before it ends. Output: the rollout report (previous and final traffic, each step's
-- probes, errors and slowest answer, what was deleted). A failed rollout fails the activity with the
-- probes' evidence, after the traffic was put back.
-- @module lufa.activities.AzureMLSafeRollout
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"
local online = require "lufa.azureml.v2.online"
local rollout = require "lufa.azureml.v2.rollout"
local support = require "lufa.azureml.v2.activity"

local M = {}

function M.validate(activity, report)
  support.check(activity, report, { "endpointName", "deploymentName", "deployment", "sampleRequest" })
  support.check_object(activity, report, "deployment")
  support.check_object(activity, report, "expect")
  local steps = L.get(activity.typeProperties, "trafficSteps")
  if L.is_array(steps) then
    local last = 0
    for i, p in ipairs(steps) do
      local n = L.number(p)
      if not n or n <= last or n > 100 or n ~= math.floor(n) then
        report:error(string.format(".typeProperties.trafficSteps[%d]", i - 1),
          "traffic steps must be whole percentages rising to at most 100")
        break
      end
      last = n
    end
    if last ~= 100 then report:error(".typeProperties.trafficSteps", "the last traffic step must be 100") end
  elseif steps ~= nil and type(steps) ~= "string" then
    report:error(".typeProperties.trafficSteps", "trafficSteps must be a list of percentages")
  end
  local mirror = L.number(L.get(activity.typeProperties, "mirrorPercent"))
  if mirror and (mirror < 0 or mirror > 50) then
    report:error(".typeProperties.mirrorPercent", "mirrorPercent must be between 0 and 50 (Azure ML's limit)")
  end
end

function M.run(ctx, activity)
  local ws = support.workspace(ctx, activity)
  local steps
  local given = ctx:property("trafficSteps")
  if given ~= nil then
    steps = {}
    for i, p in ipairs(given) do steps[i] = math.tointeger(L.number(p)) end
  end
  local expect = ctx:property("expect")
  local endpoint, before = ctx:property("endpointName"), nil
  local finished = false
  -- an interrupted rollout (timeout, cancel, SIGTERM) puts the traffic back before the activity ends
  ctx:defer(function()
    if finished or not before then return end
    local ok, rerr = online.set_traffic(ws, endpoint, before.previous, before.previousMirror)
    if ok then ctx:log("warning", "rollout interrupted: traffic of %s put back to %s", endpoint, json.encode(before.previous))
    else ctx:log("error", "rollout interrupted, and putting the traffic of %s back failed: %s", endpoint, tostring(rerr)) end
  end)
  local report, err = rollout.run(ws, {
    endpoint = endpoint, deployment = ctx:property("deploymentName"),
    properties = ctx:property("deployment"), sku = ctx:property("sku"), request = ctx:property("sampleRequest"),
    expect = expect and { equals = L.get(expect, "equals"), contains = L.get(expect, "contains"),
      min = L.number(L.get(expect, "min")), max = L.number(L.get(expect, "max")) } or nil,
    steps = steps, probes = L.int(ctx:property("probesPerStep")), max_error_rate = L.number(ctx:property("maxErrorRate")),
    max_latency = L.number(ctx:property("maxLatencySeconds")), mirror = L.number(ctx:property("mirrorPercent")),
    delete_previous = L.bool(ctx:property("deletePrevious")), keep_failed = L.bool(ctx:property("keepFailed")),
    log = function(...) ctx:log("info", ...) end,
    journal = function(v)
      before = v
      ctx:journal("v2.rollout", v)
    end,
    journaled = ctx:journaled("v2.rollout"),
  })
  finished = true
  if not report then
    local r = err.report
    local evidence = r and r.failure and json.encode(r.failure) or nil
    ctx:fail(support.ERROR_CODE, err.message .. (evidence and (". Evidence: " .. evidence) or ""))
  end
  return json.object(report)
end

return M
