-- Key Vault secret references against the Key Vault stand-in (scripts/emulators): lufa.keyvault's answers
-- and errors, AzureKeyVaultSecret properties of linked services resolved once per run as lufa.secret values,
-- and the values kept out of outputs, records and messages. Request counts come from the stand-in's log.

local http = require "lufa.http"
local json = require "lufa.json"
local secret = require "lufa.secret"
local aad = require "lufa.aad"
local keyvault = require "lufa.keyvault"
local linked = require "lufa.linked"
local pipeline = require "lufa.pipeline"
local util = require "tests.support.util"

local dir, info

local function control(method, path, body)
  local res = assert(http.request{ method = method, url = info.control .. path,
    headers = body and { ["Content-Type"] = "application/json" } or nil,
    body = body and json.encode(body) or nil })
  assert(res.status < 300, method .. " " .. path .. ": HTTP " .. res.status .. " " .. tostring(res.body))
  return res.body ~= "" and json.decode(res.body) or nil
end

local function vault_requests()
  local n = 0
  for _, e in ipairs(control("GET", "/requests?service=keyvault").requests) do
    if e.route == "keyvault.secret" then n = n + 1 end
  end
  return n
end

local function credential()
  return aad.client_secret{ tenant = info.aad.tenantId, client_id = info.aad.clientId,
    client_secret = secret(info.aad.clientSecret), authority = info.aad.authority }
end

local function kv_ref(name, version)
  return { type = "AzureKeyVaultSecret", store = { referenceName = "Vault", type = "LinkedServiceReference" },
    secretName = name, secretVersion = version }
end

-- A factory whose "Probe" linked service takes its key from the vault; the ProbeUse activity reads it
-- twice (two linked services sharing one secret) and outputs only its length.
local function factory_with(key_ref)
  local factory = assert(pipeline.from_table{
    linkedServices = {
      { name = "Vault", properties = { type = "AzureKeyVault", typeProperties = {
        baseUrl = info.keyvault.vaultUrl, servicePrincipalId = info.aad.clientId,
        servicePrincipalKey = { type = "SecureString", value = info.aad.clientSecret },
        tenant = info.aad.tenantId, authorityHost = info.aad.authority } } },
      { name = "Probe", properties = { type = "KvProbe", typeProperties = { key = key_ref } } },
      { name = "Probe2", properties = { type = "KvProbe", typeProperties = { key = key_ref } } },
    },
    pipelines = {
      { name = "p", properties = { activities = {
        { name = "use", type = "ProbeUse", typeProperties = {} },
      } } },
    },
  })
  factory:register("ProbeUse", { run = function(ctx)
    local a, b = ctx:linked_service("Probe"), ctx:linked_service("Probe2")
    local key = a.properties.key
    assert(secret.is(key) and secret.is(b.properties.key), "the key is a lufa.secret")
    return { length = #secret.expose(key), same = secret.expose(key) == secret.expose(b.properties.key) }
  end })
  return factory
end

describe("Key Vault secret references", function()
  setup(function()
    linked.register_type("KvProbe", { client = function(service) return service end })
    dir = util.tempdir()
    assert(os.execute(string.format("scripts/emulators/start --state '%s' --quiet --owner-pid %d >/dev/null",
      dir, util.own_pid())))
    info = assert(json.decode_file(dir .. "/emulators.json"))
  end)

  teardown(function()
    if dir then
      os.execute(string.format("scripts/emulators/stop --state '%s' >/dev/null 2>&1", dir))
      os.execute(string.format("rm -rf '%s'", dir))
    end
  end)

  before_each(function()
    aad.clear_cache()
    control("POST", "/reset")
  end)

  describe("lufa.keyvault", function()
    it("gets the current or a given version as a lufa.secret", function()
      local v1 = control("PUT", "/keyvault/secrets/api-key", { value = "first-value" })
      control("PUT", "/keyvault/secrets/api-key", { value = "second-value" })
      local kv = keyvault.client{ vault = info.keyvault.vaultUrl, credential = credential() }
      local got, id = kv:secret("api-key")
      assert.is_true(secret.is(got))
      assert.are.equal("second-value", secret.expose(got))
      assert.is_truthy(id:find("/secrets/api-key/", 1, true))
      local old = assert(kv:secret("api-key", v1.version))
      assert.are.equal("first-value", secret.expose(old))
      assert.is_falsy(tostring(old):find("first-value", 1, true), "a secret never prints its value")
    end)

    it("reports 404, 403 (no permission), 403 (disabled) and 401 (wrong audience) with the vault's codes", function()
      local kv = keyvault.client{ vault = info.keyvault.vaultUrl, credential = credential() }
      local none, err = kv:secret("missing")
      assert.is_nil(none)
      assert.are.equal("not_found", err.code)
      assert.are.equal(404, err.status)
      assert.are.equal("SecretNotFound", err.error_code)
      assert.is_truthy(err.message:find("secret 'missing'", 1, true))
      assert.is_truthy(err.message:find(info.keyvault.vaultUrl, 1, true))

      control("PUT", "/keyvault/secrets/off", { value = "hidden-value", enabled = false })
      none, err = kv:secret("off")
      assert.is_nil(none)
      assert.are.equal("disabled", err.code)
      assert.are.equal("SecretDisabled", err.inner_code)
      assert.is_falsy(err.message:find("hidden-value", 1, true))

      control("PUT", "/keyvault/secrets/guarded", { value = "guarded-value" })
      control("PUT", "/keyvault/access", { allowed = { "someone-else" } })
      none, err = kv:secret("guarded")
      assert.is_nil(none)
      assert.are.equal("forbidden", err.code)
      assert.are.equal(403, err.status)
      assert.is_truthy(err.message:find("does not have secrets get permission", 1, true))
      control("PUT", "/keyvault/access", { allowed = json.null })

      -- A token for another audience is refused with the vault's challenge.
      local wrong = { authorization = function() return credential():authorization("https://storage.azure.com/") end }
      none, err = keyvault.client{ vault = info.keyvault.vaultUrl, credential = wrong }:secret("guarded")
      assert.is_nil(none)
      assert.are.equal("unauthorized", err.code)
      assert.is_truthy(err.message:find("AKV10022", 1, true))
    end)

    it("refuses names Key Vault cannot hold without asking the vault", function()
      local kv = keyvault.client{ vault = info.keyvault.vaultUrl, credential = credential() }
      local none, err = kv:secret("bad_name")
      assert.is_nil(none)
      assert.are.equal("argument", err.code)
      assert.are.equal(0, vault_requests())
    end)
  end)

  describe("in a factory", function()
    it("resolves the reference once per run and keeps the value out of the run's output and record", function()
      control("PUT", "/keyvault/secrets/probe-key", { value = "kv-secret-value-123" })
      local factory = factory_with(kv_ref("probe-key"))
      local record = assert(factory:run("p"))
      assert.are.equal("Succeeded", record.status)
      local acts = factory:activity_runs(record.runId)
      assert.are.equal(#"kv-secret-value-123", acts[1].output.length)
      assert.is_true(acts[1].output.same)
      assert.are.equal(1, vault_requests(), "two linked services, one secret: one request per run")
      assert.is_falsy(json.encode(acts):find("kv-secret-value-123", 1, true))
      assert.is_falsy(json.encode(record):find("kv-secret-value-123", 1, true))
      -- A second run asks again.
      assert.are.equal("Succeeded", assert(factory:run("p")).status)
      assert.are.equal(2, vault_requests())
    end)

    it("fails the activity with the linked service, the secret and the vault's answer", function()
      local factory = factory_with(kv_ref("absent-key"))
      local record = assert(factory:run("p"))
      assert.are.equal("Failed", record.status)
      local message = json.encode(factory:activity_runs(record.runId)[1].error)
      assert.is_truthy(message:find("linked service 'Probe'", 1, true), message)
      assert.is_truthy(message:find("secret 'absent-key'", 1, true), message)
      assert.is_truthy(message:find("Key Vault linked service 'Vault'", 1, true), message)
      assert.is_truthy(message:find("SecretNotFound", 1, true), message)
    end)

    it("is checked at load: a store that is not a vault, a missing secretName, a missing store", function()
      local factory = assert(pipeline.from_table{
        linkedServices = {
          { name = "Vault", properties = { type = "AzureKeyVault", typeProperties = { baseUrl = "https://v.vault.azure.net" } } },
          { name = "NoUrl", properties = { type = "AzureKeyVault", typeProperties = {} } },
          { name = "Loop", properties = { type = "AzureKeyVault", typeProperties = { baseUrl = {
            type = "AzureKeyVaultSecret", store = { referenceName = "Loop", type = "LinkedServiceReference" }, secretName = "u" } } } },
          { name = "B", properties = { type = "KvProbe", typeProperties = {} } },
          { name = "Ml", properties = { type = "AzureML", typeProperties = {
            mlEndpoint = { type = "AzureKeyVaultSecret", store = { referenceName = "Vault", type = "LinkedServiceReference" }, secretName = "url" },
            apiKey = { type = "AzureKeyVaultSecret", store = { referenceName = "Vault", type = "LinkedServiceReference" }, secretName = "key" } } } },
          { name = "A", properties = { type = "KvProbe", typeProperties = {
            x = { type = "AzureKeyVaultSecret", store = { referenceName = "B", type = "LinkedServiceReference" }, secretName = "k" },
            y = { type = "AzureKeyVaultSecret", store = { referenceName = "Vault", type = "LinkedServiceReference" } },
            z = { type = "AzureKeyVaultSecret", store = { referenceName = "Vaul", type = "LinkedServiceReference" }, secretName = "k" },
          } } },
        },
        pipelines = { { name = "p", properties = { activities = {} } } },
      })
      local text = pipeline.format_problems(factory:validate())
      assert.is_truthy(text:find("typeProperties.x.store.referenceName: error: the store 'B' is a KvProbe linked service, not AzureKeyVault", 1, true), text)
      -- A property taken from Key Vault is not checked as a literal (an endpoint, a key).
      assert.is_falsy(text:find("mlEndpoint", 1, true), text)
      assert.is_falsy(text:find("baseUrl is not a string", 1, true), text)
      assert.is_truthy(text:find("typeProperties.y: error: an AzureKeyVaultSecret needs a \"secretName\" string", 1, true), text)
      assert.is_truthy(text:find("reference to a missing linked service 'Vaul' (did you mean 'Vault'?)", 1, true), text)
      assert.is_truthy(text:find("AzureKeyVault requires \"baseUrl\"", 1, true), text)
      assert.is_truthy(text:find("typeProperties.baseUrl.store.referenceName: error: an AzureKeyVaultSecret cannot take its secret from its own linked service", 1, true), text)
    end)
  end)
end)
