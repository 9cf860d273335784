--- Azure Blob Storage naming rules, shared by the client and by factory validation.
-- @module lufa.blob.names

local M = {}

local CONTAINER_RULE = "3-63 characters of a-z, 0-9 and '-', starting with a letter or digit, no '--', " ..
  "not ending with '-'"
M.CONTAINER_RULE = CONTAINER_RULE

--- Whether Azure accepts `name` as a container name.
-- @return true, or false and why
function M.container(name)
  if name == "$root" or name == "$logs" or name == "$web" then return true end
  if type(name) ~= "string" or #name < 3 or #name > 63 or not name:match("^[a-z0-9][a-z0-9-]*$")
      or name:find("--", 1, true) or name:match("-$") then
    return false, string.format("'%s' is not a valid container name (%s)", tostring(name), CONTAINER_RULE)
  end
  return true
end

--- Whether Azure accepts `name` as a blob name (1-1024 characters, at most 254 path segments).
-- @return true, or false and why
function M.blob(name)
  if type(name) ~= "string" or #name < 1 or #name > 1024 then
    return false, "blob names have 1 to 1024 characters"
  end
  local segments = select(2, name:gsub("/", "")) + 1
  if segments > 254 then return false, "a blob name has at most 254 path segments" end
  return true
end

--- Whether `path` ("container/blob/name") names a blob Azure would accept.
-- @return true, or false and why
function M.path(path)
  local container, blob = path:match("^/?([^/]*)/(.*)$")
  if not container then
    return false, string.format("'%s' names no blob (expected container/path)", path)
  end
  local ok, why = M.container(container)
  if not ok then return false, why end
  ok, why = M.blob(blob)
  if not ok then return false, string.format("'%s': %s", path, why) end
  return true
end

return M
