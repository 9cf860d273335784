--- Routes of `lufa serve`: a method and a Lua pattern of the path (its captures are the handler's
-- arguments after the request) per handler, tried in the order added.
-- @module lufa.serve.router
local M = {}

local Router = {}
Router.__index = Router

function M.new() return setmetatable({routes = {}}, Router) end

function Router:add(method, pattern, handler)
  self.routes[#self.routes + 1] = {method = method, pattern = "^" .. pattern .. "$", handler = handler}
end

--- The handler and captures for `method path`; or nil and 404 (no such path) or 405 (another method).
function Router:find(method, path)
  local other
  for _, r in ipairs(self.routes) do
    local caps = {path:match(r.pattern)}
    if caps[1] ~= nil then
      if r.method == method or (r.method == "GET" and method == "HEAD") then return r.handler, caps end
      other = true
    end
  end
  return nil, other and 405 or 404
end

return M
