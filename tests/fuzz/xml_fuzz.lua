--- Fuzzes lufa's XML readers and XPath: lufa.core.xml (host/xml.c, expat) and the expression language's
-- own XML parser and XPath evaluator (lua/lufa/expression/xml.lua), through xml(), xpath() and json().
-- The input's first line is an XPath, the rest an XML document. Each reader returns a value or fails with
-- a lufa.error.
local E = require "lufa.error"

-- The evaluator turns any Lua error into a lufa.error quoting it: a message with the source position of a
-- lufa module (or a stack overflow) is a bug of lufa's, not a refusal of the input. (Patterns, not plain
-- text, so that libFuzzer's string-comparison hooks do not teach it to write these words into inputs.)
local function internal(err)
  local m = tostring(err.message)
  return m:find("lufa[%w_/]*%.lua:%d+:") or m:find("stack%s+overflow")
end
local core_xml = require "lufa.core.xml"
local expression = require "lufa.expression"
local json = require "lufa.json"

local compiled = {}
for _, text in ipairs { "@xpath(pipeline().parameters.doc, pipeline().parameters.path)",
  "@json(pipeline().parameters.doc)", "@xml(json(pipeline().parameters.doc))", "@xml(pipeline().parameters.doc)" } do
  compiled[#compiled + 1] = assert(expression.compile(text))
end

local function expect_lufa_error(what, ok, err)
  if ok then return end
  if not E.is(err) then error(what .. " raised something else than a lufa.error: " .. tostring(err)) end
  if internal(err) then error(what .. " failed inside lufa: " .. tostring(err)) end
end

return function(input)
  local path, doc = input:match("^([^\n]*)\n(.*)$")
  if not path then path, doc = "/*", input end

  local ok, tree, err = pcall(core_xml.parse, doc, "fuzz.xml")
  expect_lufa_error("lufa.core.xml.parse", ok, tree)
  if ok and tree == nil and not E.is(err) then error("lufa.core.xml.parse gave nil without a lufa.error") end

  local scope = { pipeline = { parameters = json.object { doc = doc, path = path } } }
  for _, c in ipairs(compiled) do
    expect_lufa_error(c.text, pcall(c.eval, c, scope))
  end
end
