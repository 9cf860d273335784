--- Filter: keeps the elements of `items` for which `condition` (over `@item()`) is true.
-- Output `{ItemsCount, FilteredItemsCount, Value}` (read as `output.value` too).
local json = require "lufa.json"
local L = require "lufa.pipeline.lenient"
local branch = require "lufa.pipeline.branch"

local M = {}

function M.validate(activity, report)
  report:require(activity.typeProperties, "items")
  report:require(activity.typeProperties, "condition")
end

function M.input(ctx, activity)
  return branch.eval_except(ctx, activity, {"condition"})
end

function M.run(ctx, activity)
  local items = ctx:property("items")
  if not L.is_array(items) then
    ctx:fail("InvalidFilterItems", "Filter items must evaluate to an array")
  end
  local condition = L.get(activity.typeProperties, "condition")
  local kept = json.array{}
  for _, item in ipairs(items) do
    local keep = ctx:eval(condition, {item = function() return item end})
    if branch.boolean(ctx, keep, "Filter condition") then kept[#kept + 1] = item end
  end
  return json.object{ItemsCount = #items, FilteredItemsCount = #kept, Value = kept}
end

return M
