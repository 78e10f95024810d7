-- Shared by the wrk scripts of `make bench` (loaded with dofile): the small
-- request bodies, and done(), which prints one parseable line that
-- bench/http/bench.py reads:
--   WRK_RESULT requests=N duration_us=N bytes=N connect=N read=N write=N
--              status=N timeout=N p50_us=F p90_us=F p99_us=F max_us=F mean_us=F
-- status counts responses that were not 2xx or 3xx (wrk's "Non-2xx").
-- Latency percentiles are per request (per batch when pipelining: wrk times
-- a batch from its write to its last response).

local M = {}

-- "is" counts 2 in both bodies.
M.json_body = '{"text":"is this is it","needle":"is"}'
M.raw_body = "is this is it"

-- method, path, headers, body of one small request of the given kind.
function M.request_parts(kind)
  if kind == "raw" then
    return "POST", "/count?needle=is",
      {["Host"] = "127.0.0.1", ["Content-Type"] = "text/plain"}, M.raw_body
  elseif kind == "json" then
    return "POST", "/count",
      {["Host"] = "127.0.0.1", ["Content-Type"] = "application/json"}, M.json_body
  end
  error("kind must be json or raw, not " .. tostring(kind))
end

-- wrk 4.1 "corrects" its latency histogram for coordinated omission before
-- done() runs: every sample of at least twice the mean interval between two
-- requests of a connection adds synthetic samples below it. The numbers
-- printed here are wrk's own (its --latency output shows the same). With
-- pipelining the interval is computed per response but a sample is per
-- batch, and the synthetic samples can land below the histogram's minimum,
-- where wrk's percentile() no longer finds them and returns 0: such a
-- percentile is printed as -1 (unknown).
local function pct(latency, p)
  local v = latency:percentile(p)
  if v == 0 then return -1 end
  return v
end

function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d bytes=%d connect=%d read=%d " ..
    "write=%d status=%d timeout=%d p50_us=%.1f p90_us=%.1f p99_us=%.1f " ..
    "max_us=%.1f mean_us=%.1f\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read,
    e.write, e.status, e.timeout, pct(latency, 50), pct(latency, 90),
    pct(latency, 99), latency.max, latency.mean))
end

return M
