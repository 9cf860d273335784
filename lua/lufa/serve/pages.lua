--- The HTML pages of `lufa serve`: the runs list, one run (facts, actions, timeline, activities) and the
-- triggers. A run page is rendered in parts that the live updates (lufa.serve.sse) render again.
-- @module lufa.serve.pages
local json = require "lufa.json"
local runs = require "lufa.runs"
local data = require "lufa.serve.data"
local html = require "lufa.serve.html"
local http = require "lufa.serve.http"

local e, badge = html.e, html.status

local M = {}

local function page(app, title, body, nav)
  return {status = 200, headers = {["Content-Type"] = "text/html; charset=utf-8"},
    body = html.page(title, body, {csrf = app.csrf, store = app.store.path, nav = nav})}
end

local function trigger_of(r)
  local ib = type(r.invokedBy) == "table" and r.invokedBy or {}
  if ib.invokedByType == "PipelineActivity" then return "pipeline " .. tostring(ib.pipelineName) end
  return type(ib.name) == "string" and ib.name or ""
end

-- ------------------------------------------------------------------ the runs list

local function option(value, label, selected)
  return string.format('<option value="%s"%s>%s</option>', e(value), value == selected and " selected" or "", e(label))
end

function M.runs(app, req)
  local q = req.query
  local list, next_cursor = data.runs_page(app.store, q)
  local out = {'<h1>Pipeline runs</h1>'}
  local statuses = {option("", "any status", q.status or "")}
  for _, s in ipairs(data.STATUSES) do statuses[#statuses + 1] = option(s, s, q.status) end
  out[#out + 1] = table.concat{'<form class="filters" method="get" action="/runs">',
    '<label>Pipeline<input name="pipeline" value="', e(q.pipeline), '" placeholder="any"></label>',
    '<label>Status<select name="status">', table.concat(statuses), '</select></label>',
    '<label>Trigger<input name="trigger" value="', e(q.trigger), '" placeholder="any"></label>',
    '<label>Since<input name="since" value="', e(q.since), '" placeholder="24h, 7d, 2026-12-01"></label>',
    '<label>Until<input name="until" value="', e(q["until"]), '" placeholder="a time"></label>',
    '<button type="submit" class="primary">Filter</button> <a href="/runs">clear</a></form>'}
  if not list then
    out[#out + 1] = '<p class="error-box">' .. e(next_cursor) .. '</p>'
    local res = page(app, "Pipeline runs", table.concat(out), "runs")
    res.status = 400
    return res
  end
  if #list == 0 then
    out[#out + 1] = '<p class="muted">No runs' .. ((q.pipeline or q.status or q.trigger or q.since) and " match these filters"
      or " recorded in this store yet") .. '.</p>'
  else
    local running = false
    for _, r in ipairs(list) do if not data.finished(r.status) then running = true end end
    -- while a listed run is in progress the script refreshes the table (see lufa.serve.assets)
    out[#out + 1] = '<div id="runs-table"' .. (running and ' data-refresh="2000"' or '') .. '>'
    out[#out + 1] = '<table class="runs"><thead><tr><th>Pipeline</th><th>Run start (UTC)</th><th>Duration</th>' ..
      '<th>Triggered by</th><th>Status</th><th>Run ID</th><th>Message</th></tr></thead><tbody>'
    for _, r in ipairs(list) do
      local msg = type(r.message) == "string" and r.message or ""
      if #msg > 120 then msg = msg:sub(1, 120) .. "…" end
      out[#out + 1] = table.concat{'<tr data-run="', e(r.runId), '"><td><a href="/runs/', e(r.runId), '">',
        e(r.pipelineName), '</a></td><td>', e(html.time(r.runStart)), '</td><td class="num">',
        e(html.duration(r.durationInMs)), '</td><td>', e(trigger_of(r)), '</td><td>', badge(r.status),
        '</td><td><code>', e(r.runId), '</code></td><td class="muted">', e(msg), '</td></tr>'}
    end
    out[#out + 1] = '</tbody></table></div>'
  end
  local pager = {}
  if q.cursor and q.cursor ~= "" then
    local first = {}
    for k, v in pairs(q) do if k ~= "cursor" then first[k] = v end end
    pager[#pager + 1] = '<a href="/runs?' .. e(http.encode_form(first)) .. '">« newest</a>'
  end
  if next_cursor then
    local nq = {}
    for k, v in pairs(q) do nq[k] = v end
    nq.cursor = next_cursor
    pager[#pager + 1] = '<a rel="next" href="/runs?' .. e(http.encode_form(nq)) .. '">older »</a>'
  end
  out[#out + 1] = '<div class="pager">' .. table.concat(pager) .. '</div>'
  return page(app, "Pipeline runs", table.concat(out), "runs")
end

-- ------------------------------------------------------------------ one run

local function epoch(iso) return type(iso) == "string" and runs.parse_time(iso) or nil end

--- Rows of the timeline: top-level activities in creation order, each ForEach followed by its iterations.
local function timeline_rows(acts)
  local rows, loops = {}, {}
  for _, a in ipairs(acts) do
    if a.iteration == nil or a.iteration == json.null then
      local row = {act = a, iterations = nil}
      rows[#rows + 1] = row
      if a.activityType == "ForEach" then loops[#loops + 1] = row end
    else
      -- an iteration's activity belongs to the latest ForEach started before it
      local owner
      local t = epoch(a.activityRunStart) or 0
      for i = #loops, 1, -1 do
        if (epoch(loops[i].act.activityRunStart) or 0) <= t then owner = loops[i] break end
      end
      if owner then
        owner.iterations = owner.iterations or {}
        table.insert(owner.iterations, a)
      else
        rows[#rows + 1] = {act = a}
      end
    end
  end
  for _, row in ipairs(rows) do
    if row.iterations then
      table.sort(row.iterations, function(x, y)
        local ix, iy = tostring(x.iteration), tostring(y.iteration)
        local nx, ny = tonumber(ix:match("^%d+")), tonumber(iy:match("^%d+"))
        if nx ~= ny then return (nx or 0) < (ny or 0) end
        return (epoch(x.activityRunStart) or 0) < (epoch(y.activityRunStart) or 0)
      end)
    end
  end
  return rows
end

local function bar(a, t0, span, now)
  if type(a.reusedFrom) == "table" then
    -- its output comes from an earlier run: it took no time in this one
    return '<div class="bar reused" style="left:0;width:100%" title="output reused from an earlier run"></div>'
  end
  local s = epoch(a.activityRunStart) or t0
  local f = epoch(a.activityRunEnd) or (a.status == "InProgress" and now) or s
  local left = math.max(0, (s - t0) / span * 100)
  local width = math.max(0.4, (f - s) / span * 100)
  if left + width > 100 then width = math.max(0.4, 100 - left) end
  return string.format('<div class="bar st-%s" style="left:%.2f%%;width:%.2f%%" title="%s %s"></div>',
    e(tostring(a.status):lower()), left, width, e(a.activityName), e(a.status))
end

local function row_html(a, t0, span, now, label, class)
  return table.concat{'<div class="row ', class or "", '" data-activity="', e(a.activityName), '" data-status="',
    e(a.status), '"><div class="name">', label, '</div><div class="lane">', bar(a, t0, span, now),
    '</div><div class="dur">', badge(a.status), '<br>', type(a.reusedFrom) == "table" and "reused" or
    e(html.duration(a.durationInMs)), '</div></div>'}
end

function M.timeline(run, acts)
  local now = runs.wall_time()
  local t0 = epoch(run.runStart) or now
  local t1 = epoch(run.runEnd) or now
  for _, a in ipairs(acts) do
    local f = type(a.reusedFrom) ~= "table" and epoch(a.activityRunEnd)
    if f and f > t1 then t1 = f end
  end
  local span = math.max(t1 - t0, 0.001)
  local out = {'<div class="gantt"><div class="row head"><div class="name">Activity</div><div class="lane-head">',
    e(html.time(run.runStart)), ' → ', e(run.runEnd ~= json.null and html.time(run.runEnd) or "now"),
    string.format(' (%s)', e(html.duration(math.floor(span * 1000 + 0.5)))), '</div><div class="dur">Duration</div></div>'}
  for _, row in ipairs(timeline_rows(acts)) do
    local a = row.act
    local label = e(a.activityName) .. ' <small>' .. e(a.activityType) .. '</small>'
    if row.iterations then
      out[#out + 1] = '<details class="loop"><summary>' .. row_html(a, t0, span, now,
        label .. string.format(' <small>· %d iteration activities</small>', #row.iterations)) .. '</summary>'
      for _, it in ipairs(row.iterations) do
        out[#out + 1] = row_html(it, t0, span, now, '#' .. e(it.iteration) .. ' ' .. e(it.activityName) ..
          ' <small>' .. e(it.activityType) .. '</small>', "iter")
      end
      out[#out + 1] = '</details>'
    else
      out[#out + 1] = row_html(a, t0, span, now, label)
    end
  end
  if #acts == 0 then out[#out + 1] = '<div class="row"><div class="name muted">no activity has started</div></div>' end
  out[#out + 1] = '</div>'
  return table.concat(out)
end

local function error_box(err, what)
  if type(err) ~= "table" or (err.message == nil or err.message == "") then return "" end
  local out = {'<div class="error-box" data-error="', e(what), '"><b>', e(what), '</b> failed: <span class="code">',
    e(err.errorCode), '</span> ',
    e(err.failureType ~= "" and err.failureType or nil), '<div class="message">', e(err.message), '</div>'}
  if not html.is_empty(err.details) then out[#out + 1] = '<pre>' .. html.pretty(err.details) .. '</pre>' end
  out[#out + 1] = '</div>'
  return table.concat(out)
end

-- Links to remote jobs: output fields whose name ends in Url/Uri/Link and whose value is an http(s) URL.
local function links(output)
  local out = {}
  if type(output) ~= "table" then return "" end
  local keys = {}
  for k in pairs(output) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v = output[k]
    if type(k) == "string" and k:lower():match("ur[li]$") or (type(k) == "string" and k:lower():match("link$")) then
      if type(v) == "string" and v:match("^https?://") then
        out[#out + 1] = string.format('<a href="%s" rel="noreferrer" target="_blank">%s</a>', e(v), e(k))
      end
    end
  end
  return #out > 0 and ('<p>Remote: ' .. table.concat(out, " · ") .. '</p>') or ""
end

function M.activities(acts)
  local out = {}
  for _, a in ipairs(acts) do
    local name = e(a.activityName) .. ((a.iteration ~= nil and a.iteration ~= json.null) and (' <small>#' .. e(a.iteration) .. '</small>') or "")
    local attempt = math.type(a.retryAttempt) == "integer" and (' · attempt ' .. (a.retryAttempt + 1)) or ""
    out[#out + 1] = table.concat{'<section class="activity" data-activity="', e(a.activityName), '"><h3>', name, ' ',
      badge(a.status), ' <small class="muted">', e(a.activityType), ' · ', e(html.time(a.activityRunStart)), ' · ',
      e(html.duration(a.durationInMs)), attempt, '</small></h3>'}
    if a.status == "Failed" then out[#out + 1] = error_box(a.error, a.activityName) end
    if type(a.reusedFrom) == "table" then
      out[#out + 1] = '<p class="muted">Output reused from run <a href="/runs/' .. e(a.reusedFrom.pipelineRunId) .. '">' ..
        e(a.reusedFrom.pipelineRunId) .. '</a></p>'
    end
    out[#out + 1] = links(a.output)
    local input, output = not html.is_empty(a.input), not html.is_empty(a.output)
    if input or output then
      out[#out + 1] = '<details><summary>Input and output</summary><div class="io"><div><b>Input</b><pre>' ..
        html.pretty(a.input) .. '</pre></div><div><b>Output</b><pre>' .. html.pretty(a.output) .. '</pre></div></div></details>'
    end
    out[#out + 1] = '</section>'
  end
  return table.concat(out)
end

function M.facts(d)
  local r, info = d.pipelineRun, d.info
  local out = {'<dl class="facts">',
    '<dt>Status</dt><dd id="run-status" data-status="', e(r.status), '">', badge(r.status), '</dd>',
    '<dt>Started</dt><dd>', e(html.time(r.runStart)), ' UTC</dd>',
    '<dt>Ended</dt><dd>', r.runEnd ~= json.null and e(html.time(r.runEnd)) .. ' UTC' or '–', '</dd>',
    '<dt>Duration</dt><dd>', e(html.duration(r.durationInMs)), '</dd>',
    '<dt>Triggered by</dt><dd>', e(trigger_of(r)), ' <small class="muted">', e(type(r.invokedBy) == "table" and r.invokedBy.invokedByType), '</small></dd>'}
  if info.origin and info.origin.rerunOf then
    out[#out + 1] = '<dt>Rerun of</dt><dd><a href="/runs/' .. e(info.origin.rerunOf) .. '">' .. e(info.origin.rerunOf) .. '</a></dd>'
  end
  if #d.group > 1 then
    local g = {}
    for _, x in ipairs(d.group) do
      g[#g + 1] = x.runId == r.runId and ('<b>' .. e(x.runId:sub(1, 8)) .. '</b>') or
        ('<a href="/runs/' .. e(x.runId) .. '">' .. e(x.runId:sub(1, 8)) .. '</a> ' .. badge(x.status))
    end
    out[#out + 1] = '<dt>Run group</dt><dd>' .. table.concat(g, " · ") .. '</dd>'
  end
  if type(r.message) == "string" and r.message ~= "" then
    out[#out + 1] = '<dt>Message</dt><dd>' .. e(r.message) .. '</dd>'
  end
  if info.origin and info.origin.factory then out[#out + 1] = '<dt>Factory</dt><dd><code>' .. e(info.origin.factory) .. '</code></dd>' end
  out[#out + 1] = '<dt>Parameters</dt><dd>' .. (html.is_empty(r.parameters) and '<span class="muted">none</span>'
    or ('<pre>' .. html.pretty(r.parameters) .. '</pre>')) .. '</dd></dl>'
  return table.concat(out)
end

function M.actions(app, d)
  local r = d.pipelineRun
  local id = r.runId
  local out = {}
  if not data.finished(r.status) then
    out[#out + 1] = html.post_button("/runs/" .. id .. "/cancel", "Cancel", app.csrf, nil, "danger")
  elseif d.info.origin and d.info.origin.factory then
    -- secret parameters the store does not keep are asked for again (never shown, never stored)
    local secrets = require("lufa.runs.rerun").secret_parameters(d.info.origin)
    out[#out + 1] = html.post_button("/runs/" .. id .. "/rerun", "Rerun", app.csrf, nil, nil, secrets)
    if r.status ~= "Succeeded" then
      out[#out + 1] = html.post_button("/runs/" .. id .. "/rerun", "Rerun from failure", app.csrf,
        {from_failure = "1"}, "primary", secrets)
    end
  else
    out[#out + 1] = '<span class="muted">A script started this run: rerun it from that script.</span>'
  end
  return table.concat(out)
end

--- The parts of a run page that change while the run progresses (element id → inner HTML).
function M.run_parts(app, d)
  local failed = {}
  for _, a in ipairs(d.activityRuns) do
    if a.status == "Failed" then failed[#failed + 1] = error_box(a.error, a.activityName) end
  end
  return {["run-facts"] = M.facts(d), ["run-actions"] = M.actions(app, d), ["run-timeline"] = M.timeline(d.pipelineRun, d.activityRuns),
    ["run-errors"] = table.concat(failed), ["run-activities"] = M.activities(d.activityRuns)}
end

function M.run(app, _, id, notice)
  local d = data.run(app.store, id)
  if not d then return nil end
  local r = d.pipelineRun
  local parts = M.run_parts(app, d)
  local live = not data.finished(r.status)
  local body = table.concat{
    '<h1>', e(r.pipelineName), ' <small class="muted"><code>', e(r.runId), '</code></small>',
    '<span class="live" id="live-mark"></span></h1>',
    notice and ('<p class="notice">' .. e(notice) .. '</p>') or '',
    '<div', live and (' data-live="/runs/' .. e(r.runId) .. '/events"') or '', '>',
    '<div class="actions" id="run-actions">', parts["run-actions"], '</div>',
    '<div id="run-facts">', parts["run-facts"], '</div>',
    '<div id="run-errors">', parts["run-errors"], '</div>',
    '<h2>Timeline</h2><div id="run-timeline">', parts["run-timeline"], '</div>',
    '<h2>Activity runs</h2><div id="run-activities">', parts["run-activities"], '</div></div>'}
  local res = page(app, r.pipelineName .. " " .. r.runId:sub(1, 8), body, "runs")
  return res
end

-- ------------------------------------------------------------------ triggers

function M.triggers(app)
  local list = data.triggers(app.store, app.factories)
  local out = {'<h1>Triggers</h1>'}
  if #list == 0 then
    out[#out + 1] = '<p class="muted">This store has no scheduler data yet: no trigger has fired or been started or ' ..
      'stopped. <code>lufa schedule FACTORY</code> runs a factory\'s triggers; <code>lufa serve FACTORY</code> ' ..
      'lists them here before they first fire.</p>'
  else
    out[#out + 1] = '<table class="triggers"><thead><tr><th>Name</th><th>Type</th><th>State</th><th>Last fire (UTC)</th>' ..
      '<th>Next fire (UTC)</th><th>Factory</th><th></th></tr></thead><tbody>'
    for _, t in ipairs(list) do
      local action = t.state == "Started" and "stop" or "start"
      out[#out + 1] = table.concat{'<tr data-trigger="', e(t.name), '"><td>', e(t.name), '</td><td>', e(t.type), '</td><td>',
        badge(t.state == "Started" and "Started" or t.state), '</td><td>', e(html.epoch_time(t.last_fire)), '</td><td>',
        e(t.next_fire and html.epoch_time(t.next_fire) or t.note), '</td><td><code>', e(t.scope), '</code></td><td>',
        html.post_button("/triggers/" .. action, action == "stop" and "Stop" or "Start", app.csrf,
          {scope = t.scope, name = t.name}, action == "stop" and "danger" or "primary"), '</td></tr>'}
    end
    out[#out + 1] = '</tbody></table><p class="muted">A running <code>lufa schedule</code> notices a start or stop within seconds.</p>'
  end
  return page(app, "Triggers", table.concat(out), "triggers")
end

function M.not_found(app, what)
  local res = page(app, "Not found", '<h1>Not found</h1><p>' .. e(what) .. '</p>', nil)
  res.status = 404
  return res
end

return M
