--- The JSON API of `lufa serve` (docs/serve.md): the same data as the pages, in ADF's record shapes.
-- @module lufa.serve.api
local json = require "lufa.json"
local data = require "lufa.serve.data"
local actions = require "lufa.serve.actions"

local M = {}

local function reply(status, doc)
  return {status = status, headers = {["Content-Type"] = "application/json; charset=utf-8"},
    body = json.encode(doc, {pretty = true}) .. "\n"}
end
M.reply = reply

local function problem(status, message) return reply(status, json.object{error = message}) end
M.problem = problem

function M.runs(app, req)
  local list, next_cursor = data.runs_page(app.store, req.query)
  if not list then return problem(400, next_cursor) end
  return reply(200, json.object{value = json.array(list), continuationToken = next_cursor or json.null})
end

function M.run(app, _, id)
  local d = data.run(app.store, id)
  if not d then return problem(404, "no run '" .. id .. "' in the store") end
  return reply(200, json.object{pipelineRun = d.pipelineRun, activityRuns = json.array(d.activityRuns),
    finished = data.finished(d.pipelineRun.status)})
end

function M.triggers(app)
  local out = json.array{}
  for _, t in ipairs(data.triggers(app.store, app.factories)) do out[#out + 1] = data.trigger_json(t) end
  return reply(200, json.object{value = out})
end

function M.session(app)
  return reply(200, json.object{csrfToken = app.csrf, store = app.store.path})
end

local function body_of(req)
  if (req.headers["content-type"] or ""):find("json", 1, true) and req.body ~= "" then
    local ok, doc = pcall(json.decode, req.body)
    if not ok or type(doc) ~= "table" then return nil end
    return doc
  end
  return req.form or {}
end

function M.cancel(app, _, id)
  local said, err = actions.cancel(app, id)
  if not said then return problem(409, err) end
  return reply(200, json.object{message = said})
end

function M.rerun(app, req, id)
  local body = body_of(req)
  if not body then return problem(400, "the body must be a JSON object such as {\"fromFailure\": true}") end
  local params = type(body.parameters) == "table" and body.parameters or nil
  local new_id, err = actions.rerun(app, id, {from_failure = body.fromFailure == true or body.from_failure == "1",
    parameters = params})
  if not new_id then return problem(409, err) end
  return reply(200, json.object{runId = new_id})
end

function M.trigger(app, req, action)
  local body = body_of(req)
  if not body then return problem(400, "the body must be a JSON object {\"scope\": ..., \"name\": ...}") end
  local said, err = actions.trigger(app, body.scope, body.name, action)
  if not said then return problem(400, err) end
  return reply(200, json.object{message = said})
end

return M
