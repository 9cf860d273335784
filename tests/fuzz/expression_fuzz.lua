--- Fuzzes ADF expressions (lufa.expression): the parser, the compile-time checks and the evaluator.
-- Every input is compiled as a string value of a pipeline. It compiles, or fails with a syntax error that
-- has a column. What compiles is evaluated against a small scope, and gives a value or raises a lufa.error.
local E = require "lufa.error"

-- The evaluator turns any Lua error into a lufa.error quoting it: a message with the source position of a
-- lufa module (or a stack overflow) is a bug of lufa's, not a refusal of the input. (Patterns, not plain
-- text, so that libFuzzer's string-comparison hooks do not teach it to write these words into inputs.)
local function internal(err)
  local m = tostring(err.message)
  return m:find("lufa[%w_/]*%.lua:%d+:") or m:find("stack%s+overflow")
end
local expression = require "lufa.expression"
local json = require "lufa.json"

local A, O, null = json.array, json.object, json.null

local scope = {
  pipeline = { Pipeline = "p", RunId = "run-1", parameters = O { a = "alpha", n = 42, f = 1.5,
    list = A { 10, 20, 30 }, obj = O { key = "value" }, xml = "<a><b>1</b></a>", nothing = null } },
  activity = function(name)
    if name == "x" then return O { output = O { rows = A { O { id = 1 } } } } end
    error(E.new { kind = "pipeline", code = "unknown_activity", message = "no activity named '" .. name .. "'" })
  end,
  variables = function(name) return ({ v = "value", count = 0 })[name] end,
  item = function() return O { name = "one" } end,
}

return function(input)
  local compiled, err = expression.compile(input)
  if not compiled then
    if not (E.is(err) and err.code == "syntax" and math.type(err.column) == "integer") then
      error("compile failed without a positioned syntax error: " .. tostring(err))
    end
    return
  end
  local ok, value = pcall(compiled.eval, compiled, scope)
  if not ok then
    if not E.is(value) then error("evaluation raised something else than a lufa.error: " .. tostring(value)) end
    if internal(value) then error("evaluation failed inside lufa: " .. tostring(value)) end
    return
  end
  -- json.encode refuses text that is not UTF-8 (a constant may be any bytes), and nothing else
  local encoded, eerr = pcall(json.encode, value)
  if not encoded and not (E.is(eerr) or tostring(eerr):find("not valid UTF-8", 1, true)) then
    error("the value does not encode: " .. tostring(eerr))
  end
end
