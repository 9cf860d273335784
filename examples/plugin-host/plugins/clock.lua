-- A well-behaved plugin: counts frames in update() and seconds in a task; edit it while the host runs and
-- the host reloads it, carrying the counts over.
local lufa = require "lufa"

frames = 0
seconds = 0

lufa.spawn(function()
  while true do
    lufa.sleep(1)
    seconds = seconds + 1
  end
end)

function update()
  frames = frames + 1
end

function on_reload(old)
  frames, seconds = old.frames or 0, old.seconds or 0
  print(("clock: reloaded at frame %d"):format(frames))
end
