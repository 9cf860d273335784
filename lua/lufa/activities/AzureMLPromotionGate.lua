--- AzureMLPromotionGate (a lufa extension): champion/challenger decision on a metric, recorded in the run.
-- typeProperties: `metric` (a property name of the model versions, such as "rmse"), `direction` ("lower"
-- or "higher" is better), `challenger` (`{"modelName", "version"}`, or `{"value": n}`), optional `champion`
-- (the same forms; absent: there is none and the challenger is promoted), `minImprovement` (how much better
-- the challenger must be, in the metric's unit; default 0), `failIfRejected` (fail the activity instead of
-- answering promote = false).
-- Output: `{promote, metric, direction, challengerValue, championValue, improvement, reason}`, so that an
-- IfCondition can read `@activity('Gate').output.promote` and the run record keeps the numbers.
-- @module lufa.activities.AzureMLPromotionGate
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"
local models = require "lufa.azureml.v2.models"
local support = require "lufa.azureml.v2.activity"

local M = {}

function M.validate(activity, report)
  support.check(activity, report, { "metric", "direction", "challenger" })
  local d = L.get(activity.typeProperties, "direction")
  if type(d) == "string" and not d:find("@", 1, true) and d:lower() ~= "lower" and d:lower() ~= "higher" then
    report:error(".typeProperties.direction", "direction must be \"lower\" or \"higher\", got '%s'", d)
  end
end

-- The metric of one side: a literal value or a model version's property.
local function value_of(ctx, ws, side, metric, what)
  if L.get(side, "value") ~= nil then
    local n = L.number(L.get(side, "value"))
    if not n then ctx:fail(support.ERROR_CODE, string.format("%s.value must be a number", what)) end
    return n, "value"
  end
  local name, version = L.get(side, "modelName"), L.get(side, "version")
  if name == nil or version == nil then
    ctx:fail(support.ERROR_CODE, string.format("%s needs \"modelName\" and \"version\", or \"value\"", what))
  end
  local v, err = models.get(ws, name, version)
  if not v then support.fail(ctx, err, "reading the " .. what) end
  local n = models.metric(v, metric)
  if not n then
    ctx:fail(support.ERROR_CODE, string.format("the %s, model %s version %s, has no numeric property '%s'",
      what, name, tostring(version), metric))
  end
  return n, string.format("%s:%s", name, tostring(version))
end

function M.run(ctx, activity)
  local metric = ctx:property("metric")
  local direction = tostring(ctx:property("direction")):lower()
  if direction ~= "lower" and direction ~= "higher" then
    ctx:fail(support.ERROR_CODE, "direction must be \"lower\" or \"higher\"")
  end
  local ws
  local function workspace() ws = ws or support.workspace(ctx, activity); return ws end
  local challenger = ctx:property("challenger")
  local champion = ctx:property("champion")
  local function side(s, what)
    if L.get(s, "value") ~= nil then return value_of(ctx, nil, s, metric, what) end
    return value_of(ctx, workspace(), s, metric, what)
  end
  local cv, cname = side(challenger, "challenger")
  local min = L.number(ctx:property("minImprovement")) or 0
  local out = json.object{ metric = metric, direction = direction, challengerValue = cv, challenger = cname,
    minImprovement = min }
  if champion == nil then
    out.promote, out.championValue, out.reason = true, json.null, "there is no champion"
  else
    local pv, pname = side(champion, "champion")
    local improvement = direction == "lower" and (pv - cv) or (cv - pv)
    out.championValue, out.champion, out.improvement = pv, pname, improvement
    out.promote = improvement > min
    out.reason = string.format("%s %s %g vs champion %g: %s by %g (needed more than %g)", metric,
      cname, cv, pv, improvement >= 0 and "better" or "worse", math.abs(improvement), min)
  end
  ctx:log("info", "promotion gate on %s: %s (%s)", metric, out.promote and "promote" or "keep the champion", out.reason)
  if not out.promote and L.bool(ctx:property("failIfRejected")) then
    ctx:fail(support.ERROR_CODE, "the challenger is not promoted: " .. out.reason)
  end
  return out
end

return M
