-- wrk script: POST /count?needle=is with a raw body of SIZE bytes (the seed's
-- corpus, repeated and cut) on keep-alive connections.
-- Usage: wrk ... -s bench/http/sized.lua URL -- SIZE
local zen = "Beautiful is better than ugly. Explicit is better than implicit. " ..
  "Simple is better than complex. Complex is better than complicated.\n"

function init(args)
  local size = tonumber(args[1] or "1024")
  local body = string.rep(zen, math.floor(size / #zen) + 1):sub(1, size)
  wrk.method = "POST"
  wrk.path = "/count?needle=is"
  wrk.body = body
  wrk.headers["Content-Type"] = "text/plain"
end
