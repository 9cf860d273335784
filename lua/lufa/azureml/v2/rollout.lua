--- lufa.azureml.v2.rollout: a safe rollout of a new deployment onto an online endpoint.
--- 1. the new deployment is created (or updated) with no live traffic and followed to Succeeded;
--- 2. it is smoke-tested directly (`azureml-model-deployment` header) with a sample request and expectation;
--- 3. optionally it shadows a share of the traffic (`mirrorTraffic`) while probes run;
--- 4. traffic shifts in steps (e.g. 10, 50, 100 %), each followed by scoring probes (pinned to the new
---    deployment, and through the endpoint as clients see it); a step whose error rate or latency is over
---    the limit ends the rollout;
--- 5. on any failure the endpoint gets back the traffic and mirror maps it had before, exactly; the new
---    deployment is deleted (unless `keep_failed`); the error carries the probes' evidence;
--- 6. after success the previous deployments are deleted only when `delete_previous` is set.
--- The maps from before are journaled before anything changes, so a rollout interrupted (lufa stopped)
--- is first reverted to them when it is run again: no run leaves a half-shifted traffic map behind.
---
--- Example:
--- ```lua
--- local rollout = require "lufa.azureml.v2.rollout"
--- local t = rollout.step_traffic({ blue = 60, red = 40 }, "green", 10)
--- print(t.blue, t.red, t.green)
--- print(rollout.meets({ 0.2, 0.7 }, { min = 0, max = 1 }))
--- print(rollout.meets({ 0.2, 1.7 }, { max = 1 }))
--- ```
--- ```text output
--- 54	36	10
--- true
--- false	expected numbers in [-inf, 1], got [0.2,1.7]
--- ```
local json = require "lufa.json"
local options = require "lufa.options"
local E = require "lufa.error"
local online = require "lufa.azureml.v2.online"

---@class lufa.azureml.v2.rollout
local M = {}

---@class lufa.azureml.v2.Expectation
---@field equals? any the whole answer
---@field contains? string text the answer's JSON must contain
---@field min? number every number in the answer (or its list) at least this
---@field max? number every number at most this

---@class lufa.azureml.v2.RolloutOptions
---@field endpoint string
---@field deployment string the new deployment's name
---@field properties table its deployment properties
---@field sku? table
---@field request any a sample scoring body
---@field expect? lufa.azureml.v2.Expectation
---@field steps? integer[] percentages (default {10, 50, 100})
---@field probes? integer per step and kind (default 5)
---@field max_error_rate? number 0..1 (default 0)
---@field max_latency? number seconds
---@field mirror? integer percent to shadow before shifting
---@field delete_previous? boolean
---@field keep_failed? boolean
---@field log? fun(fmt: string, ...: any)
---@field journal? fun(value: table) records the maps from before, before anything changes
---@field journaled? table what an interrupted rollout journaled
---@field on_step? fun(step: table)

--- The traffic map of a step: `new` gets `percent`, the previous deployments share the rest in the
--- proportions they had (integers summing to 100; the remainder goes to the largest).
---@nodiscard
---@param previous table<string, integer> deployment → percent
---@param new string
---@param percent integer
---@return table<string, integer> traffic
function M.step_traffic(previous, new, percent)
  local out, total, names = json.object{}, 0, {}
  for name, p in pairs(previous) do
    if name ~= new and p > 0 then total = total + p; names[#names + 1] = name end
  end
  table.sort(names, function(a, b) return previous[a] > previous[b] or (previous[a] == previous[b] and a < b) end)
  if total == 0 then
    out[new] = 100
    return out
  end
  local rest, given = 100 - percent, 0
  for _, name in ipairs(names) do
    local share = (previous[name] * rest) // total
    out[name] = share
    given = given + share
  end
  if names[1] then out[names[1]] = out[names[1]] + (rest - given) end
  for name, p in pairs(previous) do if out[name] == nil and name ~= new then out[name] = 0 end end
  out[new] = percent
  return out
end

--- Whether an answer meets the expectation: `equals` (the whole answer), `contains` (text of the JSON),
--- `min` / `max` (every number in the answer, or in its list).
---@nodiscard
---@param answer any
---@param expect? lufa.azureml.v2.Expectation
---@return boolean ok
---@return string? why what did not match
function M.meets(answer, expect)
  if expect == nil then return true end
  if expect.equals ~= nil and json.encode(answer) ~= json.encode(expect.equals) then
    return false, string.format("expected %s, got %s", json.encode(expect.equals), json.encode(answer))
  end
  if expect.contains ~= nil and not json.encode(answer):find(tostring(expect.contains), 1, true) then
    return false, string.format("expected the answer to contain '%s', got %s", tostring(expect.contains), json.encode(answer))
  end
  if expect.min ~= nil or expect.max ~= nil then
    local values = type(answer) == "table" and answer or { answer }
    if #values == 0 then return false, "expected numbers, got " .. json.encode(answer) end
    for _, v in ipairs(values) do
      local n = tonumber(v)
      if n == nil or (expect.min and n < expect.min) or (expect.max and n > expect.max) then
        return false, string.format("expected numbers in [%s, %s], got %s", tostring(expect.min or "-inf"),
          tostring(expect.max or "inf"), json.encode(answer))
      end
    end
  end
  return true
end

-- Runs `n` probes pinned to `deployment` and `n` through the endpoint; returns the step's numbers.
local function probe(ws, o, n, deployment)
  local ep = online.endpoint(ws, o.endpoint)
  local stats = { probes = 0, errors = 0, maxLatency = 0, failures = json.array{} }
  local function one(pinned)
    local answer, info = online.score(ws, o.endpoint, o.request, { deployment = pinned, endpoint_resource = ep })
    stats.probes = stats.probes + 1
    local seconds = info and info.seconds or 0
    if seconds > stats.maxLatency then stats.maxLatency = seconds end
    local ok, why = answer ~= nil, nil
    if ok then ok, why = M.meets(answer, o.expect) else why = tostring(info.message) end
    if ok and o.max_latency and seconds > o.max_latency then
      ok, why = false, string.format("answered in %.3f s, over the %.3f s limit", seconds, o.max_latency)
    end
    if not ok then
      stats.errors = stats.errors + 1
      if #stats.failures < 5 then
        stats.failures[#stats.failures + 1] = string.format("%s: %s", pinned or "endpoint", why)
      end
    end
  end
  for _ = 1, n do
    one(deployment)
    one(nil)
  end
  stats.errorRate = stats.probes > 0 and stats.errors / stats.probes or 0
  stats.maxLatency = math.floor(stats.maxLatency * 1000 + 0.5) / 1000
  return stats
end

--- Rolls `o.deployment` out on `o.endpoint`.
--- Errors: `nil, err` with `err.report`: what was done, the failing step's evidence, and `reverted`.
---@async
---@param ws lufa.azureml.v2.workspace.Workspace
---@param o lufa.azureml.v2.RolloutOptions
---@return {previous: table, previousMirror: table, traffic: table, steps: table[], deleted: string[]}|nil report
---@return lufa.error? err
function M.run(ws, o)
  options.check(o, { "endpoint", "deployment", "properties", "sku", "request", "expect", "steps", "probes",
    "max_error_rate", "max_latency", "mirror", "delete_previous", "keep_failed", "log", "journal", "journaled",
    "on_step" }, "rollout.run", 2)
  local log = o.log or function() end
  local journal = o.journal or function() end
  local report = { endpoint = o.endpoint, deployment = o.deployment, steps = json.array{}, deleted = json.array{} }
  if type(o.journaled) == "table" and type(o.journaled.previous) == "table" then
    log("putting back the traffic of %s from before the interrupted rollout", o.endpoint)
    local ok, err = online.set_traffic(ws, o.endpoint, o.journaled.previous, o.journaled.previousMirror or json.object{})
    if not ok then return nil, err end
  end
  local previous, previous_mirror = online.traffic(ws, o.endpoint)
  if not previous then return nil, previous_mirror end
  report.previous, report.previousMirror = previous, previous_mirror
  journal({ previous = previous, previousMirror = previous_mirror })

  local function fail(code, message, evidence)
    report.failure = evidence
    local ok, rerr = online.set_traffic(ws, o.endpoint, previous, previous_mirror)
    report.reverted = ok ~= nil
    if ok then log("traffic of %s put back to %s", o.endpoint, json.encode(previous))
    else log("could not put back the traffic of %s: %s", o.endpoint, tostring(rerr)) end
    if not o.keep_failed and previous[o.deployment] == nil then
      local dok, derr = online.delete_deployment(ws, o.endpoint, o.deployment)
      if dok then report.deleted[#report.deleted + 1] = o.deployment
      else log("could not delete deployment %s: %s", o.deployment, tostring(derr)) end
    end
    report.traffic = select(1, online.traffic(ws, o.endpoint))
    return nil, E.new{ kind = "azureml", code = code, report = report, message = message ..
      (report.reverted and "; traffic was put back as it was" or "; putting the traffic back failed too: " .. tostring(rerr)) }
  end

  log("creating deployment %s on %s", o.deployment, o.endpoint)
  local dep, derr = online.put_deployment(ws, o.endpoint, o.deployment, o.properties, { sku = o.sku })
  if not dep then
    local logs = online.logs(ws, o.endpoint, o.deployment, 50)
    return fail("DeploymentFailed", string.format("deployment %s failed: %s", o.deployment, derr.message),
      { error = derr.message, logs = logs })
  end

  local answer, info = online.score(ws, o.endpoint, o.request, { deployment = o.deployment })
  local ok, why = answer ~= nil, nil
  if ok then ok, why = M.meets(answer, o.expect) else why = info.message end
  report.smokeTest = { passed = ok, answer = answer, reason = why }
  if not ok then
    return fail("SmokeTestFailed", string.format("the smoke test of deployment %s failed: %s", o.deployment, why),
      { smokeTest = report.smokeTest, logs = online.logs(ws, o.endpoint, o.deployment, 50) })
  end
  log("deployment %s passed its smoke test", o.deployment)

  local n = o.probes or 5
  local max_rate = o.max_error_rate or 0
  if o.mirror and o.mirror > 0 then
    local mirror = json.object{ [o.deployment] = o.mirror }
    local set, serr = online.set_traffic(ws, o.endpoint, previous, mirror)
    if not set then return fail(serr.code, "mirroring traffic failed: " .. serr.message, { error = serr.message }) end
    local stats = probe(ws, o, n, o.deployment)
    stats.mirror = o.mirror
    report.steps[#report.steps + 1] = stats
    log("mirroring %d %% to %s: %d probes, %d errors", o.mirror, o.deployment, stats.probes, stats.errors)
    if stats.errorRate > max_rate then
      return fail("HealthCheckFailed", string.format("deployment %s failed its health check while mirroring: %s",
        o.deployment, table.concat(stats.failures, "; ")), stats)
    end
  end

  for _, percent in ipairs(o.steps or { 10, 50, 100 }) do
    local traffic = M.step_traffic(previous, o.deployment, percent)
    local set, serr = online.set_traffic(ws, o.endpoint, traffic, json.object{})
    if not set then
      return fail(serr.code, string.format("shifting %d %% to %s failed: %s", percent, o.deployment, serr.message),
        { error = serr.message, traffic = traffic })
    end
    local stats = probe(ws, o, n, o.deployment)
    stats.percent, stats.traffic = percent, traffic
    report.steps[#report.steps + 1] = stats
    log("%d %% on %s (%s): %d probes, %d errors, slowest %.3f s", percent, o.deployment, json.encode(traffic),
      stats.probes, stats.errors, stats.maxLatency)
    if o.on_step then o.on_step(stats) end
    if stats.errorRate > max_rate then
      return fail("HealthCheckFailed", string.format("deployment %s failed its health check at %d %%: " ..
        "%d of %d probes failed (%s)", o.deployment, percent, stats.errors, stats.probes,
        table.concat(stats.failures, "; ")), stats)
    end
  end

  if o.delete_previous then
    local final = json.object{ [o.deployment] = 100 }
    local set, serr = online.set_traffic(ws, o.endpoint, final, json.object{})
    if not set then return nil, serr end
    for name in pairs(previous) do
      if name ~= o.deployment then
        local dok, delerr = online.delete_deployment(ws, o.endpoint, name)
        if not dok then return nil, delerr end
        report.deleted[#report.deleted + 1] = name
        log("deleted previous deployment %s", name)
      end
    end
  end
  report.traffic = select(1, online.traffic(ws, o.endpoint))
  return report
end

return M
