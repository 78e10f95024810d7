-- wrk script: one small POST /count per round trip on keep-alive
-- connections (a static request: wrk formats it once).
-- Usage: wrk ... -s bench/http/small.lua URL -- json|raw
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")

function init(args)
  local method, path, headers, body = report.request_parts(args[1] or "json")
  wrk.method, wrk.path, wrk.body = method, path, body
  for k, v in pairs(headers) do wrk.headers[k] = v end
end

done = report.done
