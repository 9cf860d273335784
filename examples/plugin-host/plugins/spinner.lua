-- A hostile plugin: after half a second it loops forever, and tries to swallow the stop with pcall.
local lufa = require "lufa"

lufa.spawn(function()
  lufa.sleep(0.5)
  while true do
    pcall(function() while true do end end)
  end
end)
