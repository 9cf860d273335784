-- Grammar, evaluation rules and the public interface of lufa.expression.

local expression = require "lufa.expression"
local json = require "lufa.json"
local secret = require "lufa.secret"
local E = require "lufa.error"

local A, O, null = json.array, json.object, json.null

local function scope(extra)
  local s = {
    pipeline = {
      Pipeline = "pipe1", RunId = "run-1",
      parameters = O { a = "alpha", n = 42, f = 1.5, k = "key2", list = A { 10, 20, 30 },
        obj = O { key1 = "one", key2 = "two", Mixed = "case" }, empty = O {}, nothing = null },
    },
    activity = function(name)
      if name == "x" then return O { output = O { y = "world", rows = A { O { id = 1 }, O { id = 2 } } } } end
      error(E.new { kind = "pipeline", code = "unknown_activity", message = "no activity named '" .. name .. "'" })
    end,
    variables = function(name) return ({ v = "value", count = 0 })[name] end,
  }
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

local function eval(text, s)
  local c, err = expression.compile(text)
  if not c then error(err, 0) end
  return c:eval(s or scope())
end

local function compile_error(text)
  local c, err = expression.compile(text)
  assert.is_nil(c, "expected a compile error for " .. text)
  return err
end

local function eval_error(text, s)
  local ok, err = pcall(eval, text, s)
  assert.is_false(ok, "expected an evaluation error for " .. text)
  return err
end

describe("expression grammar", function()
  describe("where expressions are", function()
    it("keeps the JSON type of an @ expression", function()
      assert.are.equal(42, eval("@pipeline().parameters.n"))
      assert.are.equal("integer", math.type(eval("@pipeline().parameters.n")))
      assert.are.equal(1.5, eval("@pipeline().parameters.f"))
      assert.are.equal("array", json.type(eval("@pipeline().parameters.list")))
      assert.are.equal(true, eval("@equals(1, 1)"))
      assert.are.equal(null, eval("@pipeline().parameters.nothing"))
    end)

    it("makes an interpolated string always a string", function()
      assert.are.equal("42", eval("@{pipeline().parameters.n}"))
      assert.are.equal("n=42, f=1.5, ok=True", eval("n=@{pipeline().parameters.n}, f=@{pipeline().parameters.f}, ok=@{equals(1,1)}"))
      assert.are.equal("list=[10,20,30]", eval("list=@{pipeline().parameters.list}"))
      assert.are.equal("[]", eval("@{pipeline().parameters.nothing}[]"))
    end)

    it("treats '@@' at the start as a literal '@'", function()
      assert.are.equal("@", eval("@@"))
      assert.are.equal("@concat('a')", eval("@@concat('a')"))
      assert.are.equal("@{x}", eval("@@{x}"))
    end)

    it("writes '@@{' inside a template as a literal '@{'", function()
      assert.are.equal("a @{b} 42", eval("a @@{b} @{pipeline().parameters.n}"))
    end)

    it("leaves strings without expressions unchanged", function()
      for _, text in ipairs { "plain", " @concat('a')", "mail@example.com", "", "50@ 2" } do
        local c = assert(expression.compile(text))
        assert.are.equal("constant", c.kind)
        assert.are.equal(text, c:eval(scope()))
      end
    end)
  end)

  describe("syntax", function()
    it("nests calls", function()
      assert.are.equal("ALPHA-WORLD-3",
        eval("@toUpper(concat(pipeline().parameters.a, '-', toLower(toUpper(activity('x').output.y)), '-', string(add(1, mul(1, 2)))))"))
    end)

    it("reads '' inside a literal as one quote and has no backslash escapes", function()
      assert.are.equal("it's", eval("@'it''s'"))
      assert.are.equal("a\\nb", eval("@'a\\nb'"))
      assert.are.equal("''", eval("@concat('''', '''')"))
      assert.are.equal("say 'hi'", eval("say @{'''hi'''}"))
    end)

    it("reads number, boolean and null literals", function()
      assert.are.equal("integer", math.type(eval("@-5")))
      assert.are.equal(-5, eval("@-5"))
      assert.are.equal("float", math.type(eval("@2.0")))
      assert.are.equal(1500.0, eval("@1.5e3"))
      assert.are.equal(true, eval("@true"))
      assert.are.equal(false, eval("@False"))
      assert.are.equal(null, eval("@null"))
      assert.are.equal("float", math.type(eval("@99999999999999999999")))
    end)

    it("allows white space and new lines between tokens", function()
      assert.are.equal("ab", eval("@concat(\n  'a' ,\n\t'b'\n)"))
      assert.are.equal(20, eval("@pipeline() . parameters . list [ 1 ]"))
      assert.are.equal("42", eval("@{ pipeline().parameters.n }"))
    end)

    it("matches function names ignoring case", function()
      assert.are.equal("AB", eval("@CONCAT('A', 'B')"))
      assert.are.equal("ab", eval("@ToLower('AB')"))
      assert.are.equal("alpha", eval("@PIPELINE().parameters.a"))
    end)
  end)

  describe("member and index access", function()
    it("reads properties with '.' and ['…']", function()
      assert.are.equal("one", eval("@pipeline().parameters.obj.key1"))
      assert.are.equal("one", eval("@pipeline().parameters.obj['key1']"))
      assert.are.equal("two", eval("@pipeline()['parameters'].obj[pipeline().parameters.k]"))
    end)

    it("indexes arrays from 0", function()
      assert.are.equal(10, eval("@pipeline().parameters.list[0]"))
      assert.are.equal(30, eval("@pipeline().parameters.list[2]"))
      assert.are.equal(2, eval("@activity('x').output.rows[1].id"))
      assert.are.equal(20, eval("@pipeline().parameters.list[add(0, 1)]"))
      assert.are.equal(2, eval("@createArray(1, 2)[1]"))
    end)

    it("falls back to a property whose name differs only in case", function()
      assert.are.equal("case", eval("@pipeline().parameters.obj.mixed"))
      assert.are.equal("case", eval("@pipeline().parameters.obj.Mixed"))
      assert.are.equal("run-1", eval("@pipeline().runid"))
    end)

    it("names the available properties when one is missing", function()
      local err = eval_error("@pipeline().parameters.obj.nope")
      assert.are.equal("property", err.code)
      assert.is_truthy(err.message:find("property 'nope' doesn't exist", 1, true))
      assert.is_truthy(err.message:find("Mixed, key1, key2", 1, true))
      assert.are.equal(28, err.column)
    end)

    it("fails on an index outside the array", function()
      local err = eval_error("@pipeline().parameters.list[3]")
      assert.are.equal("index", err.code)
      assert.is_truthy(err.message:find("outside the array of length 3", 1, true))
      assert.are.equal(28, err.column)
      assert.are.equal("index", eval_error("@pipeline().parameters.list[-1]").code)
    end)

    it("fails on a member of null or of a scalar", function()
      local err = eval_error("@pipeline().parameters.nothing.x")
      assert.are.equal("property", err.code)
      assert.is_truthy(err.message:find("of null", 1, true))
      assert.are.equal("type", eval_error("@pipeline().parameters.n.x").code)
      assert.are.equal("type", eval_error("@pipeline().parameters.list.x").code)
    end)
  end)

  describe("safe navigation", function()
    it("gives null for a missing property or a null value with '?'", function()
      assert.are.equal(null, eval("@pipeline()?.TriggeredByPipelineName"))
      assert.are.equal(null, eval("@pipeline().parameters.nothing?.x"))
      assert.are.equal(null, eval("@pipeline().parameters.list?[7]"))
      assert.are.equal(null, eval("@pipeline().parameters.obj?['nope']"))
    end)

    it("keeps null through the rest of the chain", function()
      assert.are.equal(null, eval("@pipeline().parameters?.missing.deeper[0].more"))
      assert.are.equal("fallback", eval("@coalesce(pipeline().parameters?.missing.x, 'fallback')"))
    end)

    it("still returns present values", function()
      assert.are.equal("one", eval("@pipeline()?.parameters?.obj?.key1"))
    end)
  end)

  describe("syntax errors", function()
    local cases = {
      { "@concat('a', 'b'", 17, "expected ',' or ')'" },
      { "@concat('a' 'b')", 13, "expected ',' or ')'" },
      { "@'unterminated", 2, "unterminated string literal" },
      { "@", 2, "expected an expression" },
      { "@pipeline().", 13, "expected a property name" },
      { "@pipeline()[0", 14, "expected ']'" },
      { "@pipeline() x", 13, "after the end of the expression" },
      { "@foo", 2, "unknown identifier 'foo'" },
      { "@12abc", 4, "after the number" },
      { "@pipeline()?x", 12, "expected '.' or '['" },
      { "text @{concat('a')", 19, "expected '}'" },
      { "text @{}", 8, "expected an expression" },
      { "@nosuch(1)", 2, "unknown function 'nosuch'" },
      { "@concat('a', nosuch())", 14, "unknown function 'nosuch'" },
      { "@add(1)", 2, "function 'add' takes 2 arguments but was given 1" },
      { "@substring('a', 1, 2, 3)", 2, "function 'substring' takes 2 to 3 arguments but was given 4" },
      { "x @{utcNow(1, 2)}", 5, "function 'utcNow' takes 0 to 1 arguments" },
      { "@concat()", 2, "takes at least 1 argument" },
    }
    for _, case in ipairs(cases) do
      it(case[1] .. " → column " .. case[2], function()
        local err = compile_error(case[1])
        assert.is_true(E.is(err))
        assert.are.equal("expression", err.kind)
        assert.are.equal("syntax", err.code)
        assert.are.equal(case[2], err.column)
        assert.are.equal(case[1], err.expression)
        assert.is_truthy(err.message:find(case[3], 1, true), err.message)
        assert.is_truthy(err.message:find(case[1], 1, true), "the message names the expression")
        assert.is_truthy(err.message:find("column " .. case[2], 1, true), "the message names the column")
      end)
    end
  end)

  describe("evaluation errors", function()
    it("name the expression and the column of the failing call", function()
      local err = eval_error("@concat('a', string(add(1, 'x')))")
      assert.is_true(E.is(err))
      assert.are.equal("expression", err.kind)
      assert.are.equal("type", err.code)
      assert.are.equal(21, err.column)
      assert.are.equal("@concat('a', string(add(1, 'x')))", err.expression)
      assert.is_truthy(err.message:find("function 'add' expects a number as argument 2 but got a string", 1, true))
      assert.is_truthy(err.message:find("column 21", 1, true))
    end)

    it("give columns inside a template", function()
      local err = eval_error("value: @{div(1, 0)}")
      assert.are.equal("evaluation", err.code)
      assert.are.equal(10, err.column)
    end)

    it("let the engine's own errors through unchanged", function()
      local err = eval_error("@activity('missing').output")
      assert.are.equal("pipeline", err.kind)
      assert.are.equal("unknown_activity", err.code)
    end)

    it("add the expression and column to expression errors raised by the scope", function()
      local s = scope { variables = function(name)
        error(E.new { kind = "expression", code = "evaluation", message = "variable '" .. name .. "' is not declared" }, 0)
      end }
      local err = eval_error("@concat('a', variables('nope'))", s)
      assert.are.equal("evaluation", err.code)
      assert.are.equal(14, err.column)
      assert.are.equal("@concat('a', variables('nope'))", err.expression)
      assert.is_truthy(err.message:find("variable 'nope' is not declared", 1, true))
      assert.is_truthy(err.message:find("column 14", 1, true))
    end)

    it("read a variable without a value as null and refuse a missing activity", function()
      assert.are.equal(null, eval("@variables('unset')"))
      local err = eval_error("@activity('gone')", scope { activity = function() return nil end })
      assert.are.equal("evaluation", err.code)
      assert.is_truthy(err.message:find("activity 'gone' is not available", 1, true))
    end)

    it("report item() outside a ForEach", function()
      local err = eval_error("@item()")
      assert.is_truthy(err.message:find("'item' is not expected at this location", 1, true))
    end)
  end)
end)

describe("expression interface", function()
  it("compiles once and evaluates against different scopes", function()
    local c = assert(expression.compile("@concat(pipeline().parameters.a, '/', item())"))
    assert.are.equal("expression", c.kind)
    local results = {}
    for i = 1, 3 do results[i] = c:eval(scope { item = function() return i end }) end
    assert.are.same({ "alpha/1", "alpha/2", "alpha/3" }, results)
  end)

  it("rejects a non-string to compile", function()
    assert.has_error(function() expression.compile(42) end)
  end)

  describe("evaluate", function()
    it("walks tables, keeps json marking and leaves the input alone", function()
      local input = O {
        url = "@concat('https://', pipeline().parameters.a)",
        count = 3, flag = false, none = null, empty = A {}, emptyObject = O {},
        list = A { "@pipeline().parameters.n", "plain", A { "@{pipeline().parameters.n}" } },
        nested = O { text = "id=@{activity('x').output.rows[0].id}" },
      }
      local out = expression.evaluate(input, scope())
      assert.are.equal("https://alpha", out.url)
      assert.are.equal(3, out.count)
      assert.are.equal(false, out.flag)
      assert.are.equal(null, out.none)
      assert.are.equal("array", json.type(out.empty))
      assert.are.equal("object", json.type(out.emptyObject))
      assert.are.equal("array", json.type(out.list))
      assert.are.equal(42, out.list[1])
      assert.are.equal("plain", out.list[2])
      assert.are.equal("42", out.list[3][1])
      assert.are.equal("id=1", out.nested.text)
      assert.are.equal("@pipeline().parameters.n", input.list[1])
      assert.are_not.equal(input, out)
    end)

    it("evaluates ADF's Expression objects", function()
      assert.are.equal(42, expression.evaluate(O { value = "@pipeline().parameters.n", type = "Expression" }, scope()))
      local out = expression.evaluate(O { a = O { type = "Expression", value = "n=@{pipeline().parameters.n}" } }, scope())
      assert.are.equal("n=42", out.a)
      -- An object that merely has a 'value' field is data.
      local data = expression.evaluate(O { value = "x", other = 1 }, scope())
      assert.are.equal("x", data.value)
      assert.are.equal(1, data.other)
    end)

    it("passes scalars through", function()
      assert.are.equal(5, expression.evaluate(5, scope()))
      assert.are.equal(null, expression.evaluate(null, scope()))
      assert.are.equal("text", expression.evaluate("text", scope()))
    end)

    it("raises syntax errors as lufa errors", function()
      local ok, err = pcall(expression.evaluate, O { a = "@concat(" }, scope())
      assert.is_false(ok)
      assert.are.equal("syntax", err.code)
    end)
  end)

  describe("check", function()
    it("lists every problem with its JSON path and column", function()
      local problems = expression.check(O {
        typeProperties = O {
          ok = "@pipeline().parameters.a",
          bad = "@concat('a'",
          list = A { "fine", "@nosuch()", O { deep = "x @{add(1)}" } },
          ["odd-name"] = "@",
        },
      }, "$")
      table.sort(problems, function(a, b) return a.path < b.path end)
      assert.are.equal(4, #problems)
      assert.are.equal("$.typeProperties.bad", problems[1].path)
      assert.are.equal(12, problems[1].column)
      assert.are.equal("$.typeProperties.list[1]", problems[2].path)
      assert.are.equal(2, problems[2].column)
      assert.is_truthy(problems[2].message:find("unknown function 'nosuch'", 1, true))
      assert.are.equal("$.typeProperties.list[2].deep", problems[3].path)
      assert.are.equal(5, problems[3].column)
      assert.are.equal("$.typeProperties['odd-name']", problems[4].path)
    end)

    it("returns an empty list when all is well", function()
      assert.are.same({}, expression.check(O { a = "@utcNow()", b = A { 1, "x" } }))
    end)
  end)

  describe("references", function()
    it("collects activity and variable names", function()
      local refs = expression.references(O {
        a = "@activity('Lookup1').output.firstRow",
        b = A { "@{activity('Copy').output.rowsCopied} rows, @{variables('v1')}" },
        c = O { value = "@concat(activity('Lookup1').status, variables('v2'))", type = "Expression" },
        d = "@activity(pipeline().parameters.a)",
      }, "$.typeProperties")
      table.sort(refs.activities)
      table.sort(refs.variables)
      assert.are.same({ "Copy", "Lookup1" }, refs.activities)
      assert.are.same({ "v1", "v2" }, refs.variables)
      local site
      for _, s in ipairs(refs.sites) do if s.name == "Copy" then site = s end end
      assert.are.equal("$.typeProperties.b[0]", site.path)
      assert.are.equal(12, site.column)
      assert.are.equal("activity", site.kind)
    end)
  end)

  describe("define", function()
    it("adds a function that expressions can call", function()
      expression.define("double", 1, 1, function(_, x) return x * 2 end)
      assert.are.equal(42, eval("@double(21)"))
      local err = compile_error("@double()")
      assert.are.equal(2, err.column)
    end)
  end)
end)

describe("expression secrets", function()
  local function secret_scope()
    return scope { pipeline = { parameters = O { key = secret("s3cr3t-value"), user = "bob" } } }
  end

  it("passes a SecureString parameter through as the same secret", function()
    local v = eval("@pipeline().parameters.key", secret_scope())
    assert.is_true(secret.is(v))
    assert.are.equal("s3cr3t-value", secret.expose(v))
  end)

  it("keeps concatenation and interpolation secret", function()
    local c = eval("@concat('Bearer ', pipeline().parameters.key)", secret_scope())
    assert.is_true(secret.is(c))
    assert.are.equal("Bearer s3cr3t-value", secret.expose(c))
    local t = eval("user=@{pipeline().parameters.user};key=@{pipeline().parameters.key}", secret_scope())
    assert.is_true(secret.is(t))
    assert.are.equal("user=bob;key=s3cr3t-value", secret.expose(t))
    assert.are.equal("<redacted>", tostring(t))
  end)

  it("keeps the results of string functions secret", function()
    local up = eval("@toUpper(pipeline().parameters.key)", secret_scope())
    assert.is_true(secret.is(up))
    assert.are.equal("S3CR3T-VALUE", secret.expose(up))
    local parts = eval("@split(pipeline().parameters.key, '-')", secret_scope())
    assert.is_true(secret.is(parts[1]))
    assert.are.equal("value", secret.expose(parts[2]))
    assert.is_true(secret.is(eval("@string(pipeline().parameters.key)", secret_scope())))
  end)

  it("computes plain facts about a secret", function()
    assert.are.equal(12, eval("@length(pipeline().parameters.key)", secret_scope()))
    assert.is_true(eval("@equals(pipeline().parameters.key, 's3cr3t-value')", secret_scope()))
    assert.is_true(eval("@startsWith(pipeline().parameters.key, 'S3')", secret_scope()))
  end)

  it("never shows a secret in an error message", function()
    local err = eval_error("@int(pipeline().parameters.key)", secret_scope())
    assert.are.equal("type", err.code)
    assert.is_falsy(err.message:find("s3cr3t", 1, true))
    assert.is_truthy(err.message:find("SecureString", 1, true))
  end)
end)
