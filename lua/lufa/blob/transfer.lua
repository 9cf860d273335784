--- lufa.blob.transfer: large uploads and downloads in parallel, in bounded memory.
-- Uploads: the file is cut into blocks; a few tasks each stream one block at a time straight from the file
-- (lufa.http body_file + body_offset/body_length) with its Content-MD5, then one Put Block List commits them.
-- Downloads: ranged reads by a few tasks, each written in place into a temporary file next to the destination
-- (output_file + output_offset); the whole-blob MD5 is checked when the service has one, and only then is the
-- temporary file renamed onto the destination. Memory stays a few curl buffers whatever the size.
local lufa = require "lufa"
local E = require "lufa.error"
local crypto = require "lufa.crypto"
local transport = require "lufa.blob.transport"
local fs = require "lufa.fs"

local transfer = {}

local MAX_BLOCKS = 50000
local MAX_BLOCK_SIZE = 4000 * 1024 * 1024

local function file_error(blob, op, code, fmt, ...)
  return E.new{ kind = "blob", code = code, operation = op, container = blob.container.name, blob = blob.name,
    message = ("%s %s/%s: "):format(op, blob.container.name, blob.name) .. fmt:format(...) }
end

--- Runs `count` workers that each call `job(i)` for the next unclaimed index in 1..n, until all are done or
-- one fails. `job` returns true, or nil and an error. Returns true, or nil and the first error.
-- A worker that raises (a bug, or a progress callback that raised) makes the whole run raise once all stopped.
local function run_parallel(n, count, job)
  local next_index, failure = 0, nil
  local function worker()
    while failure == nil do
      next_index = next_index + 1
      local i = next_index
      if i > n then return end
      local ok, err = job(i)
      if not ok then
        failure = failure or err
        return
      end
    end
  end
  local tasks = {}
  for w = 1, math.min(count, n) do tasks[w] = lufa.spawn(worker) end
  -- to-be-closed: if the caller is cancelled while waiting, the workers stop too
  local _ <close> = setmetatable({}, { __close = function()
    for _, t in ipairs(tasks) do
      local s = t:status()
      if s == "ready" or s == "waiting" or s == "running" then t:cancel("transfer stopped") end
    end
  end })
  local raised
  for _, t in ipairs(tasks) do
    local ok, err = pcall(t.wait, t)
    if not ok and raised == nil then
      raised = err
      failure = failure or err  -- tells the other workers to stop after their current piece
    end
  end
  if raised ~= nil and not E.is(raised) then error(raised, 0) end
  if failure then return nil, failure end
  return true
end

--- Picks the block size: the wanted one, grown when the file would need more than 50,000 blocks.
function transfer.block_size(size, wanted)
  local bs = wanted
  if size > bs * MAX_BLOCKS then
    local mib = 1024 * 1024
    bs = ((size + MAX_BLOCKS - 1) // MAX_BLOCKS + mib - 1) // mib * mib
  end
  return math.min(bs, MAX_BLOCK_SIZE)
end

--- Block ID of block i (0-based): all IDs of a blob have the same length, as the service requires.
function transfer.block_id(i)
  return crypto.base64_encode(("lufa-block-%08d"):format(i))
end

-- The MD5 of a file region, hashed on a worker thread while this task waits (other transfers keep moving).
local function region_md5(path, offset, length)
  local h <close> = crypto.file_hasher("md5")
  h:feed(path, offset, length)
  return h:finish()
end

--- Uploads a file as blocks, then commits the block list.
-- @tparam table blob the blob object (`.client`, `.container`, `.name`)
-- @tparam string path the file
-- @tparam integer size its size in bytes
-- @tparam table opts `block_size`, `concurrency`, `tracker` (lufa.progress), `md5` (set the whole-blob MD5; default true),
--   `commit_headers` (headers for Put Block List: content type, metadata, conditions)
-- @return the Put Block List response, or nil, err
function transfer.upload(blob, path, size, opts)
  local client = blob.client
  local bs = transfer.block_size(size, opts.block_size or client.block_size)
  local n = (size + bs - 1) // bs
  local tracker = opts.tracker
  tracker:tell(true)

  -- the whole-file MD5 is computed on another core while the blocks go up
  local whole <close> = opts.md5 ~= false and crypto.file_hasher("md5") or nil
  if whole then whole:feed(path, 0, size) end

  local ok, err = run_parallel(n, opts.concurrency or client.concurrency, function(i)
    local offset = (i - 1) * bs
    local length = math.min(bs, size - offset)
    local md5, merr = region_md5(path, offset, length)
    if not md5 then
      return nil, file_error(blob, "Put Block", "file", "cannot read '%s': %s", path, merr.message)
    end
    local res, serr = transport.send(client, { op = "Put Block", method = "PUT", container = blob.container.name,
      blob = blob.name, query = { { "comp", "block" }, { "blockid", transfer.block_id(i - 1) } },
      headers = { ["Content-MD5"] = crypto.base64_encode(md5) }, body_file = path, body_offset = offset,
      body_length = length, ok = { [201] = true }, progress = tracker:part(i) })
    if not res then return nil, serr end
    tracker:complete(i, length)
    return true
  end)
  if not ok then return nil, err end
  local whole_md5, hash_err
  if whole then
    whole_md5, hash_err = whole:finish()
    if not whole_md5 then
      return nil, file_error(blob, "Put Block List", "file", "cannot read '%s': %s", path, hash_err.message)
    end
  end

  local xml = { '<?xml version="1.0" encoding="utf-8"?><BlockList>' }
  for i = 0, n - 1 do xml[#xml + 1] = "<Latest>" .. transfer.block_id(i) .. "</Latest>" end
  xml[#xml + 1] = "</BlockList>"
  local headers = { ["Content-Type"] = "application/xml" }
  for k, v in pairs(opts.commit_headers or {}) do headers[k] = v end
  if whole_md5 then headers["x-ms-blob-content-md5"] = crypto.base64_encode(whole_md5) end
  return transport.send(client, { op = "Put Block List", method = "PUT", container = blob.container.name,
    blob = blob.name, query = { { "comp", "blocklist" } }, headers = headers, body = table.concat(xml),
    ok = { [201] = true } })
end

-- "bytes S-E/TOTAL" → S, E, TOTAL
local function content_range(value)
  local s, e, total = (value or ""):match("^bytes%s+(%d+)%-(%d+)/(%d+)$")
  return tonumber(s), tonumber(e), tonumber(total)
end

local function random_suffix()
  return crypto.hex(crypto.random_bytes(6))
end

--- Downloads a blob into a file: parallel ranged reads into a temporary file, MD5 check, rename.
-- @tparam table blob the blob object
-- @tparam string path destination
-- @tparam table opts `range_size`, `concurrency`, `tracker` (lufa.progress), `verify_md5` (default true)
-- @treturn table properties `{size=, etag=, content_md5=, content_type=, last_modified=}`, or nil, err
function transfer.download(blob, path, opts)
  local client = blob.client
  local chunk = opts.range_size or client.range_size
  local tmp = path .. ".lufa-part-" .. random_suffix()
  -- private from the first byte (0600, whatever the umask): a blob may hold anything
  local made, why = fs.write_file(tmp, "", { mode = 384, atomic = false })
  if not made then
    return nil, file_error(blob, "Get Blob", "file", "cannot write next to '%s': %s", path, why.message)
  end
  local finished = false
  local _ <close> = setmetatable({}, { __close = function() if not finished then os.remove(tmp) end end })

  local tracker = opts.tracker
  local function get_range(first, last, etag)
    local expected = last - first + 1
    return transport.send(client, { op = "Get Blob", method = "GET", container = blob.container.name,
      progress = tracker:part(first),
      blob = blob.name, headers = { ["x-ms-range"] = ("bytes=%d-%d"):format(first, last), ["If-Match"] = etag },
      output_file = tmp, output_offset = first, ok = { [200] = first == 0 or nil, [206] = true, [416] = first == 0 or nil },
      check = function(res)
        if res.status == 416 then return true end
        if res.status == 206 then
          local s, e = content_range(res.headers["content-range"])
          if s ~= first or (e and e ~= last and not (first == 0 and etag == nil)) then
            return nil, { code = "bad_range", message = ("asked for bytes %d-%d, the service sent %s"):format(
              first, last, tostring(res.headers["content-range"])) }
          end
          expected = e - s + 1
        elseif res.status == 200 then
          expected = tonumber(res.headers["content-length"]) or res.size
        end
        if res.size ~= expected then
          return nil, { code = "truncated", message = ("the response ended after %d of %d bytes"):format(res.size, expected) }
        end
        return true
      end })
  end

  local res, err = get_range(0, chunk - 1, nil)
  if not res then return nil, err end
  local props = { etag = res.headers["etag"], content_type = res.headers["content-type"],
    last_modified = res.headers["last-modified"] }
  local total, first_len
  if res.status == 416 then
    -- an empty blob cannot be read by range: confirm it is empty
    local head, herr = blob:properties()
    if not head then return nil, herr end
    if head.size ~= 0 then
      return nil, file_error(blob, "Get Blob", "bad_range", "the service refused the first range of a %d-byte blob", head.size)
    end
    total, first_len = 0, 0
    props = head
  elseif res.status == 206 then
    local _, e, t = content_range(res.headers["content-range"])
    total, first_len = t, e + 1
    props.content_md5 = res.headers["x-ms-blob-content-md5"]
  else
    total, first_len = res.size, res.size
    props.content_md5 = res.headers["content-md5"]
  end
  props.size = total
  tracker:set_total(total)
  tracker:complete(0, first_len)

  -- ranges after the first, each pinned to the first response's ETag so a blob replaced meanwhile fails
  local ranges = {}
  local pos = first_len
  while pos < total do
    local last = math.min(pos + chunk, total) - 1
    ranges[#ranges + 1] = { pos, last }
    pos = last + 1
  end

  -- the whole-blob MD5, computed in file order on a worker thread: each range is fed to it once every range
  -- before it has landed, so hashing overlaps the transfers without taking time from this thread
  local verify = opts.verify_md5 ~= false and props.content_md5 ~= nil
  local hash <close> = verify and crypto.file_hasher("md5") or nil
  local fed_to, landed = 0, { [0] = first_len }
  local function feed_landed()
    while landed[fed_to] do
      local stop = landed[fed_to]
      landed[fed_to] = nil
      hash:feed(tmp, fed_to, stop - fed_to)
      fed_to = stop
    end
  end
  if hash then feed_landed() end

  local ok, perr = run_parallel(#ranges, opts.concurrency or client.concurrency, function(i)
    local r = ranges[i]
    local rres, rerr = get_range(r[1], r[2], props.etag)
    if not rres then return nil, rerr end
    if hash then
      landed[r[1]] = r[2] + 1
      feed_landed()
    end
    tracker:complete(r[1], r[2] - r[1] + 1)
    return true
  end)
  if not ok then return nil, perr end

  if hash then
    local digest, herr = hash:finish()
    if not digest or fed_to ~= total then
      return nil, file_error(blob, "Get Blob", "file", "cannot check the download: %s",
        herr and herr.message or "ranges missing")
    end
    local got = crypto.base64_encode(digest)
    if got ~= props.content_md5 then
      return nil, file_error(blob, "Get Blob", "Md5Mismatch",
        "the downloaded bytes have MD5 %s but the service stores %s; nothing was written to '%s'", got,
        props.content_md5, path)
    end
    props.md5_checked = true
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then return nil, file_error(blob, "Get Blob", "file", "cannot move the download into place: %s", rerr) end
  finished = true
  return props
end

return transfer
