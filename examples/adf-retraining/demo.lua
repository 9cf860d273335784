-- Helpers for scripts/demo: upload a data generation, and score sample days through the scoring service.
--
--   lufa examples/adf-retraining/demo.lua upload FILE.csv
--   lufa examples/adf-retraining/demo.lua score [--save FILE] [--before FILE]
--   lufa examples/adf-retraining/demo.lua vault        -- the keys local-keyvault.json reads, into the stand-in vault
--
-- Both use the sample factory's linked services with local.json (the stand-ins' env must be loaded).
local json = require "lufa.json"
local pipeline = require "lufa.pipeline"

local DIR = "examples/adf-retraining"
local DAYS = {
  { "warm, dry, calm", 26, 35, 2 },
  { "mild, humid", 18, 70, 4 },
  { "cool, breezy", 12, 55, 9 },
  { "cold, wet, windy", 7, 88, 11 },
}

local factory, problems = pipeline.load_factory(DIR, { override = DIR .. "/local.json" })
if not factory then
  io.stderr:write(pipeline.format_problems(problems))
  os.exit(1)
end

local command = arg[1]
if command == "upload" then
  local storage = assert(factory:linked_service("StorageLinkedService"))
  local container = storage.blob():container("azuremltesting")
  if not container:exists() then assert(container:create()) end
  local blob = container:blob("input/rentals.csv")
  assert(blob:put({ file = assert(arg[2], "upload needs a CSV file") }))
  local props = assert(blob:properties())
  print(string.format("uploaded %s to azuremltesting/input/rentals.csv (%d bytes)", arg[2], props.size or 0))
elseif command == "score" then
  local save, before
  for i = 2, #arg, 2 do
    if arg[i] == "--save" then save = arg[i + 1] elseif arg[i] == "--before" then before = arg[i + 1] end
  end
  local scoring = assert(factory:linked_service("updatableScoringEndpoint2")).scoring()
  local rows = {}
  for i, d in ipairs(DAYS) do rows[i] = { d[2], d[3], d[4] } end
  local res, err = scoring:score({ "temperature", "humidity", "windspeed" }, rows)
  if not res then
    io.stderr:write("scoring failed: ", tostring(err), "\n")
    os.exit(1)
  end
  local predicted = {}
  for i, r in ipairs(res.rows) do predicted[i] = tonumber(r[#r]) end
  local previous = before and json.decode_file(before)
  print(string.format("  %-18s %6s %9s %6s   %s", "day", "temp", "humidity", "wind",
    previous and "rentals before -> after" or "predicted rentals"))
  for i, d in ipairs(DAYS) do
    local p = predicted[i]
    if previous then
      print(string.format("  %-18s %5d° %8d%% %4dm/s   %7.0f -> %-7.0f (%+.0f)", d[1], d[2], d[3], d[4], previous[i], p,
        p - previous[i]))
    else
      print(string.format("  %-18s %5d° %8d%% %4dm/s   %7.0f", d[1], d[2], d[3], d[4], p))
    end
  end
  if save then
    local f = assert(io.open(save, "w"))
    f:write(json.encode(json.array(predicted)))
    f:close()
  end
elseif command == "vault" then
  -- The stand-in vault's secrets are set through its control endpoint (docs/emulators.md).
  local http = require "lufa.http"
  local control = assert(os.getenv("LUFA_EMU_CONTROL"), "load the stand-ins' env first")
  local secrets = {
    ["storage-connection-string"] = "LUFA_EMU_STORAGE_CONNECTION_STRING",
    ["training-api-key"] = "LUFA_EMU_ML_TRAINING_API_KEY",
    ["scoring-api-key"] = "LUFA_EMU_ML_SCORING_API_KEY",
    ["scoring-principal-key"] = "LUFA_EMU_CLIENT_SECRET",
  }
  local names = {}
  for name in pairs(secrets) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local value = assert(os.getenv(secrets[name]), secrets[name] .. " is not set")
    local res = assert(http.request{ method = "PUT", url = control .. "/keyvault/secrets/" .. name,
      headers = { ["Content-Type"] = "application/json" }, body = json.encode({ value = value }) })
    if res.status ~= 200 then
      io.stderr:write(string.format("storing %s failed: %d %s\n", name, res.status, res.body or ""))
      os.exit(1)
    end
  end
  print("stored " .. table.concat(names, ", ") .. " in the stand-in Key Vault at " .. tostring(os.getenv("LUFA_EMU_KEYVAULT_URL")))
else
  io.stderr:write("usage: lufa examples/adf-retraining/demo.lua upload FILE.csv | score [--save FILE] [--before FILE] | vault\n")
  os.exit(2)
end
