-- Helpers for `scripts/demo v2`: upload data to the workspace's datastore, score sample days on the online
-- endpoint (through the endpoint as clients do, or pinned to one deployment), and show its traffic map.
--
--   lufa examples/azureml-v2/demo.lua upload FILE.csv PATH        (PATH inside the datastore, e.g. rentals/train.csv)
--   lufa examples/azureml-v2/demo.lua score [--deployment D] [--save FILE] [--before FILE]
--   lufa examples/azureml-v2/demo.lua traffic
--
-- All use the sample factory's AzureMLService linked service with local.json (the stand-ins' env must be
-- loaded); the datastore `workspaceblobstore` is the stand-in storage account's container of that name.
local json = require "lufa.json"
local pipeline = require "lufa.pipeline"
local blob = require "lufa.blob"
local online = require "lufa.azureml.v2.online"

local DIR = "examples/azureml-v2"
local ENDPOINT = "rentals"
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
local function workspace() return assert(factory:linked_service("AzureMLWorkspace")).workspace() end

local function option(name)
  for i = 2, #arg do if arg[i] == name then return arg[i + 1] end end
end

local command = arg[1]
if command == "upload" then
  local file, path = assert(arg[2], "upload needs a CSV file"), assert(arg[3], "upload needs a datastore path")
  local container = assert(blob.client(assert(os.getenv("LUFA_EMU_STORAGE_CONNECTION_STRING"),
    "load the stand-ins' env first"))):container("workspaceblobstore")
  assert(container:create{ exist_ok = true })
  assert(container:blob(path):put{ file = file })
  print(string.format("uploaded %s to azureml://datastores/workspaceblobstore/paths/%s", file, path))
elseif command == "score" then
  local deployment, save, before = option("--deployment"), option("--save"), option("--before")
  local rows = json.array{}
  for i, d in ipairs(DAYS) do rows[i] = json.array{ d[2], d[3], d[4] } end
  local predicted, info = online.score(workspace(), ENDPOINT, { data = rows }, { deployment = deployment })
  if not predicted then
    io.stderr:write("scoring failed: ", tostring(info), "\n")
    os.exit(1)
  end
  local previous = before and json.decode_file(before)
  print(string.format("  answered by deployment %s", tostring(info.deployment)))
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
elseif command == "traffic" then
  local traffic, mirror = online.traffic(workspace(), ENDPOINT)
  if not traffic then
    io.stderr:write("reading the traffic failed: ", tostring(mirror), "\n")
    os.exit(1)
  end
  local names = {}
  for name in pairs(traffic) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do print(string.format("  %-14s %3d %%", name, traffic[name])) end
  if next(mirror) then print("  mirrored: " .. json.encode(mirror)) end
else
  io.stderr:write("usage: lufa examples/azureml-v2/demo.lua upload FILE.csv PATH | score [--deployment D] " ..
    "[--save FILE] [--before FILE] | traffic\n")
  os.exit(2)
end
