-- Retrains the bike-rental model and deploys it only if it is better: the ADF sample's job, in Lua.
--
--   lufa examples/retrain.lua [DATA.csv] [--factory DIR] [--override FILE] [--force]
--
-- It uses the linked services of the sample factory (examples/adf-retraining, with local.json pointing them
-- at the local stand-ins), so the script and `lufa run` share one configuration:
--   1. uploads DATA.csv (if given) as the training input;
--   2. runs the training web service's batch job, which writes a new .ilearner and its evaluation;
--   3. the promotion gate: the new model's holdout RMSE against the RMSE of the model the scoring service
--      uses now, on the same holdout rows (scored through the service itself);
--   4. deploys the new model only when it is better (or with --force), as AzureMLUpdateResource would.
-- Exit status: 0 when the job ran (promoted or not), 1 on failure.
local lufa = require "lufa"
local json = require "lufa.json"
local pipeline = require "lufa.pipeline"
local retrain = require "lufa.retrain"

local CONTAINER = "azuremltesting"
local INPUT = CONTAINER .. "/input/rentals.csv"
local MODEL_NAME = "ADFV2Sample Model [trained model]"
local LABEL = "rentals"
-- the training experiment holds out every m-th row (m = 1 / fraction); the gate scores the same rows
local HOLDOUT_FRACTION = 0.2

local opts = { factory = "examples/adf-retraining" }
do
  local i = 1
  while arg[i] do
    local a = arg[i]
    if a == "--factory" or a == "--override" then
      opts[a:sub(3)] = assert(arg[i + 1], a .. " needs a value")
      i = i + 1
    elseif a == "--force" then opts.force = true
    elseif a:sub(1, 1) == "-" then error("unknown option " .. a, 0)
    else opts.data = a end
    i = i + 1
  end
  opts.override = opts.override or (opts.factory .. "/local.json")
end

local function step(fmt, ...) io.write(string.format(fmt, ...), "\n") io.flush() end

local factory, problems = pipeline.load_factory(opts.factory, { override = opts.override })
if not factory then
  io.stderr:write(pipeline.format_problems(problems))
  os.exit(1)
end
local function client(name) return assert(factory:linked_service(name)) end
local storage = client("StorageLinkedService")
local training = client("trainingEndpoint")
local scoring = client("updatableScoringEndpoint2")
local container = storage.blob():container(CONTAINER)

--- Reads a CSV with a header row into {columns = {...}, rows = {{...}, ...}}.
local function parse_csv(text)
  local columns, rows = nil, {}
  for line in text:gmatch("[^\r\n]+") do
    local fields = {}
    for f in (line .. ","):gmatch("([^,]*),") do fields[#fields + 1] = f end
    if columns then rows[#rows + 1] = fields else columns = fields end
  end
  return { columns = columns or {}, rows = rows }
end

-- 1. the training data
if opts.data then
  if not container:exists() then assert(container:create()) end
  assert(container:blob(INPUT:match("^[^/]+/(.+)$")):put{ file = opts.data })
  step("uploaded %s as %s", opts.data, INPUT)
end

-- 2. train
local stamp = os.date("!%Y%m%dT%H%M%SZ")
local model_path = string.format("%s/output/model-%s.ilearner", CONTAINER, stamp)
local evaluation_path = string.format("%s/output/model-%s-evaluation.csv", CONTAINER, stamp)
step("training on %s ...", INPUT)
local job, err, job_id = training.batch():run({
  Inputs = { input1 = storage.bes_reference(INPUT), input2 = storage.bes_reference(INPUT) },
  Outputs = { output1 = storage.bes_reference(model_path), output2 = storage.bes_reference(evaluation_path) },
  GlobalParameters = { ["Label column"] = LABEL, ["Holdout fraction"] = HOLDOUT_FRACTION },
}, { on_status = function(st) step("  batch job: %s", st.StatusCode) end })
if not job then
  io.stderr:write("training failed: ", tostring(err), "\n")
  os.exit(1)
end
step("  job %s finished; model at %s", job_id, model_path)

-- 3. the promotion gate
local evaluation = parse_csv(assert(container:blob(evaluation_path:match("^[^/]+/(.+)$")):get()))
local new_rmse
for _, r in ipairs(evaluation.rows) do
  if r[1] == "Root Mean Squared Error" then new_rmse = tonumber(r[2]) end
end
assert(new_rmse, "the evaluation output has no Root Mean Squared Error")

local data = parse_csv(assert(container:blob(INPUT:match("^[^/]+/(.+)$")):get()))
local every = math.floor(1 / HOLDOUT_FRACTION + 0.5)
local holdout = {}
for i, r in ipairs(data.rows) do
  if i % every == 0 then holdout[#holdout + 1] = r end
end
data.rows = holdout
local label_at, features, rows = nil, {}, {}
for i, c in ipairs(data.columns) do
  if c == LABEL then label_at = i else features[#features + 1] = c end
end
for i, r in ipairs(data.rows) do
  local x = {}
  for j, v in ipairs(r) do if j ~= label_at then x[#x + 1] = v end end
  rows[i] = x
end
local current_rmse = math.huge
local scored, serr = scoring.scoring():score(features, rows)
if scored then
  local sum = 0
  for i, r in ipairs(scored.rows) do
    local d = tonumber(r[#r]) - tonumber(data.rows[i][label_at])
    sum = sum + d * d
  end
  current_rmse = math.sqrt(sum / #scored.rows)
else
  step("  the scoring service has no usable model yet (%s)", serr.message)
end
step("holdout RMSE of the new model: %.2f; the deployed model on the same data: %s", new_rmse,
  current_rmse == math.huge and "none" or string.format("%.2f", current_rmse))

-- 4. deploy when better
-- the evaluation is rounded to 6 decimals: a model is better only beyond that
if not (opts.force or new_rmse < current_rmse - 1e-6) then
  step("kept the deployed model: the new one is not better")
  os.exit(0)
end
local out, derr = retrain.deploy{ ml = scoring, storage = storage, name = MODEL_NAME, path = model_path,
  log = function(fmt, ...) step("  " .. fmt, ...) end }
if not out then
  io.stderr:write("deploying failed: ", tostring(derr), "\n")
  os.exit(1)
end
step("deployed %s to the scoring service (%s)", model_path, out.endpointKind)
lufa.run()
