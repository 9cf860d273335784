--- lufa.blob: Azure Blob Storage (and its local emulator) for lufa scripts.
--- Clients come from a connection string, an account name and key, a SAS URL, or an Azure AD credential.
--- Runtime failures return `nil, err` with `err.kind == "blob"`, `err.code` (the service's code such as
--- "BlobNotFound", or "timeout", "file", "connection_string", ...), `err.status` and `err.request_id`.
--- Misuse (a wrong argument type, an invalid name) raises. Keys, signatures and tokens never appear in errors.
--- See docs/api/blob.md.
---
--- Example:
--- ```lua fragment
--- local blob = require "lufa.blob"
--- local client = assert(blob.client(secret(os.getenv("AZURE_STORAGE_CONNECTION_STRING"))))
--- local models = client:container("models")
--- assert(models:create { exist_ok = true })
--- assert(models:blob("churn/model.ilearner"):put({ file = "out/model.ilearner" }, { overwrite = true }))
--- for _, b in ipairs(assert(models:list { prefix = "churn/" }).blobs) do print(b.name, b.size) end
--- ```
local names = require "lufa.blob.names"
local E = require "lufa.error"
local secret = require "lufa.secret"
local crypto = require "lufa.crypto"
local xml = require "lufa.core.xml"
local auth = require "lufa.blob.auth"
local connection = require "lufa.blob.connection"
local transport = require "lufa.blob.transport"
local transfer = require "lufa.blob.transfer"
local options = require "lufa.options"
local progress = require "lufa.progress"

---@class lufa.blob.Defaults
---@field block_size integer bytes per block (upload), 8 MiB
---@field range_size integer bytes per ranged read (download), 16 MiB
---@field concurrency integer blocks or ranges in flight per transfer, 4
---@field single_put_max integer files up to this size go up in one Put Blob, 16 MiB
---@field connect_timeout number seconds, 30
---@field stall_timeout number seconds without a byte before a transfer is abandoned (and retried), 60
---@field resource string the Azure AD token audience, "https://storage.azure.com/"
---@field retry lufa.http.RetryPolicy attempts 4, base_delay 0.5, max_delay 30

---@class lufa.blob
---@field VERSION string the x-ms-version sent
---@field defaults lufa.blob.Defaults defaults for every new client (each may be overridden per client or per call)
local blob = {
  VERSION = auth.VERSION,
  --- Defaults for every new client (each may be overridden per client or per call).
  defaults = {
    block_size = 8 * 1024 * 1024,        -- bytes per block (upload)
    range_size = 16 * 1024 * 1024,       -- bytes per ranged read (download)
    concurrency = 4,                     -- blocks or ranges in flight per transfer
    single_put_max = 16 * 1024 * 1024,   -- files up to this size go up in one Put Blob
    connect_timeout = 30,
    stall_timeout = 60,                  -- seconds without a byte before a transfer is abandoned (and retried)
    resource = "https://storage.azure.com/",
    retry = { attempts = 4, base_delay = 0.5, max_delay = 30 },
  },
}

--- An account client (`blob.client`).
---@class lufa.blob.Client
---@field endpoint string the account's endpoint URL

--- A container handle (`client:container`).
---@class lufa.blob.Container
---@field name string the container's name
---@field client lufa.blob.Client

--- A blob handle (`container:blob`).
---@class lufa.blob.Blob
---@field name string the blob's name
---@field container lufa.blob.Container

---@class lufa.blob.SasOptions
---@field permissions string letters: account "rwdxftlacup", container "racwdxlt", blob "racwdxtme"
---@field expiry number|string seconds from now, or ISO-8601 UTC
---@field start? number|string seconds from now (negative: in the past) or ISO-8601 UTC
---@field protocol? string "https" or "https,http"
---@field ip? string an address or range
---@field resource_types? string account SAS: default "sco"
---@field identifier? string container and blob SAS: a stored access policy
---@field content_type? string blob SAS: response override
---@field content_disposition? string blob SAS: response override
---@field cache_control? string blob SAS: response override
---@field content_encoding? string blob SAS: response override
---@field content_language? string blob SAS: response override

---@class lufa.blob.Item
---@field name string
---@field size integer
---@field content_type? string
---@field content_md5? string
---@field etag string
---@field last_modified string
---@field metadata? table<string, string>

---@class lufa.blob.Page
---@field blobs lufa.blob.Item[]
---@field prefixes string[] with a delimiter: the "folders", e.g. "dir/"
---@field next_marker? string give it as `marker` for the next page

---@class lufa.blob.Properties
---@field size integer
---@field content_type? string
---@field content_md5? string
---@field etag string
---@field last_modified string
---@field blob_type? string
---@field metadata? table<string, string>

local Client, Container, Blob = {}, {}, {}
Client.__index, Container.__index, Blob.__index = Client, Container, Blob
Client.__name, Container.__name, Blob.__name = "lufa.blob.client", "lufa.blob.container", "lufa.blob.blob"

local function argerror(n, fname, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3)
end

local function is_path_style(origin)
  local host, port = origin:match("^%a+://%[?([^/%]]-)%]?:?(%d*)$")
  if not host then host = origin:match("^%a+://([^/:]+)") end
  if host and (host:match("^%d+%.%d+%.%d+%.%d+$") or host:find(":", 1, true)) then return true end
  port = tonumber(origin:match(":(%d+)$"))
  if port and ((port >= 10000 and port <= 10004) or (port >= 10100 and port <= 10104) or (port >= 11000 and port <= 11004)
      or (port >= 11100 and port <= 11104)) then
    return true
  end
  return false
end

-- Splits an endpoint URL into origin and path prefix.
local function split_endpoint(endpoint)
  local origin, path = endpoint:match("^(%a[%w+.-]*://[^/]+)(.*)$")
  return origin, (path:gsub("/$", ""))
end

local function new_client(settings, o)
  local c = setmetatable({}, Client)
  c.endpoint = settings.endpoint
  c.origin, c.base_path = split_endpoint(settings.endpoint)
  c.account = settings.account
  c.key, c.sas_token, c.credential = settings.key, settings.sas, settings.credential
  if c.key and not c.account then error("bad blob client: an account name is needed with a key", 3) end
  c.sas_container, c.sas_blob = settings.sas_container, settings.sas_blob
  local d = blob.defaults
  c.version = o.version or d.version or auth.VERSION
  c.block_size = o.block_size or d.block_size
  c.range_size = o.range_size or d.range_size
  c.concurrency = o.concurrency or d.concurrency
  c.single_put_max = o.single_put_max or d.single_put_max
  c.connect_timeout = o.connect_timeout or d.connect_timeout
  c.stall_timeout = o.stall_timeout or d.stall_timeout
  c.resource = o.resource or d.resource
  c.ca_file, c.tls_verify = o.ca_file, o.tls_verify
  local r = o.retry or {}
  c.retry = { attempts = r.attempts or d.retry.attempts, base_delay = r.base_delay or d.retry.base_delay,
    max_delay = r.max_delay or d.retry.max_delay }
  if type(c.block_size) ~= "number" or c.block_size < 1 then error("bad blob client option 'block_size'", 3) end
  if type(c.concurrency) ~= "number" or c.concurrency < 1 then error("bad blob client option 'concurrency'", 3) end
  return c
end

-- Client settings from a SAS URL: the account endpoint, the token, and the container/blob it names.
local function from_sas_url(url)
  if secret.is(url) then url = secret.expose(url) end
  if type(url) ~= "string" then return nil, "sas_url must be a string or a lufa.secret" end
  local base, query = url:match("^([^?#]*)%?([^#]*)$")
  if not base or not query:find("sig=", 1, true) then return nil, "sas_url carries no SAS (no sig= in its query)" end
  local ok, why = connection.check_endpoint(base)
  if not ok then return nil, "sas_url " .. why end
  local origin, path = base:match("^(%a[%w+.-]*://[^/]+)(.*)$")
  local segments = {}
  for s in path:gmatch("[^/]+") do segments[#segments + 1] = s end
  local account
  local function unescape(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end
  if is_path_style(origin) then
    account = table.remove(segments, 1)
    if not account then return nil, "sas_url names no account (expected http://host:port/account/...)" end
    origin = origin .. "/" .. account
  else
    account = origin:match("^%a+://([%w-]+)%.")
  end
  local settings = { endpoint = origin, account = account, sas = secret(query) }
  if segments[1] then settings.sas_container = unescape(segments[1]) end
  if segments[2] then settings.sas_blob = unescape(table.concat(segments, "/", 2)) end
  return settings
end

local CLIENT_OPTIONS = { "connection_string", "sas_url", "endpoint", "account", "key", "sas", "credential",
  "version", "block_size", "concurrency", "single_put_max", "range_size", "connect_timeout", "stall_timeout", "retry",
  "ca_file", "tls_verify", "resource" }
local LIST_OPTIONS = { "prefix", "delimiter", "page_size", "marker", "include" }
local SAS_OPTIONS = { "permissions", "expiry", "start", "protocol", "ip", "identifier" }
local BLOB_SAS_OPTIONS = { "permissions", "expiry", "start", "protocol", "ip", "identifier", "content_type",
  "content_disposition", "cache_control", "content_encoding", "content_language" }

--- Creates a client; makes no request. `spec` is a connection string (string or secret), or a table:
--- `{account=, key=, endpoint=}`, `{sas_url=}`, `{endpoint=, sas=}`, `{endpoint=, credential=}` (a lufa.aad
--- credential; HTTPS only), or `{connection_string=}`; plus options `version`, `block_size`, `concurrency`,
--- `single_put_max`, `range_size`, `connect_timeout`, `stall_timeout`, `retry = {attempts, base_delay,
--- max_delay}`, `ca_file`, `tls_verify`, `resource` (token audience).
--- Errors: `nil, err` (`err.code` "connection_string" or "config"); raises on a spec of the wrong type.
---@param spec string|lufa.secret|table
---@return lufa.blob.Client|nil client
---@return lufa.error? err
function blob.client(spec)
  if type(spec) == "string" or secret.is(spec) then spec = { connection_string = spec } end
  if type(spec) ~= "table" then argerror(1, "client", "connection string or table expected, got " .. type(spec)) end
  options.check(spec, CLIENT_OPTIONS, "blob.client", 2)
  if spec.retry ~= nil then options.check(spec.retry, { "attempts", "base_delay", "max_delay" }, "blob.client (retry)", 2) end
  local function bad(fmt, ...)
    return nil, E.new{ kind = "blob", code = "config", message = "blob client: " .. fmt:format(...) }
  end
  local settings
  if spec.connection_string then
    local s, err = connection.parse(spec.connection_string)
    if not s then return nil, err end
    settings = s
  elseif spec.sas_url then
    local s, why = from_sas_url(spec.sas_url)
    if not s then return bad("%s", why) end
    settings = s
  else
    local endpoint = spec.endpoint
    if endpoint == nil then
      if not spec.account then return bad("give a connection string, sas_url, endpoint or account") end
      endpoint = "https://" .. spec.account .. ".blob.core.windows.net"
    end
    local ep, why = connection.check_endpoint(endpoint)
    if not ep then return bad("endpoint %s", why) end
    settings = { endpoint = ep, account = spec.account }
    if spec.key ~= nil then
      local key, kwhy = connection.decode_key(spec.key)
      if not key then return bad("key %s (key=<redacted>)", kwhy) end
      settings.key = key
    end
    if spec.sas ~= nil then
      local tok = secret.is(spec.sas) and secret.expose(spec.sas) or spec.sas
      if type(tok) ~= "string" or not tok:find("sig=", 1, true) then return bad("sas must be a SAS token holding sig=") end
      settings.sas = secret((tok:gsub("^%?", "")))
    end
    if spec.credential ~= nil then
      if type(spec.credential) ~= "table" or type(spec.credential.authorization) ~= "function" then
        argerror(1, "client", "credential must have an :authorization(resource) method")
      end
      if not ep:match("^[Hh][Tt][Tt][Pp][Ss]://") then
        return bad("bearer tokens are only sent over HTTPS (endpoint is %s)", ep)
      end
      settings.credential = spec.credential
    end
    local n = (settings.key and 1 or 0) + (settings.sas and 1 or 0) + (settings.credential and 1 or 0)
    if n > 1 then return bad("give one of key, sas and credential") end
    if settings.key and not settings.account then return bad("account is needed with key") end
    if not settings.account then settings.account = ep:match("^%a+://([%w-]+)%.blob%.") end
  end
  if not settings.account and settings.key then return bad("cannot tell the account name") end
  return new_client(settings, spec)
end

--- An account SAS for the blob service (needs the account key).
--- Errors: raises on bad options or a client without a key.
---@param o lufa.blob.SasOptions `permissions` (letters of "rwdxftlacup"), `expiry`, `start`, `protocol`, `ip`, `resource_types`
---@return lufa.secret url the account URL with the SAS (`endpoint/?sv=...`)
function Client:sas(o)
  if not self.key then error("an account SAS needs a client with an account key", 2) end
  if type(o) ~= "table" then argerror(1, "sas", "table expected") end
  options.check(o, { "permissions", "expiry", "start", "protocol", "ip", "resource_types" }, "client:sas", 2)
  local tok = auth.account_sas{ key = self.key, account = self.account, permissions = o.permissions,
    expiry = o.expiry, start = o.start, protocol = o.protocol, ip = o.ip, resource_types = o.resource_types,
    version = self.version }
  return secret(self.endpoint .. "/?") .. tok
end

--- Lists the containers of the account.
--- Errors: `nil, err`.
---@async
---@param o? {prefix?: string}
---@return {name: string, etag: string, last_modified: string}[]|nil containers
---@return lufa.error? err
function Client:containers(o)
  o = options.check(o or {}, { "prefix" }, "client:containers", 2)
  local out, marker = {}, nil
  repeat
    local q = { { "comp", "list" } }
    if o.prefix then q[#q + 1] = { "prefix", o.prefix } end
    if marker then q[#q + 1] = { "marker", marker } end
    local res, err = transport.send(self, { op = "List Containers", method = "GET", query = q, ok = { [200] = true } })
    if not res then return nil, err end
    local root, perr = xml.parse(res.body, "List Containers response")
    if not root then return nil, E.new{ kind = "blob", code = "bad_response", message = perr.message } end
    marker = nil
    for _, el in ipairs(root) do
      if el.tag == "Containers" then
        for _, c in ipairs(el) do
          local item = {}
          for _, f in ipairs(c) do
            if f.tag == "Name" then item.name = f.text
            elseif f.tag == "Properties" then
              for _, p in ipairs(f) do
                if p.tag == "Etag" then item.etag = p.text elseif p.tag == "Last-Modified" then item.last_modified = p.text end
              end
            end
          end
          out[#out + 1] = item
        end
      elseif el.tag == "NextMarker" and el.text ~= "" then
        marker = el.text
      end
    end
  until not marker
  return out
end

local function valid_container_name(name)
  return (names.container(name))
end

--- A container handle (no request is made).
--- Errors: raises on an invalid name.
---@param name? string 3-63 characters of a-z, 0-9 and '-'; may be omitted for a client made from a container or blob SAS URL
---@return lufa.blob.Container container
function Client:container(name)
  name = name or self.sas_container
  if type(name) ~= "string" then argerror(1, "container", "string expected, got " .. type(name)) end
  if not valid_container_name(name) then
    argerror(1, "container", ("'%s' is not a valid container name (3-63 characters of a-z, 0-9 and '-', "
      .. "starting with a letter or digit, no '--')"):format(name))
  end
  return setmetatable({ client = self, name = name }, Container)
end

local function op(self, name, method, query, ok, extra)
  local req = { op = name, method = method, container = self.name, query = query, ok = ok }
  for k, v in pairs(extra or {}) do req[k] = v end
  return transport.send(self.client, req)
end

--- Creates the container.
--- Errors: `nil, err` (`ContainerAlreadyExists`, ...).
---@async
---@param o? {exist_ok?: boolean} `exist_ok`: an existing container is not an error
---@return true|nil ok
---@return lufa.error? err
function Container:create(o)
  if o ~= nil then options.check(o, { "exist_ok" }, "container:create", 2) end
  local res, err = op(self, "Create Container", "PUT", { { "restype", "container" } }, { [201] = true })
  if not res then
    if o and o.exist_ok and err.code == "ContainerAlreadyExists" then return true end
    return nil, err
  end
  return true
end

--- Deletes the container (and every blob in it).
--- Errors: `nil, err` (`ContainerNotFound`, ...).
---@async
---@return true|nil ok
---@return lufa.error? err
function Container:delete()
  local res, err = op(self, "Delete Container", "DELETE", { { "restype", "container" } }, { [202] = true },
    { gone_ok = true })
  if not res then return nil, err end
  return true
end

--- Whether the container exists.
--- Errors: `nil, err`.
---@async
---@return boolean|nil exists
---@return lufa.error? err
function Container:exists()
  local res, err = op(self, "Get Container Properties", "HEAD", { { "restype", "container" } },
    { [200] = true, [404] = true })
  if not res then return nil, err end
  return res.status == 200
end

local PROPERTY_FIELDS = { ["Content-Length"] = "size", ["Content-Type"] = "content_type",
  ["Content-MD5"] = "content_md5", ["Etag"] = "etag", ["Last-Modified"] = "last_modified",
  ["Creation-Time"] = "created", ["BlobType"] = "blob_type", ["AccessTier"] = "access_tier",
  ["Content-Encoding"] = "content_encoding", ["LeaseState"] = "lease_state" }

local function blob_item(el)
  local item = { metadata = {} }
  for _, f in ipairs(el) do
    if f.tag == "Name" then
      item.name = f.text
    elseif f.tag == "Properties" then
      for _, p in ipairs(f) do
        local key = PROPERTY_FIELDS[p.tag]
        if key and p.text ~= "" then item[key] = key == "size" and tonumber(p.text) or p.text end
      end
    elseif f.tag == "Metadata" then
      for _, m in ipairs(f) do item.metadata[m.tag] = m.text end
    end
  end
  return item
end

--- Lists one page of blobs.
--- Errors: `nil, err`.
---@async
---@param o? {prefix?: string, delimiter?: string, page_size?: integer, marker?: string, include?: string} `page_size` 1-5000, `marker` from the previous page, `include` e.g. "metadata"
---@return lufa.blob.Page|nil page
---@return lufa.error? err
function Container:list_page(o)
  o = o or {}
  if type(o) ~= "table" then argerror(1, "list_page", "table expected") end
  options.check(o, LIST_OPTIONS, "container:list_page", 2)
  local q = { { "restype", "container" }, { "comp", "list" } }
  if o.prefix then q[#q + 1] = { "prefix", o.prefix } end
  if o.delimiter then q[#q + 1] = { "delimiter", o.delimiter } end
  if o.marker then q[#q + 1] = { "marker", o.marker } end
  if o.page_size then
    if math.type(o.page_size) ~= "integer" or o.page_size < 1 or o.page_size > 5000 then
      argerror(1, "list", "page_size must be an integer from 1 to 5000")
    end
    q[#q + 1] = { "maxresults", tostring(o.page_size) }
  end
  if o.include then q[#q + 1] = { "include", o.include } end
  local res, err = op(self, "List Blobs", "GET", q, { [200] = true })
  if not res then return nil, err end
  local root, perr = xml.parse(res.body, "List Blobs response")
  if not root or root.tag ~= "EnumerationResults" then
    return nil, E.new{ kind = "blob", code = "bad_response", container = self.name,
      message = perr and perr.message or "List Blobs response: expected <EnumerationResults>" }
  end
  local page = { blobs = {}, prefixes = {} }
  for _, el in ipairs(root) do
    if el.tag == "Blobs" then
      for _, b in ipairs(el) do
        if b.tag == "Blob" then
          page.blobs[#page.blobs + 1] = blob_item(b)
        elseif b.tag == "BlobPrefix" then
          for _, f in ipairs(b) do
            if f.tag == "Name" then page.prefixes[#page.prefixes + 1] = f.text end
          end
        end
      end
    elseif el.tag == "NextMarker" and el.text ~= "" then
      page.next_marker = el.text
    end
  end
  return page
end

--- Iterates over pages of blobs: `for page, err in container:pages{prefix=, page_size=} do ... end`.
--- Errors: a failure yields `false, err` once and then ends the loop.
---@param o? {prefix?: string, delimiter?: string, page_size?: integer, marker?: string, include?: string} as for `list_page`
---@return function iterator each call gives the next lufa.blob.Page, or false and the error
function Container:pages(o)
  o = options.check(o or {}, LIST_OPTIONS, "container:pages", 2)
  local marker, finished = o.marker, false
  return function()
    if finished then return nil end
    local q = {}
    for k, v in pairs(o) do q[k] = v end
    q.marker = marker
    local page, err = self:list_page(q)
    if not page then
      finished = true
      return false, err
    end
    marker = page.next_marker
    finished = marker == nil
    return page
  end
end

--- Lists every blob (following markers to the end).
--- Errors: `nil, err`.
---@async
---@param o? {prefix?: string, delimiter?: string, page_size?: integer, include?: string} as for `list_page`
---@return lufa.blob.Page|nil list `blobs` and `prefixes` of every page
---@return lufa.error? err
function Container:list(o)
  if o ~= nil then options.check(o, LIST_OPTIONS, "container:list", 2) end
  local all = { blobs = {}, prefixes = {} }
  for page, err in self:pages(o) do
    if not page then return nil, err end
    table.move(page.blobs, 1, #page.blobs, #all.blobs + 1, all.blobs)
    table.move(page.prefixes, 1, #page.prefixes, #all.prefixes + 1, all.prefixes)
  end
  return all
end

--- A service SAS for the container.
--- Errors: raises on bad options or a client without a key.
---@param o lufa.blob.SasOptions `permissions` (letters of "racwdxlt"), `expiry`, `start`, `protocol`, `ip`, `identifier`
---@return lufa.secret url the container URL with the SAS
function Container:sas(o)
  local c = self.client
  if not c.key then error("a service SAS needs a client with an account key", 2) end
  if type(o) ~= "table" then argerror(1, "sas", "table expected") end
  options.check(o, SAS_OPTIONS, "container:sas", 2)
  local tok = auth.service_sas{ key = c.key, account = c.account, container = self.name, permissions = o.permissions,
    expiry = o.expiry, start = o.start, protocol = o.protocol, ip = o.ip, identifier = o.identifier,
    version = c.version }
  return secret(c.origin .. transport.path(c, self.name) .. "?") .. tok
end

--- A blob handle (no request is made).
--- Errors: raises on an invalid name.
---@param name? string 1-1024 characters; may be omitted for a client made from a blob SAS URL
---@return lufa.blob.Blob blob
function Container:blob(name)
  name = name or (self.name == self.client.sas_container and self.client.sas_blob or nil)
  if type(name) ~= "string" then argerror(1, "blob", "string expected, got " .. type(name)) end
  if #name < 1 or #name > 1024 then argerror(1, "blob", "blob names have 1 to 1024 characters") end
  return setmetatable({ client = self.client, container = self, name = name }, Blob)
end

local function blob_op(self, req)
  req.container, req.blob = self.container.name, self.name
  return transport.send(self.client, req)
end

-- Headers for content type, metadata and overwrite protection.
local function content_headers(opts, for_block_list)
  local h = {}
  if opts.content_type then h["x-ms-blob-content-type"] = opts.content_type end
  if opts.metadata then
    if type(opts.metadata) ~= "table" then error("bad put option 'metadata' (table expected)", 4) end
    for k, v in pairs(opts.metadata) do
      if type(k) ~= "string" or not k:match("^[a-z][a-z0-9]*$") then
        error(("bad metadata name '%s' (lower-case letters and digits, starting with a letter)"):format(tostring(k)), 4)
      end
      if type(v) ~= "string" or v:find("[\r\n]") or v ~= v:match("^%s*(.-)%s*$") then
        error(("bad metadata value for '%s' (a single-line string without surrounding spaces)"):format(k), 4)
      end
      h["x-ms-meta-" .. k] = v
    end
  end
  if opts.overwrite == false then h["If-None-Match"] = "*" end
  if not for_block_list then h["x-ms-blob-type"] = "BlockBlob" end
  return h
end

local function file_size(path)
  local f, why = io.open(path, "rb")
  if not f then return nil, why end
  local _, rerr = f:read(0)  -- opening a directory succeeds; reading it does not
  if rerr then
    f:close()
    return nil, path .. ": " .. rerr
  end
  local size, serr = f:seek("end")
  f:close()
  if not size then return nil, serr end
  return size
end

local function put_result(res, size)
  return { etag = res.headers["etag"], last_modified = res.headers["last-modified"],
    content_md5 = res.headers["content-md5"], size = size, request_id = res.headers["x-ms-request-id"] }
end

local PUT_OPTIONS = { "content_type", "metadata", "overwrite", "progress", "block_size", "concurrency",
  "single_put_max", "md5" }
local GET_OPTIONS = { "file", "progress", "range_size", "concurrency", "verify_md5" }

-- The tracker of a put or get; its bar (if any) ends when the call returns, however it returns.
local function tracker_for(self, opts, total)
  local p = opts.progress
  if p ~= nil and type(p) ~= "boolean" and type(p) ~= "function" then
    error("bad option 'progress' (true or a function expected, got " .. type(p) .. ")", 3)
  end
  local t = progress.tracker(opts.progress, { name = self.name, total = total })
  return t, setmetatable({}, { __close = function() t:finish() end })
end

--- Uploads the blob (a block blob), replacing any existing one. Options: `content_type`, `metadata`
--- (name → value), `overwrite` (false: fail with `BlobAlreadyExists` if it exists), `progress`
--- (true: a bar on stderr when it is a terminal; or `function(done, total, rate)`), `block_size`, `concurrency`, `single_put_max`, `md5` (false: do not store a
--- whole-blob MD5 for a block upload).
--- Errors: `nil, err` ("file" for an unreadable file, `BlobAlreadyExists`, ...).
---@async
---@param data string|{file: string} the content, or a file to stream
---@param opts? table
---@return {etag: string, last_modified: string, content_md5?: string, size: integer}|nil result
---@return lufa.error? err
function Blob:put(data, opts)
  opts = opts or {}
  if type(opts) ~= "table" then argerror(2, "put", "table expected") end
  options.check(opts, PUT_OPTIONS, "blob:put", 2)
  local headers = content_headers(opts)
  if type(data) == "string" then
    headers["Content-MD5"] = crypto.base64_encode(crypto.md5(data))
    local tracker, _ <close> = tracker_for(self, opts, #data)
    tracker:tell(true)
    local res, err = blob_op(self, { op = "Put Blob", method = "PUT", headers = headers, body = data, ok = { [201] = true },
      progress = tracker:part(1) })
    if not res then return nil, err end
    tracker:complete(1, #data)
    return put_result(res, #data)
  end
  if type(data) ~= "table" or type(data.file) ~= "string" then
    argerror(1, "put", "string or {file = path} expected")
  end
  local path = data.file
  local size, why = file_size(path)
  if not size then
    return nil, E.new{ kind = "blob", code = "file", operation = "Put Blob", container = self.container.name,
      blob = self.name, file = path, message = ("Put Blob %s/%s: cannot read '%s': %s"):format(self.container.name,
        self.name, path, why) }
  end
  if size <= (opts.single_put_max or self.client.single_put_max) then
    local md5, merr = crypto.md5_file(path)
    if not md5 then
      return nil, E.new{ kind = "blob", code = "file", operation = "Put Blob", file = path, container = self.container.name,
        blob = self.name, message = ("Put Blob %s/%s: %s"):format(self.container.name, self.name, merr.message) }
    end
    headers["Content-MD5"] = crypto.base64_encode(md5)
    local tracker, _ <close> = tracker_for(self, opts, size)
    tracker:tell(true)
    local res, err = blob_op(self, { op = "Put Blob", method = "PUT", headers = headers, body_file = path,
      body_offset = 0, body_length = size, ok = { [201] = true }, progress = tracker:part(1) })
    if not res then return nil, err end
    tracker:complete(1, size)
    return put_result(res, size)
  end
  local tracker, _ <close> = tracker_for(self, opts, size)
  local res, err = transfer.upload(self, path, size, { block_size = opts.block_size, concurrency = opts.concurrency,
    tracker = tracker, md5 = opts.md5, commit_headers = content_headers(opts, true) })
  if not res then return nil, err end
  return put_result(res, size)
end

local function properties_from(headers)
  local p = { size = tonumber(headers["content-length"]), content_type = headers["content-type"],
    content_md5 = headers["content-md5"], etag = headers["etag"], last_modified = headers["last-modified"],
    blob_type = headers["x-ms-blob-type"], created = headers["x-ms-creation-time"], metadata = {} }
  for k, v in pairs(headers) do
    local m = k:match("^x%-ms%-meta%-(.+)$")
    if m then p.metadata[m] = v end
  end
  return p
end

--- Downloads the blob. Options: `file` (write there instead of returning a string; the file appears only
--- when complete and checked), `progress` (as for put), `range_size`, `concurrency`, `verify_md5` (default true).
--- Errors: `nil, err` (`BlobNotFound`, a failed MD5 check, ...).
---@async
---@param opts? table
---@return string|lufa.blob.Properties|nil content the content; with `file`, the properties
---@return lufa.blob.Properties|lufa.error|nil properties the properties (without `file`), or the error
function Blob:get(opts)
  opts = opts or {}
  if type(opts) ~= "table" then argerror(1, "get", "table expected") end
  options.check(opts, GET_OPTIONS, "blob:get", 2)
  local tracker, _ <close> = tracker_for(self, opts, nil)
  if opts.file then
    if type(opts.file) ~= "string" then argerror(1, "get", "'file' must be a path") end
    return transfer.download(self, opts.file, { range_size = opts.range_size, concurrency = opts.concurrency,
      verify_md5 = opts.verify_md5, tracker = tracker })
  end
  local res, err = blob_op(self, { op = "Get Blob", method = "GET", ok = { [200] = true }, progress = tracker:part(1, true),
    check = function(r)
      local want = tonumber(r.headers["content-length"])
      if not want then
        return nil, { code = "truncated", message = "the response carried no Content-Length, so it cannot be checked for completeness" }
      end
      if #r.body ~= want then
        return nil, { code = "truncated", message = ("the response ended after %d of %d bytes"):format(#r.body, want) }
      end
      return true
    end })
  if not res then return nil, err end
  local props = properties_from(res.headers)
  if props.content_md5 and opts.verify_md5 ~= false then
    local got = crypto.base64_encode(crypto.md5(res.body))
    if got ~= props.content_md5 then
      return nil, E.new{ kind = "blob", code = "Md5Mismatch", operation = "Get Blob", container = self.container.name,
        blob = self.name, message = ("Get Blob %s/%s: the content has MD5 %s but the service stores %s"):format(
          self.container.name, self.name, got, props.content_md5) }
    end
  end
  tracker:set_total(#res.body)
  tracker:complete(1, #res.body)
  return res.body, props
end

--- The blob's properties and metadata.
--- Errors: `nil, err` (`BlobNotFound`, ...).
---@async
---@return lufa.blob.Properties|nil properties
---@return lufa.error? err
function Blob:properties()
  local res, err = blob_op(self, { op = "Get Blob Properties", method = "HEAD", ok = { [200] = true } })
  if not res then return nil, err end
  return properties_from(res.headers)
end

--- Whether the blob exists.
--- Errors: `nil, err`.
---@async
---@return boolean|nil exists
---@return lufa.error? err
function Blob:exists()
  local res, err = blob_op(self, { op = "Get Blob Properties", method = "HEAD", ok = { [200] = true, [404] = true } })
  if not res then return nil, err end
  return res.status == 200
end

--- Deletes the blob.
--- Errors: `nil, err` (`BlobNotFound`, ...).
---@async
---@return true|nil ok
---@return lufa.error? err
function Blob:delete()
  local res, err = blob_op(self, { op = "Delete Blob", method = "DELETE", ok = { [202] = true }, gone_ok = true })
  if not res then return nil, err end
  return true
end

--- A service SAS URL for the blob.
--- Errors: raises on bad options or a client without a key.
---@param o lufa.blob.SasOptions `permissions` (letters of "racwdxtme"), `expiry`, `start`, `protocol`, `ip`, `identifier`, and the response overrides
---@return lufa.secret url the blob URL with the SAS (use `lufa.secret.expose` to hand it to another program)
function Blob:sas(o)
  local c = self.client
  if not c.key then error("a service SAS needs a client with an account key", 2) end
  if type(o) ~= "table" then argerror(1, "sas", "table expected") end
  options.check(o, BLOB_SAS_OPTIONS, "blob:sas", 2)
  local tok = auth.service_sas{ key = c.key, account = c.account, container = self.container.name, blob = self.name,
    permissions = o.permissions, expiry = o.expiry, start = o.start, protocol = o.protocol, ip = o.ip,
    identifier = o.identifier, version = c.version, cache_control = o.cache_control,
    content_disposition = o.content_disposition, content_encoding = o.content_encoding,
    content_language = o.content_language, content_type = o.content_type }
  return secret(c.origin .. transport.path(c, self.container.name, self.name) .. "?") .. tok
end

function Client:__tostring() return ("lufa.blob.client (%s)"):format(self.endpoint) end
function Container:__tostring() return ("lufa.blob.container (%s)"):format(self.name) end
function Blob:__tostring() return ("lufa.blob.blob (%s/%s)"):format(self.container.name, self.name) end

return blob
