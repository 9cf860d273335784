-- Tokens are refreshed before they expire: a token is never handed out within 30 s of its expiry (half
-- its life for tokens living under a minute), the first asker refreshes from expiry − min(5 min,
-- lifetime / 10), and concurrent askers share one refresh. Against the Azure AD stand-in with short token
-- lifetimes; the long runs move an injected clock (lufa.aad.clock) instead of waiting, so every second of
-- a token's life is asked about. Counts are the stand-in's request log, the service's view.

local lufa = require "lufa"
local aad = require "lufa.aad"
local clock = require "lufa.aad.clock"
local cache = require "lufa.aad.cache"
local secret = require "lufa.secret"
local emulators = require "tests.support.emulators"

local STORAGE = "https://storage.azure.com/"

local emu

local function token_requests()
  local out = {}
  for _, e in ipairs(emu:requests{ route = "aad.token" }) do out[#out + 1] = e end
  return out
end

local function credential(over)
  local a = emu.info.aad
  local o = { tenant = a.tenantId, client_id = a.clientId, client_secret = a.clientSecret, authority = a.authority,
    retry = { attempts = 2, base_delay = 0.01, max_delay = 0.02 } }
  for k, v in pairs(over or {}) do o[k] = v end
  return aad.client_secret(o)
end

-- A clock that only moves when told: `now` is seconds since the start, `time` the Unix time it maps to.
local virtual = {}
local function use_virtual_clock()
  virtual.t = 0
  virtual.epoch = os.time()
  clock.set{ now = function() return virtual.t end, time = function() return virtual.epoch + math.floor(virtual.t) end }
end

-- Asks for a token every `step` virtual seconds for `duration` seconds. Returns the number of distinct
-- tokens and the smallest remaining life of any token handed out (expires_on − the clock's time).
local function ask_over(cred, duration, step)
  local distinct, last, least = 0, nil, math.huge
  for t = 0, duration - 1, step do
    virtual.t = t
    local tok, expires_on = cred:token(STORAGE)
    assert(tok, expires_on)
    assert.is_true(secret.is(tok))
    least = math.min(least, expires_on - clock.time())
    if tok ~= last then distinct, last = distinct + 1, tok end
  end
  return distinct, least
end

-- How many fetches a model of the policy expects: a new token whenever the last one is due.
local function expected_fetches(duration, step, due_after)
  local n, due = 0, nil
  for t = 0, duration - 1, step do
    if not due or t >= due then n, due = n + 1, t + due_after end
  end
  return n
end

describe("lufa.aad token refresh", function()
  setup(function()
    emu = emulators.start{ token_lifetime = 60 }
  end)

  teardown(function()
    clock.set()
    if emu then emu:stop() end
  end)

  before_each(function()
    aad.clear_cache()
    emu:settings{ tokenLifetimeSeconds = 60 }
    emu:faults()
    emu:clear_requests()
    use_virtual_clock()
  end)

  after_each(function()
    clock.set()
  end)

  it("computes when a token is due and how close to expiry it may go out", function()
    assert.are.equal(30, cache.guard(60))
    assert.are.equal(30, cache.guard(3599))
    assert.are.equal(10, cache.guard(20))
    -- lifetime ≥ 300 s: a tenth of it, at most 5 minutes; shorter: the 30 s guard; under 60 s: half-life
    assert.are.equal(100 + 3599 - 300, cache.refresh_at({ expires_in = 3599 }, 100, {}))
    assert.are.equal(100 + 600 - 60, cache.refresh_at({ expires_in = 600 }, 100, {}))
    assert.are.equal(100 + 200 - 30, cache.refresh_at({ expires_in = 200 }, 100, {}))
    assert.are.equal(100 + 60 - 30, cache.refresh_at({ expires_in = 60 }, 100, {}))
    assert.are.equal(100 + 10, cache.refresh_at({ expires_in = 20 }, 100, {}))
    assert.are.equal(100 + 600, cache.refresh_at({ expires_in = 3599, refresh_in = 600 }, 100, {}))
    assert.are.equal(100 + 43200, cache.refresh_at({ expires_in = 86400 }, 100, {}))
  end)

  it("60-second tokens: over 10 minutes, none goes out with less than 30 s, one request per 30 s", function()
    local cred = credential()
    local distinct, least = ask_over(cred, 600, 1)
    assert.is_true(least >= 30, "a token went out with " .. least .. " s left")
    assert.are.equal(expected_fetches(600, 1, 30), distinct)  -- 20
    assert.are.equal(distinct, #token_requests())
  end)

  it("20-second tokens: handed out and refreshed until half-life", function()
    emu:settings{ tokenLifetimeSeconds = 20 }
    local distinct, least = ask_over(credential(), 100, 1)
    assert.is_true(least >= 10, "a token went out with " .. least .. " s left")
    assert.are.equal(expected_fetches(100, 1, 10), distinct)  -- 10
    assert.are.equal(distinct, #token_requests())
  end)

  it("10-minute and 1-hour tokens: refreshed a tenth of their life, at most 5 minutes, ahead", function()
    emu:settings{ tokenLifetimeSeconds = 600 }
    local distinct, least = ask_over(credential(), 1800, 7)
    assert.is_true(least >= 60, "a token went out with " .. least .. " s left")
    assert.are.equal(expected_fetches(1800, 7, 540), distinct)  -- 4
    assert.are.equal(distinct, #token_requests())
    aad.clear_cache()
    emu:clear_requests()
    emu:settings{ tokenLifetimeSeconds = 3600 }
    distinct, least = ask_over(credential(), 7200, 60)
    assert.is_true(least >= 300, "a token went out with " .. least .. " s left")
    assert.are.equal(expected_fetches(7200, 60, 3300), distinct)  -- 3
    assert.are.equal(distinct, #token_requests())
  end)

  it("a failed early refresh keeps the usable token; past the guard the error is returned, not the token", function()
    emu:settings{ tokenLifetimeSeconds = 600 }
    local cred = credential()
    local t1 = assert(cred:token(STORAGE))
    emu:faults{ seed = 1, rules = { { route = "aad.token.*", sequence = { { type = "status", status = 503 } },
      ["repeat"] = true } } }
    virtual.t = 545  -- due for refresh (540), usable until 570
    local t2, e2 = cred:token(STORAGE)
    assert.are.equal(t1, t2)
    assert.is_true(e2 - clock.time() >= 30)
    assert.are.equal(3, #token_requests())  -- the first fetch, then two attempts of the refresh
    virtual.t = 560  -- within the 30 s minimum interval: no new attempt
    assert.are.equal(t1, (cred:token(STORAGE)))
    assert.are.equal(3, #token_requests())
    virtual.t = 571  -- 29 s left: never handed out
    local t3, err = cred:token(STORAGE)
    assert.is_nil(t3)
    assert.are.equal(503, err.status)
    emu:faults()
    local t4, e4 = cred:token(STORAGE)
    assert.is_true(secret.is(t4))
    assert.are_not.equal(t1, t4)
    assert.is_true(e4 - clock.time() >= 599)
  end)

  it("askers past the guard at the same time share one refresh", function()
    local cred = credential()
    local t1 = assert(cred:token(STORAGE))
    virtual.t = 31
    local tasks = {}
    for i = 1, 25 do tasks[i] = lufa.spawn(function() return cred:token(STORAGE) end) end
    local first
    for i, task in ipairs(tasks) do
      local tok, expires_on = task:wait()
      assert.is_true(secret.is(tok), tostring(expires_on))
      first = first or tok
      assert.are.equal(first, tok, "task " .. i)
    end
    assert.are_not.equal(t1, first)
    assert.are.equal(2, #token_requests())
  end)

  it("on the real clock: 4-second tokens asked for 6 s are never handed out past half-life", function()
    clock.set()
    emu:settings{ tokenLifetimeSeconds = 4 }
    local cred = credential()
    local distinct, last = 0, nil
    local deadline = lufa.now() + 6
    while lufa.now() < deadline do
      local tok, expires_on = assert(cred:token(STORAGE))
      -- expires_on is whole seconds from os.time(): allow the second it was rounded down in
      assert.is_true(expires_on - os.time() >= 2 - 1, "a token went out with " .. (expires_on - os.time()) .. " s left")
      if tok ~= last then distinct, last = distinct + 1, tok end
      lufa.sleep(0.05)
    end
    assert.is_true(distinct >= 3 and distinct <= 4, "tokens fetched: " .. distinct)
    assert.are.equal(distinct, #token_requests())
  end)
end)
