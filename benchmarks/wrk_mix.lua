-- wrk script: cycle through a list of requests, count answers by status and
-- report everything as one JSON line that benchmarks/loadkit.py reads.
--
--   wrk -t1 -c4 -d10s --latency -s benchmarks/wrk_mix.lua URL -- MANIFEST [STOP]
--
-- MANIFEST has one request a line: "METHOD PATH BODY_FILE" (BODY_FILE "-"
-- for none). A body holding {{seed}} gets a fresh integer there on every
-- request (thread number times 10^9 plus the request's count), so that a
-- response cache cannot answer it. STOP, when given and positive, stops each
-- thread after that many answers. Each thread starts at its own place in the
-- list, so threads do not send the same kind at the same moment.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("number", #threads)
end

local requests = {}
local position = 1
local sent = 0
local answered = 0
local stop_after = 0
statuses = {}

local function headers_for(body)
   if body == nil then
      return {}
   end
   return { ["Content-Type"] = "application/json" }
end

local function read_file(path)
   local file = assert(io.open(path, "rb"))
   local text = file:read("*a")
   file:close()
   return text
end

function init(args)
   for line in io.lines(args[1]) do
      local method, path, body_file = line:match("^(%S+)%s+(%S+)%s+(%S+)%s*$")
      if method then
         local body = nil
         if body_file ~= "-" then
            body = read_file(body_file)
         end
         local templated = body ~= nil and body:find("{{seed}}", 1, true) ~= nil
         local entry = { method = method, path = path, body = body }
         if not templated then
            entry.ready = wrk.format(method, path, headers_for(body), body)
         end
         table.insert(requests, entry)
      end
   end
   if #requests == 0 then
      error("no request in " .. args[1] .. ": write lines 'METHOD PATH BODY_FILE'")
   end
   stop_after = tonumber(args[2] or "0") or 0
   position = ((number or 1) - 1) % #requests + 1
end

function request()
   local entry = requests[position]
   position = position % #requests + 1
   sent = sent + 1
   if entry.ready then
      return entry.ready
   end
   local seed = tostring((number or 1) * 1000000000 + sent)
   local body = entry.body:gsub("{{seed}}", seed)
   return wrk.format(entry.method, entry.path, headers_for(body), body)
end

function response(status, headers, body)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
   answered = answered + 1
   if stop_after > 0 and answered >= stop_after then
      wrk.thread:stop()
   end
end

local function json_object(pairs_list)
   local parts = {}
   for _, pair in ipairs(pairs_list) do
      table.insert(parts, string.format("%q:%s", pair[1], pair[2]))
   end
   return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests_stats)
   local merged = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses") or {}) do
         merged[status] = (merged[status] or 0) + count
      end
   end
   local status_pairs = {}
   for status, count in pairs(merged) do
      table.insert(status_pairs, { status, string.format("%d", count) })
   end
   local percentile_pairs = {}
   for _, p in ipairs({ 50, 75, 90, 99, 99.9 }) do
      table.insert(
         percentile_pairs,
         { string.format("%g", p), string.format("%d", latency:percentile(p)) }
      )
   end
   local errors = summary.errors
   io.write(
      "wrk-report ",
      json_object({
         { "requests", string.format("%d", summary.requests) },
         { "duration_us", string.format("%d", summary.duration) },
         { "bytes", string.format("%d", summary.bytes) },
         { "errors", json_object({
            { "connect", string.format("%d", errors.connect) },
            { "read", string.format("%d", errors.read) },
            { "write", string.format("%d", errors.write) },
            { "status", string.format("%d", errors.status) },
            { "timeout", string.format("%d", errors.timeout) },
         }) },
         { "statuses", json_object(status_pairs) },
         { "latency_us", json_object({
            { "min", string.format("%d", latency.min) },
            { "mean", string.format("%.1f", latency.mean) },
            { "max", string.format("%d", latency.max) },
            { "percentiles", json_object(percentile_pairs) },
         }) },
      }),
      "\n"
   )
end
