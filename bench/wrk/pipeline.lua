-- N pipelined POST /count requests per write (HTTP/1.1 pipelining).
--   wrk -t2 -c16 -d10s -s bench/wrk/pipeline.lua http://127.0.0.1:8080 -- 16
-- Depth from WC_DEPTH or the first argument (default 16). wrk counts each
-- pipelined response as one request.
local batch

function init(args)
  local depth = tonumber(os.getenv("WC_DEPTH") or args[1] or "16")
  local headers = {["Content-Type"] = "text/plain"}
  if os.getenv("WC_TOKEN") then
    headers["Authorization"] = "Bearer " .. os.getenv("WC_TOKEN")
  end
  local reqs = {}
  for i = 1, depth do
    reqs[i] = wrk.format("POST", "/count?needle=is", headers,
                         "Beautiful is better than ugly. " .. i .. " is " .. i .. "\n")
  end
  batch = table.concat(reqs)
end

function request()
  return batch
end

local bad = 0
function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    if bad <= 3 then io.stderr:write("status " .. status .. ": " .. body .. "\n") end
  end
end
