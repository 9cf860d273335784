--- The stylesheet and the script of `lufa serve`, served from memory (no build step, nothing from a CDN).
-- The script only makes the pages live: it follows a run's server-sent events and swaps in the parts the
-- server renders, refreshes the runs list while a listed run is in progress, and submits the filter form
-- when a select changes.
-- @module lufa.serve.assets
local M = {}

M["app.css"] = [[
:root { --ok: #1e8e3e; --fail: #d93025; --run: #1a73e8; --warn: #e37400; --mute: #80868b; --line: #dadce0;
  --bg: #f8f9fa; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 14px; color: #202124; }
body { margin: 0; background: var(--bg); }
header { display: flex; align-items: center; gap: 24px; background: #202124; color: #fff; padding: 10px 20px; }
header a { color: #e8eaed; text-decoration: none; }
header .brand { font-weight: 700; font-size: 18px; color: #fff; }
header nav a { margin-right: 16px; padding: 4px 0; }
header nav a.here { border-bottom: 2px solid #8ab4f8; }
header .store { margin-left: auto; color: #9aa0a6; font-size: 12px; }
main { padding: 16px 20px; max-width: 1400px; }
h1 { font-size: 20px; margin: 4px 0 12px; font-weight: 600; }
h2 { font-size: 16px; margin: 20px 0 8px; font-weight: 600; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f1f3f4; font-weight: 600; font-size: 12px; color: #5f6368; }
td.num { text-align: right; white-space: nowrap; }
a { color: var(--run); }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
pre { background: #fff; border: 1px solid var(--line); padding: 8px; overflow: auto; max-height: 320px; margin: 4px 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: var(--mute); }
.st-succeeded, .st-started { background: var(--ok); } .st-failed { background: var(--fail); } .st-inprogress, .st-queued { background: var(--run); }
.st-canceling, .st-interrupted { background: var(--warn); } .st-cancelled, .st-skipped, .st-inactive, .st-stopped { background: var(--mute); }
form.filters { display: flex; gap: 10px; flex-wrap: wrap; align-items: end; margin-bottom: 12px; background: #fff;
  padding: 10px; border: 1px solid var(--line); }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: #5f6368; gap: 2px; }
input, select, button { font: inherit; padding: 4px 8px; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
button { cursor: pointer; background: #fff; color: var(--run); border-color: #c6dafc; }
button.primary { background: var(--run); color: #fff; border-color: var(--run); }
button.danger { color: var(--fail); border-color: #f6c3bf; }
form.inline { display: inline; margin-right: 6px; }
.pager { margin: 10px 0; display: flex; gap: 12px; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; background: #fff; border: 1px solid var(--line); padding: 10px; }
.facts dt { color: #5f6368; } .facts dd { margin: 0; }
.actions { margin: 12px 0; }
.error-box { border-left: 4px solid var(--fail); background: #fce8e6; padding: 8px 12px; margin: 8px 0; }
.error-box .code { font-weight: 700; }
.gantt { background: #fff; border: 1px solid var(--line); }
.gantt .row { display: grid; grid-template-columns: 300px 1fr 90px; align-items: center; border-bottom: 1px solid #f1f3f4; min-height: 26px; }
.gantt .row.head { font-size: 12px; color: #5f6368; background: #f1f3f4; }
.gantt .name { padding: 2px 10px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.gantt .name small { color: #5f6368; }
.gantt .lane { position: relative; height: 16px; margin: 0 8px; border-left: 1px solid var(--line); border-right: 1px solid var(--line); }
.gantt .bar { position: absolute; top: 0; height: 16px; border-radius: 3px; min-width: 3px; }
.gantt .bar.st-succeeded { background: var(--ok); } .gantt .bar.st-failed { background: var(--fail); }
.gantt .bar.st-cancelled, .gantt .bar.st-skipped, .gantt .bar.st-inactive { background: var(--mute); }
.gantt .bar.st-interrupted, .gantt .bar.st-canceling { background: var(--warn); }
.gantt .bar.reused { background: repeating-linear-gradient(45deg, #e8eaed 0 6px, #f1f3f4 6px 12px); }
.gantt .bar.st-inprogress { background: repeating-linear-gradient(45deg, var(--run) 0 6px, #4a90f0 6px 12px); }
.gantt .dur { text-align: right; padding-right: 10px; font-size: 12px; color: #5f6368; }
.gantt details > summary { list-style: none; cursor: pointer; }
.gantt details > summary::-webkit-details-marker { display: none; }
.gantt details > summary .name::before { content: "▸ "; } .gantt details[open] > summary .name::before { content: "▾ "; }
.gantt .iter .name { padding-left: 28px; }
.activity { background: #fff; border: 1px solid var(--line); margin: 8px 0; padding: 8px 12px; }
.activity h3 { font-size: 14px; margin: 0 0 6px; }
.activity .io { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
.muted { color: #5f6368; }
.live { font-size: 12px; color: var(--run); margin-left: 8px; }
.notice { background: #e8f0fe; border: 1px solid #c6dafc; padding: 8px 12px; margin: 8px 0; }
]]

M["app.js"] = [[
"use strict";
// Live updates: a run page follows /runs/ID/events and swaps in what the server rendered.
(function () {
  var live = document.querySelector("[data-live]");
  if (live && window.EventSource) {
    var source = new EventSource(live.getAttribute("data-live"));
    var mark = document.getElementById("live-mark");
    if (mark) mark.textContent = "● live";
    source.addEventListener("update", function (ev) {
      var doc = JSON.parse(ev.data);
      Object.keys(doc.parts).forEach(function (id) {
        var el = document.getElementById(id);
        if (el) el.innerHTML = doc.parts[id];
      });
      document.body.setAttribute("data-run-status", doc.status);
    });
    source.addEventListener("end", function () {
      source.close();
      if (mark) mark.textContent = "";
    });
  }
  // The runs list refreshes its table while one of its runs is in progress.
  function refresh(table) {
    var every = Number(table.getAttribute("data-refresh"));
    setTimeout(function () {
      fetch(location.href, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("runs-table");
        if (!fresh) return;
        table.innerHTML = fresh.innerHTML;
        if (fresh.hasAttribute("data-refresh")) refresh(table); else table.removeAttribute("data-refresh");
      });
    }, every);
  }
  var runsTable = document.querySelector("#runs-table[data-refresh]");
  if (runsTable) refresh(runsTable);
  // Filters apply as soon as a select changes.
  document.querySelectorAll("form.filters select").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });
})();
]]

M.types = {["app.css"] = "text/css; charset=utf-8", ["app.js"] = "text/javascript; charset=utf-8"}

return M
