--- RequireFile (a test activity): after `waitTimeInSeconds`, succeeds when the file `path` exists and fails
-- with errorCode InputMissing when it does not.
local M = {}

function M.validate(activity, report)
  report:require(activity.typeProperties, "path")
end

function M.run(ctx)
  ctx:sleep(tonumber(ctx:property("waitTimeInSeconds")) or 0)
  local path = ctx:property("path")
  local f = io.open(path, "rb")
  if not f then ctx:fail("InputMissing", "the input file " .. path .. " does not exist yet") end
  local size = f:seek("end")
  f:close()
  return {path = path, size = size, reportUrl = "https://example.invalid/report?sig=abcdefSIGNATURE123"}
end

return M
