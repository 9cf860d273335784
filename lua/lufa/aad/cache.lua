--- lufa.aad.cache: the process-wide token cache, with refresh ahead of expiry and single-flight fetches.
-- One entry per key (authority, tenant, client, target, and a digest of the credential's proof so two
-- credentials with different secrets for the same client never share a token). While a fetch for a key is
-- under way, every other task asking for that key waits on the same lufa task instead of sending its own
-- request.
local lufa = require "lufa"

local cache = {
  --- Refresh when this many seconds or fewer remain (azure-identity and MSAL use 5 minutes).
  REFRESH_MARGIN = 300,
  --- After a refresh attempt, wait at least this long before the next early refresh (azure-identity: 30 s).
  REFRESH_MIN_INTERVAL = 30,
  --- Tokens living at least this long are refreshed at half-life (MSAL does so for managed identity).
  HALF_LIFE_FROM = 7200,
}

local entries = {}

--- When a freshly received token should be refreshed, in lufa.now() seconds.
-- min(expiry - margin, receipt + refresh_in); half-life for long tokens without a refresh_in hint.
-- @tparam table tok parsed token (`expires_in`, `refresh_in`)
-- @tparam number received lufa.now() at receipt
-- @tparam table policy `refresh_margin`
function cache.refresh_at(tok, received, policy)
  local margin = policy.refresh_margin or cache.REFRESH_MARGIN
  local at = received + tok.expires_in - margin
  if tok.refresh_in and tok.refresh_in > 0 then
    at = math.min(at, received + tok.refresh_in)
  elseif tok.expires_in >= cache.HALF_LIFE_FROM then
    at = math.min(at, received + tok.expires_in / 2)
  end
  return at
end

-- Runs the fetch in its own task, so it finishes (and fills the cache) even when the task that started
-- it is cancelled; every asker waits on that task.
local function start_fetch(entry, fetch, policy)
  entry.attempted_at = lufa.now()
  local task = lufa.spawn(function()
    local ok, tok, err = pcall(fetch)
    if not ok then
      entry.pending = nil
      error(tok, 0)
    end
    if tok then
      local received = lufa.now()
      entry.token, entry.expires_on = tok.token, tok.expires_on
      entry.expires_at = received + tok.expires_in
      entry.refresh_at = cache.refresh_at(tok, received, policy)
    end
    entry.pending = nil
    return tok, err
  end)
  entry.pending = task
  return task
end

local function valid(entry, now)
  return entry.token ~= nil and now < entry.expires_at
end

--- Returns a token for key, fetching (once, however many tasks ask) when there is none, it has expired,
-- or it is due for refresh.
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
  local now = lufa.now()
  if valid(entry, now) then
    if now < entry.refresh_at then return entry.token, entry.expires_on end
    -- due for refresh but still valid: refresh at most every refresh_min_interval seconds
    local min_interval = policy.refresh_min_interval or cache.REFRESH_MIN_INTERVAL
    if not entry.pending and entry.attempted_at and now - entry.attempted_at < min_interval then
      return entry.token, entry.expires_on
    end
  end
  local task = entry.pending or start_fetch(entry, fetch, policy)
  local tok, err = task:wait()
  if tok then return tok.token, tok.expires_on end
  -- a failed early refresh keeps the token that is still valid
  if valid(entry, lufa.now()) then return entry.token, entry.expires_on end
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
