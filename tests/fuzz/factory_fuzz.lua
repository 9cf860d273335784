--- Fuzzes factory loading (lufa.pipeline.load_factory, validate, plan) on a folder built from the input.
-- The input is split at lines "---" into the files pipeline/p.json, linkedService/ls.json,
-- dataset/ds.json, trigger/t.json, factory/f.json and an override file, in that order. Loading gives a
-- factory or a list of problems; validating and planning give problems; none of them raises.
local fs = require "lufa.fs"
local pipeline = require "lufa.pipeline"

-- scripts/fuzz gives a folder in memory (six files are written for every input) and removes it afterwards
local root = os.getenv("LUFA_FUZZ_TMP")
if not root then
  root = os.tmpname()
  os.remove(root)
  assert(fs.mkdir(root))
end
root = root .. "/factory"
assert(fs.mkdir(root))
local FILES = { "pipeline/p.json", "linkedService/ls.json", "dataset/ds.json", "trigger/t.json", "factory/f.json" }
for _, f in ipairs(FILES) do assert(fs.mkdir(root .. "/" .. f:match("^[^/]+"))) end
local override = root .. "/override.json"

local function write(path, text)
  if text == nil then
    os.remove(path)
    return
  end
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  f:close()
end

local function check_problems(what, problems)
  if type(problems) ~= "table" then error(what .. " gave no list of problems") end
  for _, p in ipairs(problems) do
    if type(p.message) ~= "string" or (p.severity ~= "error" and p.severity ~= "warning") then
      error(what .. " gave a problem without a message or severity")
    end
  end
  if type(pipeline.format_problems(problems)) ~= "string" then error("format_problems gave no text") end
end

return function(input)
  local parts = {}
  for part in (input .. "\n---\n"):gmatch("(.-)\n%-%-%-\n") do parts[#parts + 1] = part end
  for i, f in ipairs(FILES) do write(root .. "/" .. f, parts[i]) end
  write(override, parts[#FILES + 1])
  local factory, problems = pipeline.load_factory(root, { override = parts[#FILES + 1] and override or nil })
  if not factory then return check_problems("load_factory", problems) end
  check_problems("validate", pipeline.validate(factory))
  for _, name in ipairs(factory:pipelines()) do
    local _, plan_problems = factory:plan(name)
    check_problems("plan", plan_problems or {})
  end
end
