--- Live updates of a run page as server-sent events: the run is read from the store every POLL_SECONDS
-- (another process may be executing it) and, when anything changed, an `update` event carries the page's
-- parts rendered again; `end` follows once the run has finished. Comments keep idle connections checked.
-- @module lufa.serve.sse
local lufa = require "lufa"
local json = require "lufa.json"
local redact = require "lufa.redact"
local data = require "lufa.serve.data"
local pages = require "lufa.serve.pages"

local M = {}

M.POLL_SECONDS = 0.25
M.KEEPALIVE_SECONDS = 15

-- What a page shows of a run changes only with these.
local function signature(d)
  local parts = {d.pipelineRun.status, tostring(d.pipelineRun.lastUpdated), tostring(d.pipelineRun.durationInMs)}
  for _, a in ipairs(d.activityRuns) do parts[#parts + 1] = a.activityRunId .. a.status .. tostring(a.durationInMs) end
  return table.concat(parts, "|")
end

local function event(name, doc)
  return "event: " .. name .. "\ndata: " .. redact.text(json.encode(doc)) .. "\n\n"
end

--- Streams run `id` on `conn` until the run ends or the client goes away.
function M.stream(app, conn, id)
  local headers = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-store\r\n" ..
    "Connection: close\r\nX-Content-Type-Options: nosniff\r\n\r\nretry: 2000\n\n"
  if not conn:send(headers) then return conn:close() end
  local last, idle = nil, 0
  app.streams = app.streams + 1
  while not app.closed do
    local d = data.run(app.store, id)
    if not d then break end
    local sig = signature(d)
    local ok = true
    if sig ~= last then
      last, idle = sig, 0
      ok = conn:send(event("update", {status = d.pipelineRun.status, parts = pages.run_parts(app, d)}))
    elseif idle >= M.KEEPALIVE_SECONDS then
      idle = 0
      ok = conn:send(": keep-alive\n\n")
    end
    if not ok then break end
    if data.finished(d.pipelineRun.status) then
      conn:send(event("end", {status = d.pipelineRun.status}))
      break
    end
    lufa.sleep(M.POLL_SECONDS)
    idle = idle + M.POLL_SECONDS
  end
  app.streams = app.streams - 1
  conn:close()
end

return M
