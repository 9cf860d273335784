--- HTML building blocks of `lufa serve`: escaping, the page layout, status badges, times and durations.
-- @module lufa.serve.html
local json = require "lufa.json"
local runs = require "lufa.runs"

local M = {}

local ENTITIES = {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;"}

--- Text safe inside an element or a quoted attribute.
function M.e(s)
  if s == nil or s == json.null then return "" end
  return (tostring(s):gsub("[&<>\"']", ENTITIES))
end
local e = M.e

function M.status(s)
  s = (s == nil or s == json.null) and "Unknown" or tostring(s)
  return string.format('<span class="badge st-%s">%s</span>', e(s:lower()), e(s))
end

--- "2026-12-04 10:00:01" (UTC) from an ISO time.
function M.time(iso)
  if type(iso) ~= "string" then return "" end
  return (iso:gsub("T", " "):gsub("%.%d+", ""):gsub("Z$", ""))
end

function M.epoch_time(t)
  if not t then return "" end
  return os.date("!%Y-%m-%d %H:%M:%S", math.floor(t))
end

--- 850 → "0.85 s", 75000 → "1 m 15 s".
function M.duration(ms)
  if math.type(ms) == nil then return "" end
  if ms < 60000 then return string.format("%.2f s", ms / 1000) end
  local s = ms // 1000
  if s < 3600 then return string.format("%d m %d s", s // 60, s % 60) end
  return string.format("%d h %d m", s // 3600, s % 3600 // 60)
end

--- Pretty JSON of a value, escaped for a <pre>.
function M.pretty(v)
  if v == nil or v == json.null then return "" end
  local ok, text = pcall(json.encode, v, {pretty = true})
  return e(ok and text or tostring(v))
end

function M.is_empty(v)
  if v == nil or v == json.null or v == "" then return true end
  return type(v) == "table" and next(v) == nil
end

--- The whole page around `body`; `opts.csrf` goes into a meta tag for the script.
function M.page(title, body, opts)
  opts = opts or {}
  return table.concat{
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="csrf-token" content="', e(opts.csrf), '">',
    '<title>', e(title), ' · lufa</title>',
    '<link rel="stylesheet" href="/assets/app.css"><script src="/assets/app.js" defer></script></head>',
    '<body><header><a class="brand" href="/runs">lufa</a><nav>',
    '<a href="/runs"', opts.nav == "runs" and ' class="here"' or '', '>Pipeline runs</a>',
    '<a href="/triggers"', opts.nav == "triggers" and ' class="here"' or '', '>Triggers</a>',
    '</nav><span class="store" title="run store">', e(opts.store), '</span></header>',
    '<main>', body, '</main></body></html>\n'}
end

--- A form that POSTs to `action` with the CSRF token (a button, plus hidden fields and, for `secrets`,
-- password fields named `param.NAME` that start empty).
function M.post_button(action, label, csrf, fields, class, secrets)
  local parts = {'<form method="post" action="', e(action), '" class="inline">',
    '<input type="hidden" name="csrf" value="', e(csrf), '">'}
  for _, name in ipairs(secrets or {}) do
    parts[#parts + 1] = '<input type="password" autocomplete="off" required name="param.' .. e(name) ..
      '" placeholder="' .. e(name) .. ' (SecureString)" aria-label="' .. e(name) .. '"> '
  end
  for k, v in pairs(fields or {}) do
    parts[#parts + 1] = '<input type="hidden" name="' .. e(k) .. '" value="' .. e(v) .. '">'
  end
  parts[#parts + 1] = '<button type="submit" class="' .. e(class or "") .. '">' .. e(label) .. '</button></form>'
  return table.concat(parts)
end

M.iso_epoch = runs.parse_time

return M
