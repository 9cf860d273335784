-- Runs busted inside the lufa binary: `lufa tests/busted.lua SPEC...`.
-- The specs drive the loop to completion inside each `it` (busted's async mode is not used).
local runner = require "busted.runner"
runner({ standalone = false, output = os.getenv("BUSTED_OUTPUT") or "utfTerminal" })
