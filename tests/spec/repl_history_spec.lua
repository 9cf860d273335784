-- lufa.repl.history: lines holding a secret never reach the history file.
local history = require "lufa.repl.history"
local secret = require "lufa.secret"

describe("which prompt lines are kept in the history", function()
  it("keeps ordinary lines", function()
    for _, line in ipairs({ "x = 1", 'print("hello")', "f = lufa.secret.new(os.getenv('KEY'))",
        "opts = {timeout = 30}", 'res.headers["content-type"]', "secret_name = nil" }) do
      assert.is_true(history.keep(line), line)
    end
  end)

  it("drops a literal passed to secret(...) or lufa.secret.new(...)", function()
    for _, line in ipairs({ 'k = secret("abc")', "k = secret 'abc'", 'k = lufa.secret.new("abc")',
        "k = require('lufa.secret').new [[abc]]", 'f(secret ( "x" ))' }) do
      assert.is_false(history.keep(line), line)
    end
  end)

  it("drops a credential option given a literal", function()
    for _, line in ipairs({ 'c = {client_secret = "x"}', "c = {password='p'}", 'c = {["account-key"] = "k"}',
        'c.accountKey = "k"', 'c = {sas_token = "sv=1"}', 'conf = {storage_connection_string = "x"}' }) do
      assert.is_false(history.keep(line), line)
    end
  end)

  it("drops text lufa.redact would hide", function()
    local s = secret("history-known-secret-77")
    assert.is_false(history.keep("x = '" .. secret.expose(s) .. "'"))
    assert.is_false(history.keep('u = "https://a.blob.core.windows.net/c?sv=2020&sig=abcdEFGH1234%3D"'))
  end)
end)
