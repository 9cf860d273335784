--- `lufa publish FACTORY --out DIR` (ADF's ARM template) and `lufa publish FACTORY --subscription S
-- --resource-group G --factory F [--dry-run]` (deploy through Azure Resource Manager).
-- @module lufa.cli.publish
local fs = require "lufa.fs"
local json = require "lufa.json"
local pipeline = require "lufa.pipeline"
local check = require "lufa.publish.check"
local template = require "lufa.publish.template"
local parameters = require "lufa.publish.parameters"
local view = require "lufa.cli.view"

local stdout, stderr = view.out, view.err

local M = {}

local function write_json(path, value)
  local ok, err = pcall(fs.write_file, path, json.encode(value, {pretty = true}) .. "\n", {mode = 420})
  if not ok then return nil, tostring(err) end
  return true
end

-- The factory as it would be published, or nil after printing why it cannot be.
local function publishable(o)
  -- Activity folders are loaded so that their types are recognised (and refused) as Lua activities; ADF's
  -- activity types that lufa does not run (Copy, Lookup, …) are published all the same.
  local activity_folders = #o.activities > 0 and o.activities or nil
  local factory, problems = pipeline.load_factory(o[1], {activities = check.registry(activity_folders)})
  if not factory then
    stderr(pipeline.format_problems(problems))
    return nil
  end
  problems = {}
  for _, p in ipairs(factory:validate()) do
    if p.severity == "error" then problems[#problems + 1] = p end
  end
  for _, p in ipairs(check.refusals(factory, {override = o.override, activity_folders = activity_folders})) do
    problems[#problems + 1] = p
  end
  local built = template.build(factory, {name = o.factory})
  for _, p in ipairs(built.problems) do problems[#problems + 1] = p end
  if #problems > 0 then
    stderr(string.format("lufa: %s cannot be published to Azure Data Factory as it is (%d problem(s)):\n", o[1],
      #problems))
    stderr(pipeline.format_problems(problems))
    return nil
  end
  return factory, built
end

--- `lufa publish FACTORY (--out DIR | --subscription S --resource-group G --factory F [--dry-run])`.
function M.publish(o, ctx)
  if #o ~= 1 then return ctx.die("publish needs FACTORY") end
  local deploying = o.subscription or o.resource_group or o.dry_run
  if not o.out and not deploying then
    return ctx.die("publish needs --out DIR, or --subscription S --resource-group G --factory F")
  end
  if deploying and not (o.subscription and o.resource_group and o.factory) then
    return ctx.die("deploying needs --subscription, --resource-group and --factory")
  end
  local factory, built = publishable(o)
  if not factory then return 2 end
  if o.out then
    local ok, err = pcall(fs.mkdir, o.out, 493, true)
    if not ok and not fs.is_dir(o.out) then return ctx.die("cannot make %s: %s", o.out, tostring(err)) end
    local tfile, pfile = o.out .. "/ARMTemplateForFactory.json", o.out .. "/ARMTemplateParametersForFactory.json"
    local w, werr = write_json(tfile, built.template)
    if not w then return ctx.die("cannot write %s: %s", tfile, werr) end
    w, werr = write_json(pfile, parameters.file(o.factory or factory.name, built.parameters))
    if not w then return ctx.die("cannot write %s: %s", pfile, werr) end
    local secure = 0
    for _, p in ipairs(built.parameters) do if p.secure then secure = secure + 1 end end
    stdout(string.format("%s: %d resource(s), %d parameter(s) (%d secure, to be supplied at deployment)\n",
      tfile, #built.resources, #built.parameters + 1, secure))
    stdout(pfile, "\n")
  end
  if deploying then
    return require("lufa.publish.deploy").main(factory, built, o, ctx)
  end
  return 0
end

return M
