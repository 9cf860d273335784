--- Starts and drives the local Azure stand-ins (scripts/emulators) for end-to-end tests and benchmarks.
-- Run from the repository root; `require "tests.support.emulators"` finds this file there.
--
--   local emulators = require "tests.support.emulators"
--   local emu = emulators.start()                 -- or start{tls = true, config = FILE, token_lifetime = 5}
--   emu:reset()                                   -- back to the configured state between tests
--   local r = emu:lufa{ "run", "examples/adf-retraining", "LookupPipelineDemo",
--                       "--override", "examples/adf-retraining/local.json" }
--   print(r.status, r.stdout, r.stderr)           -- a child `lufa` with the LUFA_EMU_* variables set
--   emu:stop()
--
-- The stand-ins watch this process (--owner-pid) and stop by themselves when it is gone, so a test that
-- dies leaves nothing behind; `stop` also removes the state folder.
local lufa = require "lufa"
local http = require "lufa.http"
local json = require "lufa.json"

local emulators = {}

local util = require "tests.support.util"
local shell_quote = util.shell_quote
emulators.shell_quote = shell_quote

local read_file = util.read_file
emulators.read_file = read_file

local write_file = util.write_file
emulators.tempdir, emulators.own_pid, emulators.lufa_binary = util.tempdir, util.own_pid, util.lufa_binary
emulators.write_file = write_file

--- Runs a shell command; returns {stdout, stderr, output = stdout .. stderr, status = exit code}.
function emulators.capture(cmd)
  local err_file = os.tmpname()
  local p = assert(io.popen(cmd .. " 2>" .. shell_quote(err_file)))
  local out = p:read("a")
  local _, how, code = p:close()
  local err = read_file(err_file) or ""
  os.remove(err_file)
  local status = how == "exit" and code or (128 + (code or 0))
  return { stdout = out, stderr = err, output = out .. err, status = status, command = cmd }
end

local Emu = {}
Emu.__index = Emu

--- For a spec file's setup: the stand-ins started and two data generations of `rows` rows made.
-- @return emu, data_dir, gens
function emulators.start_with_data(rows, opts)
  local emu = emulators.start(opts)
  local data_dir = emulators.tempdir()
  return emu, data_dir, emu:generate_data(data_dir, rows)
end

--- For the matching teardown: whatever setup managed to make is stopped and removed.
function emulators.stop_with_data(emu, data_dir)
  if emu then
    emu:cleanup()
    emu:stop()
  end
  if data_dir then os.execute("rm -rf " .. shell_quote(data_dir)) end
end

--- Starts the stand-ins in a fresh state folder and waits until they answer.
-- @tparam[opt] table opts `tls` (boolean), `config` (Azure ML services file), `aad_config`,
--   `token_lifetime` (seconds)
-- @return an emulator handle: `dir`, `info` (emulators.json), `env` (the LUFA_EMU_* variables), `control_url`
function emulators.start(opts)
  opts = opts or {}
  local dir = emulators.tempdir()
  local args = { "scripts/emulators/start", "--state", dir, "--quiet", "--owner-pid", tostring(emulators.own_pid()) }
  if opts.tls then args[#args + 1] = "--tls" end
  if opts.config then args[#args + 1] = "--config"; args[#args + 1] = opts.config end
  if opts.aad_config then args[#args + 1] = "--aad-config"; args[#args + 1] = opts.aad_config end
  if opts.token_lifetime then args[#args + 1] = "--token-lifetime"; args[#args + 1] = tostring(opts.token_lifetime) end
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = shell_quote(a) end
  local r = emulators.capture(table.concat(quoted, " ") .. " </dev/null")
  if r.status ~= 0 then
    os.execute("rm -rf " .. shell_quote(dir))
    error("the stand-ins did not start (exit " .. tostring(r.status) .. "):\n" .. r.output, 2)
  end
  local info = assert(json.decode_file(dir .. "/emulators.json"))
  local env = {}
  for k, v in pairs(info.env) do env[k] = tostring(v) end
  return setmetatable({ dir = dir, info = info, env = env, control_url = info.control,
    lufa_path = emulators.lufa_binary() }, Emu)
end

--- Stops the stand-ins (by the PIDs recorded in the state folder) and any lufa spawn_lufa started that still
-- runs, and removes the folder. Safe to repeat.
function Emu:stop()
  if not self.dir then return end
  -- a lufa that a failed test left running; one that has ended has its status written (its pid may be
  -- another process's by now)
  for _, c in ipairs(self.children or {}) do
    if not read_file(c.st) then os.execute("kill -9 " .. c.pid .. " 2>/dev/null") end
  end
  self.children = {}
  os.execute("scripts/emulators/stop --state " .. shell_quote(self.dir) .. " >/dev/null 2>&1")
  os.execute("rm -rf " .. shell_quote(self.dir))
  self.dir = nil
end

--- Calls the control endpoint; returns the decoded answer (nil for an empty one). Errors on a non-2xx status.
function Emu:control(method, path, body)
  local res, err = http.request{ method = method, url = self.control_url .. path,
    headers = body ~= nil and { ["Content-Type"] = "application/json" } or nil,
    body = body ~= nil and json.encode(body) or nil, timeout = 30 }
  if not res then error("control " .. method .. " " .. path .. ": " .. tostring(err), 2) end
  if res.status >= 300 then
    error(string.format("control %s %s: HTTP %d %s", method, path, res.status, tostring(res.body)), 2)
  end
  return res.body ~= "" and json.decode(res.body) or nil
end

--- Back to the configured state: jobs, models, ARM definitions, faults, request log and settings.
function Emu:reset()
  return self:control("POST", "/reset", json.object{})
end

--- Changes settings: `tokenLifetimeSeconds`, `jobDurationMs`, `armOperationMs`.
function Emu:settings(s)
  return self:control("PATCH", "/settings", s)
end

--- Replaces the fault rules (`{seed =, rules = {...}}`); with no argument removes them all.
function Emu:faults(spec)
  if spec == nil then return self:control("DELETE", "/faults") end
  return self:control("PUT", "/faults", spec)
end

--- The request log, optionally narrowed: `{service =, route =, method =, since =}`.
function Emu:requests(filter)
  local q = {}
  for k, v in pairs(filter or {}) do q[#q + 1] = k .. "=" .. http.urlencode(tostring(v)) end
  table.sort(q)
  local log = self:control("GET", "/requests" .. (#q > 0 and ("?" .. table.concat(q, "&")) or ""))
  return log.requests, log
end

--- Empties the request log.
function Emu:clear_requests()
  return self:control("DELETE", "/requests")
end

--- Every BES job the emulator knows (a list), or one job by id.
function Emu:jobs(id)
  local r = self:control("GET", "/jobs" .. (id and ("/" .. id) or ""))
  if id then return r end
  return r.jobs or r
end

--- The current model of a scoring endpoint: `{location, model, updatedAt, ...}`.
-- @tparam string endpoint "default" or "endpoint2" (the updatable one)
function Emu:model(endpoint)
  local doc = self:control("GET", "/models")
  for _, svc in ipairs(doc.services) do
    for _, ep in ipairs(svc.endpoints) do
      if ep.name == endpoint then return ep end
    end
  end
  error("no scoring endpoint named " .. tostring(endpoint), 2)
end

--- Every secret value the stand-ins handed out (keys, client secret, account key, identity header, ...).
function Emu:secrets()
  local e, out = self.env, {}
  for _, k in ipairs{ "LUFA_EMU_STORAGE_KEY", "LUFA_EMU_CLIENT_SECRET", "LUFA_EMU_ML_TRAINING_API_KEY",
    "LUFA_EMU_ML_SCORING_API_KEY", "LUFA_EMU_ML_UPDATABLE_API_KEY", "LUFA_EMU_ML_WORKSPACE_TOKEN",
    "LUFA_EMU_IDENTITY_HEADER" } do
    if e[k] and e[k] ~= "" then out[k] = e[k] end
  end
  return out
end

--- Replaces `${NAME}` in every string of a decoded JSON value with this instance's variable (or os.getenv).
function Emu:substitute(v)
  if type(v) == "string" then
    return (v:gsub("%${([%w_]+)}", function(name)
      local value = self.env[name] or os.getenv(name)
      if value == nil then error("no value for ${" .. name .. "}", 0) end
      return value
    end))
  elseif type(v) == "table" then
    local out = setmetatable({}, getmetatable(v))
    for k, x in pairs(v) do out[k] = self:substitute(x) end
    return out
  end
  return v
end

--- `env 'LUFA_EMU_...=...' ...`: the prefix that runs a command with this instance's variables.
function Emu:env_prefix(extra)
  local parts = { "env" }
  local names = {}
  for k in pairs(self.env) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do parts[#parts + 1] = shell_quote(k .. "=" .. self.env[k]) end
  for k, v in pairs(extra or {}) do parts[#parts + 1] = shell_quote(k .. "=" .. v) end
  return table.concat(parts, " ")
end

--- Runs the lufa under test as a child process with this instance's variables (`args` a list).
-- @return `{stdout, stderr, output, status}`
function Emu:lufa(args, extra_env)
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = shell_quote(a) end
  return emulators.capture(string.format("%s %s %s </dev/null", self:env_prefix(extra_env),
    shell_quote(self.lufa_path), table.concat(quoted, " ")))
end

local Child = {}
Child.__index = Child

--- Starts the lufa under test in the background (with this instance's variables); its output and exit
-- status go to files. @return a child: `pid`, `:signal(name)`, `:wait(seconds)` → status, `:stdout()`,
-- `:stderr()`, `:run_id()` (from the line `lufa run` prints when the run starts)
function Emu:spawn_lufa(args, extra_env)
  local dir = emulators.tempdir()
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = shell_quote(a) end
  local c = setmetatable({dir = dir, out = dir .. "/out", err = dir .. "/err", st = dir .. "/status"}, Child)
  -- a subshell runs lufa and records its exit status; lufa is the subshell's only child. The subshell keeps
  -- none of the test's own output open, or a lufa left running would hold the test open with it.
  local p = io.popen(string.format("(%s %s %s > %s 2> %s </dev/null; echo $? > %s) >/dev/null 2>&1 & echo $!",
    self:env_prefix(extra_env), shell_quote(self.lufa_path), table.concat(quoted, " "), shell_quote(c.out),
    shell_quote(c.err), shell_quote(c.st)))
  local subshell = p:read("l")
  p:close()
  c.pid = emulators.eventually(function()
    local pg = io.popen("pgrep -P " .. subshell)
    local pid = pg:read("l")
    pg:close()
    return pid
  end, 10)
  self.children = self.children or {}
  self.children[#self.children + 1] = c
  return c
end

function Child:signal(name)
  return os.execute("kill -" .. name .. " " .. self.pid)
end

--- Waits for the child to end; returns its exit status (nil if it is still running after `seconds`).
function Child:wait(seconds)
  local text = emulators.eventually(function() return read_file(self.st) end, seconds or 60)
  return text and tonumber(text:match("%d+"))
end

function Child:stdout() return read_file(self.out) or "" end
function Child:stderr() return read_file(self.err) or "" end

--- The run id from `lufa: run ID of pipeline P, recorded in STORE` (waits for the line).
function Child:run_id(seconds)
  return emulators.eventually(function() return self:stderr():match("lufa: run (%x+%-[%x%-]+) of pipeline") end,
    seconds or 30)
end

function Child:cleanup()
  os.execute("rm -rf " .. shell_quote(self.dir))
end

--- Decodes a JSON override file, lets `edit(t)` change it, and writes it to a temporary file (placeholders
-- such as ${LUFA_EMU_...} are kept, so a child `lufa` substitutes them). @return the file's path
function Emu:derive_override(from, edit)
  local t = assert(json.decode_file(from))
  if edit then edit(t) end
  local path = os.tmpname()
  write_file(path, json.encode(t, { pretty = true }))
  self.temp_files = self.temp_files or {}
  self.temp_files[#self.temp_files + 1] = path
  return path
end

--- Finds the pipeline activity named `name` in an override table (adding one if missing).
function emulators.override_activity(t, pipeline_name, name)
  local p = t.pipelines[pipeline_name]
  p.properties = p.properties or json.object{}
  p.properties.activities = p.properties.activities or json.array{}
  for _, a in ipairs(p.properties.activities) do
    if a.name == name then return a end
  end
  local a = json.object{ name = name }
  table.insert(p.properties.activities, a)
  return a
end

--- Removes the temporary override files made by derive_override.
function Emu:cleanup()
  for _, p in ipairs(self.temp_files or {}) do os.remove(p) end
  self.temp_files = {}
end

--- A lufa.blob client for the stand-ins' storage account.
function Emu:blob()
  if not self.blob_client then
    self.blob_client = assert(require("lufa.blob").client(self.env.LUFA_EMU_STORAGE_CONNECTION_STRING))
  end
  return self.blob_client
end

--- Uploads a file or a string (`{data = "..."}`) to "container/path", creating the container.
function Emu:upload(path, source)
  local container, name = path:match("^([^/]+)/(.+)$")
  local c = self:blob():container(container)
  assert(c:create{ exist_ok = true })
  local blob = c:blob(name)
  if type(source) == "table" and source.data then
    assert(blob:put(source.data))
  else
    assert(blob:put{ file = source })
  end
end

--- Downloads "container/path" as a string, or nil, err.
function Emu:download(path)
  local container, name = path:match("^([^/]+)/(.+)$")
  local data, err = self:blob():container(container):blob(name):get()
  if data == nil then return nil, err end
  return data
end

--- Scores rows through a scoring endpoint's Request-Response Service.
-- @tparam string endpoint "default" or "endpoint2"
-- @return the list of `Scored Labels` as numbers
function Emu:score(endpoint, columns, rows)
  local azureml = require "lufa.azureml"
  local url, key
  if endpoint == "default" then
    url, key = self.env.LUFA_EMU_ML_SCORING_RRS_URL, self.env.LUFA_EMU_ML_SCORING_API_KEY
  else
    url, key = self.env.LUFA_EMU_ML_UPDATABLE_RRS_URL, self.env.LUFA_EMU_ML_UPDATABLE_API_KEY
  end
  local res, err = azureml.scoring{ endpoint = url, api_key = key }:score(columns, rows)
  if not res then error("scoring through " .. endpoint .. " failed: " .. tostring(err), 2) end
  local out = {}
  for i, r in ipairs(res.rows) do out[i] = tonumber(r[#r]) end
  return out
end

--- Runs the sample's data generator into `dir`; returns the two generations' files and coefficients,
-- read from what the generator prints, so the tests follow the generator rather than repeat it.
-- @return `{ {file =, intercept =, temperature =, humidity =, windspeed =}, ... }`
function Emu:generate_data(dir, rows)
  local r = emulators.capture(string.format("%s examples/adf-retraining/data/generate.lua %s %d",
    shell_quote(self.lufa_path), shell_quote(dir), rows or 400))
  if r.status ~= 0 then error("the data generator failed:\n" .. r.output, 2) end
  local gens = {}
  for line in r.stdout:gmatch("[^\n]+") do
    local file, b0, bt, bh, bw = line:match(
      "^(%S+%.csv): %d+ rows, rentals = (%S+) (%S+)%*temperature (%S+)%*humidity (%S+)%*windspeed")
    if file then
      gens[#gens + 1] = { file = file, intercept = tonumber(b0), temperature = tonumber(bt),
        humidity = tonumber(bh), windspeed = tonumber(bw) }
    end
  end
  if #gens ~= 2 then error("the data generator's output has no two generations:\n" .. r.output, 2) end
  return gens
end

--- The sample factory (examples/adf-retraining) and what the tests need to know about it.
emulators.sample = {
  FACTORY = "examples/adf-retraining",
  PIPELINE = "LookupPipelineDemo",
  ARM_OVERRIDE = "examples/adf-retraining/local.json",
  CLASSIC_OVERRIDE = "examples/adf-retraining/local-classic.json",
  KEYVAULT_OVERRIDE = "examples/adf-retraining/local-keyvault.json",
  TRAINING = "amlBEGetilearner",
  UPDATE = "amlUpdateResource",
  INPUT = "azuremltesting/input/rentals.csv",
  MODEL = "azuremltesting/output/newModelForArm.ilearner",
  FEATURES = { "temperature", "humidity", "windspeed" },
  -- sample days inside the generated data's range (temperature 5-30, humidity 30-90, wind 0-12)
  DAYS = { { 26, 35, 2 }, { 18, 70, 4 }, { 12, 55, 9 }, { 7, 88, 11 } },
}

--- What a data generation's relationship predicts for a day `{temperature, humidity, windspeed}`.
function emulators.sample.expected(gen, day)
  return gen.intercept + gen.temperature * day[1] + gen.humidity * day[2] + gen.windspeed * day[3]
end

--- Runs `lufa run` on the sample with an override file; `--json` output is decoded into `r.json`.
function Emu:run_sample(override, extra_args)
  local s = emulators.sample
  local args = { "run", s.FACTORY, s.PIPELINE, "--override", override }
  for _, a in ipairs(extra_args or {}) do args[#args + 1] = a end
  local r = self:lufa(args)
  for _, a in ipairs(args) do
    if a == "--json" then r.json = json.decode(r.stdout) end
  end
  return r
end

--- The activity run named `name` in a `--json` run output.
function emulators.activity_run(doc, name)
  for _, a in ipairs(doc.activityRuns) do
    if a.activityName == name then return a end
  end
  return nil
end

--- Waits (polling) until `check()` returns a true value, at most `seconds`; returns that value or nil.
function emulators.eventually(check, seconds)
  local deadline = lufa.now() + (seconds or 10)
  repeat
    local v = check()
    if v then return v end
    lufa.sleep(0.1)
  until lufa.now() > deadline
  return nil
end

return emulators
