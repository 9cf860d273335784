-- Every Lua example in README.md and docs/**/*.md is run, so the documentation cannot drift from the code.
--
-- How a fenced block's info string is read:
--   ```lua              a complete example: written to a script in a fresh temporary directory and run by
--                       the lufa under test (no standard input, with a timeout); it must exit 0. In that
--                       directory `examples` is the repository's examples/ folder, so an example can load
--                       the sample factory by the path a reader in a checkout would type.
--   ```lua stand-ins    the same, with the local Azure stand-ins started (once for this spec, reset
--                       before each file's first such block) and their LUFA_EMU_* variables exported
--                       (docs/emulators.md lists them): the example reads them with os.getenv as a user's
--                       script reads its own settings.
--   ```lua fragment     a piece of a larger program: compiled only (syntax), never run.
--   ```text output      right after a runnable block (blank lines may separate them): the exact standard
--                       output of that block, trailing white space of each line ignored.
-- Other languages (sh, json, c, ini, plain ```) are left alone. Any other word after `lua` or `text` fails
-- (`lua fragmnet` would otherwise run silently as a complete example), and so does a `text output` block
-- that follows no runnable block. Each block is one test named FILE:LINE (the line of its opening fence);
-- a failure shows the block, its standard output and its standard error.
local fs = require "lufa.fs"
local util = require "tests.support.util"
local emulators = require "tests.support.emulators"

local shell_quote = util.shell_quote

-- The build under test: LUFA_BUILD_DIR in ctest, else the binary running this spec.
local function lufa_binary()
  local dir = os.getenv("LUFA_BUILD_DIR")
  if dir and dir ~= "" then return assert(fs.realpath(dir .. "/lufa"), "no lufa in " .. dir) end
  return util.lufa_binary()
end
local LUFA = lufa_binary()
local ROOT = assert(fs.realpath("."))

-- Generous: a sanitizer build runs several times slower, and a stand-ins example makes several calls.
local TIMEOUT = tonumber(os.getenv("LUFA_DOC_TIMEOUT") or "") or 120

local KNOWN = {
  lua = { fragment = true, ["stand-ins"] = true },
  text = { output = true },
}

--- README.md and every .md under docs/, recursively, sorted.
local function markdown_files()
  local out = { "README.md" }
  local function walk(dir)
    local names = assert(fs.list(dir))
    table.sort(names)
    for _, name in ipairs(names) do
      local path = dir .. "/" .. name
      if fs.is_dir(path) then
        walk(path)
      elseif name:match("%.md$") and fs.is_file(path) then
        out[#out + 1] = path
      end
    end
  end
  walk("docs")
  return out
end

--- The fenced blocks of a Markdown text: `{line, lang, words = {...}, info, code, closed}`, in order;
-- `after_blank` tells whether only blank lines separate a block from the one before it.
local function fenced_blocks(text)
  local blocks = {}
  local open -- the block being read
  local gap_clean = false -- only blank lines since the last block closed
  local n = 0
  for line in (text:gsub("\n?$", "\n")):gmatch("([^\n]*)\n") do
    n = n + 1
    if open then
      local fence = line:match("^ *(" .. open.char .. "+)%s*$")
      if fence and #fence >= open.len then
        open.code = table.concat(open.lines, "\n") .. (#open.lines > 0 and "\n" or "")
        open.closed = true
        blocks[#blocks + 1] = open
        open = nil
        gap_clean = true
      else
        -- content lines lose the fence's own indentation (a block inside a list item)
        if open.indent > 0 and line:sub(1, open.indent):match("^ *$") then line = line:sub(open.indent + 1) end
        open.lines[#open.lines + 1] = line
      end
    else
      local indent, fence, info = line:match("^( *)(```+)(.*)$")
      if not fence then indent, fence, info = line:match("^( *)(~~~+)(.*)$") end
      if fence and #indent < 4 then
        local words = {}
        for w in info:gmatch("%S+") do words[#words + 1] = w end
        open = { line = n, indent = #indent, char = fence:sub(1, 1), len = #fence, info = info,
          lang = words[1] and words[1]:lower() or "", words = { table.unpack(words, 2) }, lines = {},
          after_blank = gap_clean }
      elseif not line:match("^%s*$") then
        gap_clean = false
      end
    end
  end
  if open then
    open.code = table.concat(open.lines, "\n") .. "\n"
    blocks[#blocks + 1] = open
  end
  return blocks
end

--- The lines of a text with the trailing white space of each removed (a final newline ends the last).
local function lines_of(s)
  local out = {}
  for line in (s:gsub("\n$", "") .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = (line:gsub("%s+$", "")) end
  if s == "" then out = {} end
  return out
end

local function numbered(code, first)
  local out, n = {}, first
  for line in (code:gsub("\n$", "") .. "\n"):gmatch("([^\n]*)\n") do
    out[#out + 1] = string.format("%5d | %s", n, line)
    n = n + 1
  end
  return table.concat(out, "\n")
end

local function report(where, block, what, r)
  local parts = { string.format("%s: %s", where, what), "--- block:", numbered(block.code, block.line + 1) }
  if r then
    parts[#parts + 1] = "--- stdout:"
    parts[#parts + 1] = r.stdout
    parts[#parts + 1] = "--- stderr:"
    parts[#parts + 1] = r.stderr
  end
  return table.concat(parts, "\n")
end

local emu -- the stand-ins, started by the first stand-ins block and kept for the rest
local emu_file -- the file whose blocks used them last

--- Runs a block's code as a script in a fresh directory; returns `{stdout, stderr, status}`.
local function run_block(block, env)
  local dir = util.tempdir()
  -- blank lines first, so a line number in an error is the line in the Markdown file
  util.write_file(dir .. "/example.lua", string.rep("\n", block.line) .. block.code)
  assert(os.execute("ln -s " .. shell_quote(ROOT .. "/examples") .. " " .. shell_quote(dir .. "/examples")))
  local parts = { "cd", shell_quote(dir), "&&", "env",
    shell_quote("LUFA_STORE=" .. dir .. "/runs.db"), shell_quote("XDG_STATE_HOME=" .. dir .. "/state") }
  local names = {}
  for k in pairs(env or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do parts[#parts + 1] = shell_quote(k .. "=" .. env[k]) end
  for _, p in ipairs{ "timeout", "-k", "5", tostring(TIMEOUT), shell_quote(LUFA), "example.lua", "</dev/null" } do
    parts[#parts + 1] = p
  end
  local r = emulators.capture(table.concat(parts, " "))
  os.execute("rm -rf " .. shell_quote(dir))
  return r
end

-- The checks of one block; `expected` is the `text output` block after it, if any.
local function check(where, block, expected)
  local words = {}
  for _, w in ipairs(block.words) do
    if not KNOWN[block.lang][w] then
      error(report(where, block, string.format("unknown word %q in the info string %q (known: %s)", w,
        block.info, block.lang == "lua" and "fragment, stand-ins" or "output")), 0)
    end
    words[w] = true
  end
  if not block.closed then error(report(where, block, "the block is never closed"), 0) end
  if block.lang == "text" then
    if words.output then
      error(report(where, block, "a `text output` block must follow a runnable ```lua block"), 0)
    end
    return
  end
  if words.fragment then
    if words["stand-ins"] then error(report(where, block, "a fragment is not run: drop `stand-ins`"), 0) end
    if expected then error(report(where, block, "a fragment is not run: its `text output` cannot be checked"), 0) end
    local chunk, err = load(string.rep("\n", block.line) .. block.code, "@" .. where:match("^[^:]+"), "t")
    if not chunk then error(report(where, block, "does not compile: " .. tostring(err)), 0) end
    return
  end
  local env
  if words["stand-ins"] then
    local file = where:match("^(.*):%d+$")
    if not emu then
      emu = emulators.start{}
    elseif emu_file ~= file then
      emu:reset() -- each file's examples see the configured services, whatever the files before did
    end
    emu_file, env = file, emu.env
  end
  local r = run_block(block, env)
  if r.status ~= 0 then
    error(report(where, block, r.status == 124 and ("timed out after " .. TIMEOUT .. " s")
      or ("exited with status " .. tostring(r.status)), r), 0)
  end
  if expected then
    local want, got = lines_of(expected.code), lines_of(r.stdout)
    local same = #want == #got
    for i = 1, math.max(#want, #got) do
      if want[i] ~= got[i] then same = false; break end
    end
    if not same then
      error(report(where, block, string.format("the output differs from the `text output` block at line %d:\n" ..
        "--- expected:\n%s", expected.line, table.concat(want, "\n")), r), 0)
    end
  end
end

-- Exported for the checks of the parser itself below.
local M = { fenced_blocks = fenced_blocks, lines_of = lines_of }

describe("doc examples", function()
  teardown(function()
    if emu then emu:stop() end
  end)

  for _, file in ipairs(markdown_files()) do
    local blocks = fenced_blocks(assert(util.read_file(file)))
    for i, block in ipairs(blocks) do
      local consumed = block.lang == "text" and i > 1 and blocks[i - 1].lang == "lua" and block.after_blank
        and #block.words == 1 and block.words[1] == "output"
      -- every lua block; a text block only when it carries words (a stray or misspelt `output`)
      if (block.lang == "lua" or (block.lang == "text" and #block.words > 0)) and not consumed then
        local nextb = blocks[i + 1]
        local expected = nextb and nextb.lang == "text" and nextb.after_blank and #nextb.words == 1
          and nextb.words[1] == "output" and nextb or nil
        local where = file .. ":" .. block.line
        it(where, function() check(where, block, expected) end)
      end
    end
  end
end)

describe("doc examples: the block reader", function()
  local function checks(md)
    local blocks, out = M.fenced_blocks(md), {}
    for i, block in ipairs(blocks) do
      local nextb = blocks[i + 1]
      local expected = nextb and nextb.lang == "text" and nextb.after_blank and nextb.words[1] == "output"
        and nextb or nil
      if block.lang == "lua" then
        out[#out + 1] = { pcall(check, "x.md:" .. block.line, block, expected) }
      end
    end
    return out, blocks
  end

  it("reads info strings, lines and indented blocks", function()
    local blocks = M.fenced_blocks("# T\n\n```lua fragment\nx = 1\n```\n\n- item\n\n  ```lua\n  print(1)\n  ```\n\n" ..
      "  ```text output\n  1\n  ```\n````sh\n```lua\n````\n")
    assert.are.equal(4, #blocks)
    assert.are.same({ 3, "lua", { "fragment" }, "x = 1\n" },
      { blocks[1].line, blocks[1].lang, blocks[1].words, blocks[1].code })
    assert.are.same({ 9, "lua", "print(1)\n" }, { blocks[2].line, blocks[2].lang, blocks[2].code })
    assert.are.same({ 13, "text", { "output" }, true }, { blocks[3].line, blocks[3].lang, blocks[3].words,
      blocks[3].after_blank })
    assert.are.same({ "sh", "```lua\n" }, { blocks[4].lang, blocks[4].code })
  end)

  it("fails a misspelt marker, a fragment that does not compile, a wrong output and a failing example", function()
    local results = checks("```lua fragmnet\nx = 1\n```\n```lua fragment\nx = = 1\n```\n" ..
      "```lua\nprint('a  ')\nprint('b')\n```\n```text output\na\nb\n```\n" ..
      "```lua\nprint('a')\n```\n```text output\nb\n```\n```lua\nerror('boom')\n```\n")
    assert.are.equal(5, #results)
    assert.is_false(results[1][1])
    assert.matches('x.md:1: unknown word "fragmnet"', results[1][2], 1, true)
    assert.is_false(results[2][1])
    assert.matches("x.md:5: ", results[2][2], 1, true) -- the error names the Markdown line
    assert.is_true(results[3][1], results[3][2])       -- trailing blanks of a line do not count
    assert.is_false(results[4][1])
    assert.matches("the output differs", results[4][2], 1, true)
    assert.is_false(results[5][1])
    assert.matches("exited with status 1", results[5][2], 1, true)
    assert.matches("example.lua:22: boom", results[5][2], 1, true)
  end)

  it("fails a `text output` block that follows no runnable block", function()
    local blocks = M.fenced_blocks("```lua fragment\nx = 1\n```\n\n```text output\n1\n```\n")
    assert.has_error(function() check("x.md:1", blocks[1], blocks[2]) end)
    assert.has_error(function() check("x.md:5", blocks[2]) end)
  end)

  it("takes a block's output only from right after it", function()
    local blocks = M.fenced_blocks("```lua\nprint(1)\n```\nsome words\n```text output\n1\n```\n")
    assert.is_false(blocks[2].after_blank)
    assert.are.same({ "1" }, M.lines_of("1  \n"))
    assert.are.same({}, M.lines_of(""))
  end)
end)
