-- wrk script: DEPTH small POST /count requests written at once on each
-- keep-alive connection (HTTP/1.1 pipelining); wrk writes the next batch
-- after the last response of this one, and counts every response.
-- Usage: wrk ... -s bench/http/pipeline.lua URL -- json|raw DEPTH
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")
local batch

function init(args)
  local method, path, headers, body = report.request_parts(args[1] or "json")
  local depth = tonumber(args[2] or "16")
  local reqs = {}
  for i = 1, depth do
    reqs[i] = wrk.format(method, path, headers, body)
  end
  batch = table.concat(reqs)
end

function request()
  return batch
end

done = report.done
