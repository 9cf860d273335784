--- The fault soak: the sample retraining pipeline run again and again against the stand-ins while they
-- inject faults drawn at random, with a check after every run that nothing was lost or leaked.
-- Used by scripts/test-faults (100 runs) and tests/e2e/fault_soak_test.lua (a short smoke).
--
-- Each run gets, for Azure ML and for Azure AD, a repeating sequence of 20 steps in which every step is a
-- fault with probability 0.15, drawn from KINDS; and with probability 0.2 a resolver that refuses the first
-- one or two lookups. lufa reaches Azure ML by a name under .test, which tests/support/resolver_shim.c
-- (preloaded) resolves to loopback, and gives each request REQUEST_TIMEOUT seconds. After the run:
--   * the outcome is the right one: Failed when a permanent fault (an HTTP 400) reached lufa; Succeeded or
--     Failed when a 500 answered a POST or PATCH (it may have been processed, so lufa does not send it again);
--     else Succeeded; the exit status agrees;
--   * lufa gave up on every answer slower than its requestTimeout (the service saw the client go away);
--   * the run store's record agrees with what lufa printed and with the service: same status, the training
--     activity's job id is the one job the service saw started for this run (no double submission), no job is
--     left running, and the journal is empty once the run has ended;
--   * when it succeeded, the model was updated exactly once, from that job, and the trained model blob is
--     intact (it decodes, and holds the job's weights);
--   * no secret of the run (keys, client secret, account key, SAS signatures, tokens), in any form, and no
--     credential-shaped text appears in stdout, stderr, `lufa runs show` or the run store's file.
local json = require "lufa.json"
local http = require "lufa.http"
local lufa = require "lufa"
local runs = require "lufa.runs"
local emulators = require "tests.support.emulators"

local sample = emulators.sample
local soak = {}

-- t[k] when t is a table (json.null and nil give nil)
local function field(t, k)
  if type(t) == "table" then return t[k] end
  return nil
end

--- The fault kinds: name → the stand-ins' fault. `permanent` ones must fail the run.
soak.KINDS = {
  { name = "429 Retry-After", fault = { type = "status", status = 429, retryAfter = 1 } },
  { name = "500", fault = { type = "status", status = 500 } },
  { name = "503", fault = { type = "status", status = 503 } },
  { name = "500 echoing the request", fault = { type = "status", status = 500, echo = true } },
  { name = "400 echoing the request", fault = { type = "status", status = 400, echo = true }, permanent = true },
  { name = "reset before processing", fault = { type = "reset", when = "before" } },
  { name = "response lost (reset after processing)", fault = { type = "reset", when = "after" } },
  { name = "reset mid-body", fault = { type = "reset", when = "mid-body" } },
  { name = "truncated body", fault = { type = "truncate", fraction = 0.5 } },
  { name = "slow response (2 s)", fault = { type = "stall", seconds = 2 } },
  { name = "slow past the timeout, dropped unprocessed", fault = { type = "stall", seconds = 6 }, past_timeout = true },
  { name = "slow past the timeout, processed (answer lost)", fault = { type = "stall", seconds = 6, when = "after" },
    past_timeout = true },
}
local DNS_KIND = "resolver down (lookups refused)"
local PERMANENT_WEIGHT = 0.1  -- share of the permanent kind among drawn faults: most runs should succeed
local STEPS, P_FAULT = 20, 0.15
local P_DNS = 0.2
-- lufa's requestTimeout for Azure ML and Azure AD in the soak: above the slow kind, below the ones past it
local REQUEST_TIMEOUT = 4

local function draw_kind()
  if math.random() < PERMANENT_WEIGHT then
    for _, k in ipairs(soak.KINDS) do if k.permanent then return k end end
  end
  local others = {}
  for _, k in ipairs(soak.KINDS) do if not k.permanent then others[#others + 1] = k end end
  return others[math.random(#others)]
end

local function fault_rules(seed)
  local rules = json.array {}
  for _, route in ipairs { "ml.*", "aad.*" } do
    local sequence = json.array {}
    for step = 1, STEPS do
      sequence[step] = math.random() < P_FAULT and draw_kind().fault or { type = "pass" }
    end
    rules[#rules + 1] = { route = route, sequence = sequence, ["repeat"] = true }
  end
  return { seed = seed, rules = rules }
end

-- The kind of a logged request's fault, by the stand-ins' request log.
local function kind_of(q)
  if not q.fault then return nil end
  if q.fault == "status" then
    for _, k in ipairs(soak.KINDS) do
      if k.fault.type == "status" and k.fault.status == q.status and (k.fault.echo or false) == (q.echo or false) then
        return k
      end
    end
    for _, k in ipairs(soak.KINDS) do
      if k.fault.type == "status" and k.fault.status == q.status then return k end
    end
  end
  for _, k in ipairs(soak.KINDS) do
    local f = k.fault
    if f.type == "reset" and q.fault == "reset:" .. f.when then return k end
    if f.type == "stall" and q.fault == (f.when == "after" and "stall:after" or "stall") and q.seconds == f.seconds then
      return k
    end
    if f.type == "truncate" and q.fault == f.type then return k end
  end
  return { name = tostring(q.fault) }
end

-- Both tables hold the same numbers under the same names.
local function same_weights(a, b)
  if type(a) ~= "table" or type(b) ~= "table" or next(a) == nil then return false end
  for k, v in pairs(a) do if b[k] ~= v then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- The forms a secret takes in text: as is, JSON-escaped, URL-encoded.
local function forms(value)
  local out = { value }
  local escaped = json.encode(value):sub(2, -2)
  if escaped ~= value then out[#out + 1] = escaped end
  local encoded = http.urlencode(value)
  if encoded ~= value then out[#out + 1] = encoded end
  return out
end

--- Problems (strings) with `text`: secret values in any form, and credential-shaped text.
function soak.leaks(text, where, secrets)
  local found = {}
  for name, value in pairs(secrets) do
    for _, form in ipairs(forms(value)) do
      if text:find(form, 1, true) then found[#found + 1] = where .. " holds " .. name end
    end
  end
  for sig in text:gmatch("[%?&]sig=([^&\"'%s]*)") do
    if sig ~= "" and not sig:find("redacted", 1, true) then found[#found + 1] = where .. " holds a SAS signature" end
  end
  for key in text:gmatch("AccountKey=([^;\"'%s]*)") do
    if not key:find("redacted", 1, true) then found[#found + 1] = where .. " holds an account key" end
  end
  if text:find("eyJ[%w_-]+%.eyJ[%w_-]+%.") then found[#found + 1] = where .. " holds a JSON Web Token" end
  return found
end

-- The SAS signatures the service holds for the trained model (given by lufa), to look for too.
local function service_sigs(emu)
  local out = {}
  local text = json.encode(emu:jobs()) .. json.encode(emu:model("default"))
  for sig in text:gmatch("[%?&]sig=([^&\"'%s]+)") do
    out["a SAS signature"] = (sig:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
  end
  return out
end

-- The sample's override with the Azure ML endpoints under a host name (for the resolver faults; Azure AD
-- over plain http is refused anywhere but on a loopback address, so it keeps its address) and lufa's
-- requestTimeout; the secrets stay placeholders, filled in from the environment by lufa.
local function named_override(emu)
  return emu:derive_override(sample.ARM_OVERRIDE, function(t)
    for _, ls in ipairs { "trainingEndpoint", "updatableScoringEndpoint2" } do
      local tp = t.linkedServices[ls].properties.typeProperties
      for _, k in ipairs { "mlEndpoint", "updateResourceEndpoint" } do
        if tp[k] then tp[k] = emu:substitute(tp[k]):gsub("^(%a+://)127%.0%.0%.1([:/])", "%1ml.lufa.test%2") end
      end
      tp.requestTimeout = REQUEST_TIMEOUT
    end
  end)
end

-- The variables that preload the resolver into lufa, refusing `failures` lookups.
local function resolver_env(failures)
  local shim = emulators.lufa_binary():match("^(.*)/[^/]*$") .. "/liblufa_test_resolver.so"
  if not emulators.read_file(shim) then error("the soak needs " .. shim .. " (built with the tests)", 0) end
  local env = { LD_PRELOAD = shim, LUFA_TEST_DNS_FAILURES = tostring(failures) }
  -- a sanitizer build wants its runtime first among the libraries; the resolver comes before it
  local asan = os.getenv("ASAN_OPTIONS")
  if asan then env.ASAN_OPTIONS = asan .. ":verify_asan_link_order=0" end
  return env
end

--- Runs the soak. `opts`: `runs` (default 100), `seed` (default 1), `log` (function(line), default print).
-- @return summary `{runs, correct, outcomes = {status → n}, faults = {kind → n}, leaks, problems = {…}, elapsed}`
function soak.run(opts)
  opts = opts or {}
  local n, seed, log = opts.runs or 100, opts.seed or 1, opts.log or print
  math.randomseed(seed)
  local started = lufa.now()
  local summary = { runs = n, correct = 0, outcomes = {}, faults = {}, leaks = 0, problems = {} }
  local emu, data_dir, gens = emulators.start_with_data(200)
  local ok, err = pcall(function()
    emu:reset()
    emu:upload(sample.INPUT, gens[2].file)
    emu:settings { jobDurationMs = 200, armOperationMs = 300 }
    local state = emulators.tempdir()
    local store_path = state .. "/runs.db"
    local secrets = emu:secrets()
    local seen_jobs = {}
    local updated_at = emu:model("default").updatedAt
    local override = named_override(emu)
    for run = 1, n do
      local problems = {}
      local function problem(fmt, ...) problems[#problems + 1] = string.format(fmt, ...) end
      emu:clear_requests()
      emu:faults(fault_rules(seed * 1000 + run))
      local dns_failures = math.random() < P_DNS and math.random(2) or 0
      local env = resolver_env(dns_failures)
      env.LUFA_STORE = store_path
      local r = emu:lufa({ "run", sample.FACTORY, sample.PIPELINE, "--override", override, "--json" }, env)
      emu:faults { rules = json.array {} }  -- the checks below talk to the stand-ins without faults

      -- what was injected, and whether a permanent fault reached lufa
      -- a 500 may mean the call was processed: lufa does not send a non-idempotent call again after one
      local injected, permanent, unsafe_500 = {}, false, false
      for _ = 1, dns_failures do
        injected[#injected + 1] = DNS_KIND
        summary.faults[DNS_KIND] = (summary.faults[DNS_KIND] or 0) + 1
      end
      for _, q in ipairs(emu:requests()) do
        local k = kind_of(q)
        if k then
          injected[#injected + 1] = k.name
          summary.faults[k.name] = (summary.faults[k.name] or 0) + 1
          permanent = permanent or k.permanent == true
          unsafe_500 = unsafe_500 or (q.status == 500 and (q.method == "POST" or q.method == "PATCH"))
          if k.past_timeout and q.note ~= "client went away" then
            problem("lufa waited out a %g s answer to %s %s (its requestTimeout is %g s)", q.seconds, q.method,
              q.route, REQUEST_TIMEOUT)
          end
        end
      end

      local doc = json.decode(r.stdout)
      local status = field(field(doc, "pipelineRun"), "status") or "no --json output"
      local outcome = status
      if status == "Failed" then
        outcome = permanent and "Failed (a 400 reached lufa)" or "Failed (a 500 answered a POST or PATCH)"
      end
      summary.outcomes[outcome] = (summary.outcomes[outcome] or 0) + 1
      if permanent then
        if status ~= "Failed" then problem("ended %s, expected Failed", status) end
      elseif not (status == "Succeeded" or (status == "Failed" and unsafe_500)) then
        problem("ended %s, expected Succeeded%s", status, unsafe_500 and " or Failed" or "")
      end
      if (r.status == 0) ~= (status == "Succeeded") then problem("exit status %d for a %s run", r.status, status) end
      local run_id = r.stderr:match("lufa: run (%x+%-[%x%-]+) of pipeline")
      if not run_id then problem("no run id on stderr") end

      -- the run store agrees with what was printed and with the service
      local train = doc and emulators.activity_run(doc, sample.TRAINING)
      local job_id = field(field(train, "output"), "jobId")
      if run_id then
        local store = assert(runs.open(store_path))
        local record = store:get_pipeline_run(run_id)
        if not record then
          problem("the run store has no record of run %s", run_id)
        else
          if record.status ~= status then problem("the store says %s, lufa printed %s", record.status, status) end
          for _, a in ipairs(store:activity_runs(run_id)) do
            if a.activityName == sample.TRAINING and a.status == "Succeeded" then
              local stored_job = field(a.output, "jobId")
              if stored_job ~= job_id then problem("the store's job id %s is not the printed %s", tostring(stored_job), tostring(job_id)) end
            end
          end
          if next(store:journal(run_id)) ~= nil then problem("the journal of the ended run is not empty") end
        end
        store:close()
      end
      local started_jobs = {}
      for _, j in ipairs(emu:jobs()) do
        if not seen_jobs[j.id] then
          seen_jobs[j.id] = true
          if j.state ~= "NotStarted" then started_jobs[#started_jobs + 1] = j end
          if j.state == "Running" or j.state == "Queued" then problem("job %s is left %s", j.id, j.state) end
        end
      end
      if #started_jobs > 1 then problem("%d training jobs started for one run", #started_jobs) end
      local endpoint = emu:model("default")
      local model = endpoint.model or {}
      if status == "Succeeded" then
        if #started_jobs ~= 1 or started_jobs[1].id ~= job_id then
          problem("the service's started job is not the run's job %s", tostring(job_id))
        end
        if field(model.source, "jobId") ~= job_id then problem("the model was not updated from the run's job") end
        if endpoint.updatedAt == updated_at then problem("the model was not updated by this run") end
        local blob = json.decode(emu:download(sample.MODEL) or "")
        local job = started_jobs[1] or {}
        if not same_weights(field(blob, "weights"), field(job.result, "weights")) then
          problem("the trained model blob does not hold the job's weights")
        end
      end
      updated_at = endpoint.updatedAt

      -- no secret anywhere lufa wrote
      local all = {}
      for k, v in pairs(secrets) do all[k] = v end
      for k, v in pairs(service_sigs(emu)) do all[k] = v end
      local shown = run_id and emu:lufa({ "runs", "show", run_id }, { LUFA_STORE = store_path }) or { output = "" }
      local found = {}
      for where, text in pairs { stdout = r.stdout, stderr = r.stderr, ["lufa runs show"] = shown.output,
        ["the run store"] = emulators.read_file(store_path) or "" } do
        for _, l in ipairs(soak.leaks(text, where, all)) do found[#found + 1] = l end
      end
      summary.leaks = summary.leaks + #found
      for _, l in ipairs(found) do problem("%s", l) end

      if #problems == 0 then summary.correct = summary.correct + 1 end
      log(string.format("run %3d/%d  %-9s %2d faults  %s", run, n, status, #injected,
        #problems == 0 and "ok" or ("WRONG: " .. table.concat(problems, "; "))))
      if #problems > 0 then
        -- what was injected, and what lufa said, to find the cause
        log("    faults: " .. (#injected > 0 and table.concat(injected, ", ") or "none"))
        local message = field(field(doc, "pipelineRun"), "message")
        log("    " .. (type(message) == "string" and message ~= "" and message or (r.output:sub(1, 600):gsub("\n", "\n    "))))
      end
      if #problems > 0 then
        summary.problems[#summary.problems + 1] = { run = run, problems = problems, output = r.output }
      end
    end
    os.execute("rm -rf " .. emulators.shell_quote(state))
    emu:cleanup()
  end)
  emulators.stop_with_data(emu, data_dir)
  if not ok then error(err, 0) end
  summary.elapsed = lufa.now() - started
  return summary
end

--- The summary as lines of text.
function soak.format(s)
  local lines = { string.format("fault soak: %d/%d runs correct, %d secrets found, %.0f s", s.correct, s.runs,
    s.leaks, s.elapsed) }
  local kinds, total = {}, 0
  for k, c in pairs(s.faults) do kinds[#kinds + 1] = k; total = total + c end
  table.sort(kinds)
  lines[#lines + 1] = string.format("faults injected: %d", total)
  for _, k in ipairs(kinds) do lines[#lines + 1] = string.format("  %-48s %5d", k, s.faults[k]) end
  lines[#lines + 1] = "outcomes:"
  local names = {}
  for k in pairs(s.outcomes) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do lines[#lines + 1] = string.format("  %-48s %5d", k, s.outcomes[k]) end
  return table.concat(lines, "\n")
end

return soak
