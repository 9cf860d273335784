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
