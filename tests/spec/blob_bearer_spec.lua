-- lufa.blob with Azure AD bearer tokens (lufa.aad against the AAD emulator) over HTTPS, against the Blob
-- Storage emulator started with OAuth enabled; and Shared Key over the same HTTPS endpoint.
local blob = require "lufa.blob"
local aad = require "lufa.aad"
local secret = require "lufa.secret"
local S = require "tests.spec.blob_support"

describe("lufa.blob with bearer tokens over HTTPS", function()
  local state, env

  setup(function()
    state, env = S.start_emulators(true)
  end)

  teardown(function()
    S.stop_emulators(state)
  end)

  local function credential(client_secret)
    return aad.client_secret{ tenant = env.LUFA_EMU_TENANT_ID, client_id = env.LUFA_EMU_CLIENT_ID,
      client_secret = client_secret or secret(env.LUFA_EMU_CLIENT_SECRET), authority = env.LUFA_EMU_AAD_AUTHORITY,
      ca_file = env.LUFA_EMU_CA_FILE, retry = { attempts = 1 } }
  end

  it("creates a container, writes, reads, lists and deletes with a token", function()
    local c = assert(blob.client{ endpoint = env.LUFA_EMU_BLOB_ENDPOINT, credential = credential(),
      ca_file = env.LUFA_EMU_CA_FILE })
    local box = c:container("bearer")
    assert.is_true(box:create())
    local b = box:blob("dir/token.txt")
    assert(b:put("sent with a bearer token"))
    assert.are.equal("sent with a bearer token", (b:get()))
    local listed = assert(box:list{})
    assert.are.equal("dir/token.txt", listed.blobs[1].name)
    assert.is_true(b:delete())
    assert.is_true(box:delete())
  end)

  it("surfaces a token failure as a blob error without the secret", function()
    local c = assert(blob.client{ endpoint = env.LUFA_EMU_BLOB_ENDPOINT, credential = credential(secret("wrong-secret")),
      ca_file = env.LUFA_EMU_CA_FILE })
    local ok, err = c:container("bearer"):exists()
    assert.is_nil(ok)
    assert.are.equal("blob", err.kind)
    assert.are.equal("auth", err.code)
    assert.are.equal("aad", err.cause.kind)
    assert.is_nil(tostring(err):find("wrong-secret", 1, true))
  end)

  it("is refused by the service without a token, and Shared Key works over HTTPS too", function()
    local shared = assert(blob.client{ connection_string = env.LUFA_EMU_STORAGE_CONNECTION_STRING,
      ca_file = env.LUFA_EMU_CA_FILE })
    local box = shared:container("over-tls")
    assert.is_true(box:create())
    assert(box:blob("k"):put("shared key over TLS"))
    assert.are.equal("shared key over TLS", (box:blob("k"):get()))
    -- a credential whose "token" the service cannot accept
    local fake = { authorization = function() return secret("Bearer not-a-jwt") end }
    local c = assert(blob.client{ endpoint = env.LUFA_EMU_BLOB_ENDPOINT, credential = fake, ca_file = env.LUFA_EMU_CA_FILE,
      retry = { attempts = 1 } })
    local body, err = c:container("over-tls"):blob("k"):get()
    assert.is_nil(body)
    assert.are.equal(403, err.status)
    assert.is_nil(tostring(err):find("not-a-jwt", 1, true))
  end)
end)
