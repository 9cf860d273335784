-- lufa.cli.view: the live view respects TERM=dumb (no redrawing) and NO_COLOR (no colours).
local view = require "lufa.cli.view"

local function env(t)
  return function(name) return t[name] end
end

describe("the live view's terminal capabilities", function()
  it("redraws and colours an ordinary terminal", function()
    assert.same({ redraw = true, color = true }, view.terminal_caps(env { TERM = "xterm-256color" }))
    assert.same({ redraw = true, color = true }, view.terminal_caps(env { TERM = "xterm", NO_COLOR = "" }))
  end)

  it("does not colour with NO_COLOR set to anything", function()
    assert.same({ redraw = true, color = false }, view.terminal_caps(env { TERM = "xterm", NO_COLOR = "1" }))
  end)

  it("neither redraws nor colours a dumb terminal", function()
    assert.same({ redraw = false, color = false }, view.terminal_caps(env { TERM = "dumb" }))
  end)
end)

describe("the live view on a terminal", function()
  local progress = require "lufa.progress"
  local term = require "lufa.term"
  local written, err

  before_each(function()
    written, err = {}, view.err
    view.err = function(...) for _, s in ipairs({ ... }) do written[#written + 1] = s end end
  end)
  after_each(function()
    view.err = err
    progress.observe(nil)
  end)

  local function text() return table.concat(written) end

  it("shows the transfers of running activities under them, and clears their lines when they end", function()
    local caps = { tty = true, redraw = true, color = false }
    local on_event = view.progress(false, caps)
    on_event { type = "activity", activityName = "Upload model", status = "InProgress" }
    local clock = 0
    local t = progress.tracker(nil, { name = "model.bin", total = 2048, now = function() return clock end })
    assert.is_true(t:active())  -- observed: metered although the call asked for no progress
    clock = 1
    t:tell(true)
    local report = t:part(1)
    clock = 2
    report(1024)
    assert.matches("Upload model +InProgress", text())
    assert.truthy(text():find("   ↳ model.bin [##########..........]  50% 1.0 KiB/2.0 KiB 512 B/s ETA 0:02\n", 1, true),
      text())
    t:complete(1, 2048)
    written = {}
    t:finish()
    -- the block is drawn again without the transfer: up two lines, the activity, the old line cleared
    assert.are.equal(term.up(caps, 2) .. "\r\27[2K … Upload model                     InProgress  \n" ..
      "\r\27[2K\n" .. term.up(caps, 1), text())
  end)

  it("leaves progress = true transfers to the view: no bar of their own", function()
    view.progress(false, { tty = true, redraw = true, color = false })
    local t = progress.tracker(true, { name = "x", total = 1 })
    assert.is_nil(t.bar)
  end)

  it("does not watch transfers when the output is no terminal", function()
    view.progress(false, { tty = false, redraw = false, color = false })
    assert.is_nil(progress.observer)
    local t = progress.tracker(nil, { name = "x", total = 1 })
    assert.is_false(t:active())
  end)
end)
