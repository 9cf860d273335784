--- lufa.aad.cache: the process-wide token cache, with refresh ahead of expiry and single-flight fetches.
-- One entry per key (authority, tenant, client, target, and a digest of the credential's proof so two
-- credentials with different secrets for the same client never share a token). While a fetch for a key is
-- under way, every other task asking for that key waits on the same lufa task instead of sending its own
-- request.
--
-- A token is handed out only while it has a good part of its life left: never within EXPIRY_GUARD (30 s)
-- of its expiry, so a request that takes a while still arrives with a valid token (a token handed out
-- with a second left expires on the wire and the service answers 401). Past that point the asker waits
-- for a new token. Before it, from expiry − min(refresh_margin, lifetime / 10), the first asker refreshes
-- early; if that fails, the old token, still usable, is kept. Tokens living less than SHORT_LIFETIME
-- (60 s) cannot spare 30 s: they are handed out for the first half of their life.
local lufa = require "lufa"
local clock = require "lufa.aad.clock"

local cache = {
  --- The most a token is refreshed ahead of expiry (azure-identity and MSAL use 5 minutes); a tenth of
  -- the lifetime when that is less.
  REFRESH_MARGIN = 300,
  --- After a refresh attempt, wait at least this long before the next early refresh (azure-identity: 30 s).
  REFRESH_MIN_INTERVAL = 30,
  --- Tokens living at least this long are refreshed at half-life (MSAL does so for managed identity).
  HALF_LIFE_FROM = 7200,
  --- A token is never handed out with less than this many seconds left.
  EXPIRY_GUARD = 30,
  --- Tokens living less than this are handed out, and refreshed, until half-life.
  SHORT_LIFETIME = 60,
}

local entries = {}

--- Seconds before expiry at which a token of this lifetime stops being handed out.
-- @tparam number lifetime expires_in at receipt
function cache.guard(lifetime)
  if lifetime < cache.SHORT_LIFETIME then return lifetime / 2 end
  return cache.EXPIRY_GUARD
end

--- When a freshly received token should be refreshed, in clock.now() seconds:
-- expiry − max(min(margin, lifetime / 10), guard), earlier when the service sent refresh_in, and at
-- half-life for long tokens without one.
-- @tparam table tok parsed token (`expires_in`, `refresh_in`)
-- @tparam number received clock.now() at receipt
-- @tparam table policy `refresh_margin`
function cache.refresh_at(tok, received, policy)
  local life = tok.expires_in
  local margin = math.min(policy.refresh_margin or cache.REFRESH_MARGIN, life / 10)
  local at = received + life - math.max(margin, cache.guard(life))
  if tok.refresh_in and tok.refresh_in > 0 then
    at = math.min(at, received + tok.refresh_in)
  elseif life >= cache.HALF_LIFE_FROM then
    at = math.min(at, received + life / 2)
  end
  return at
end

-- Runs the fetch in its own task, so it finishes (and fills the cache) even when the task that started
-- it is cancelled; every asker waits on that task.
local function start_fetch(entry, fetch, policy)
  entry.attempted_at = clock.now()
  local task = lufa.spawn(function()
    local ok, tok, err = pcall(fetch)
    if not ok then
      entry.pending = nil
      error(tok, 0)
    end
    if tok then
      local received = clock.now()
      entry.token, entry.expires_on = tok.token, tok.expires_on
      entry.usable_until = received + tok.expires_in - cache.guard(tok.expires_in)
      entry.refresh_at = cache.refresh_at(tok, received, policy)
    end
    entry.pending = nil
    return tok, err
  end)
  entry.pending = task
  return task
end

local function usable(entry, now)
  return entry.token ~= nil and now < entry.usable_until
end

--- Returns a token for key, fetching (once, however many tasks ask) when there is none, it is too close
-- to its expiry to be handed out, or it is due for refresh.
-- @tparam string key
-- @tparam function fetch `() -> tok | nil, err` (tok as from lufa.aad.response.parse_token)
-- @tparam[opt] table policy `refresh_margin`, `refresh_min_interval`
-- @return token (secret), expires_on (Unix seconds); or nil, err
function cache.get(key, fetch, policy)
  policy = policy or {}
  local entry = entries[key]
  if not entry then
    entry = {}
    entries[key] = entry
  end
  local now = clock.now()
  if usable(entry, now) then
    if now < entry.refresh_at then return entry.token, entry.expires_on end
    -- due for refresh but still usable: refresh at most every refresh_min_interval seconds
    local min_interval = policy.refresh_min_interval or cache.REFRESH_MIN_INTERVAL
    if not entry.pending and entry.attempted_at and now - entry.attempted_at < min_interval then
      return entry.token, entry.expires_on
    end
  end
  local task = entry.pending or start_fetch(entry, fetch, policy)
  local tok, err = task:wait()
  if tok then return tok.token, tok.expires_on end
  -- a failed early refresh keeps the token while it is still usable; a token past its guard never goes out
  if usable(entry, clock.now()) then return entry.token, entry.expires_on end
  return nil, err
end

--- Forgets every cached token (or those whose key starts with prefix).
-- @tparam[opt] string prefix
function cache.clear(prefix)
  for k, entry in pairs(entries) do
    if not prefix or k:sub(1, #prefix) == prefix then
      if not entry.pending then entries[k] = nil else entry.token = nil end
    end
  end
end

return cache
