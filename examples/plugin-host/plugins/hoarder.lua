-- A hostile plugin: after a second it allocates without bound, a little every frame.
local lufa = require "lufa"

local hoard = {}

lufa.spawn(function()
  lufa.sleep(1)
  while true do
    for _ = 1, 200 do hoard[#hoard + 1] = ("x"):rep(1000) .. #hoard end
    lufa.sleep(0)
  end
end)
