-- POST a file as the raw body of /count?needle=NEEDLE.
--   WC_FILE=README.md wrk -t2 -c16 -d10s -s bench/wrk/post_file.lua http://127.0.0.1:8080
--   wrk -t2 -c16 -d10s -s bench/wrk/post_file.lua http://127.0.0.1:8080 -- README.md the
-- The file comes from WC_FILE or the first script argument (after --);
-- the needle from WC_NEEDLE or the second argument (default "the");
-- WC_TOKEN sets a bearer token.
local path, needle

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

function init(args)
  path = os.getenv("WC_FILE") or args[1]
  needle = os.getenv("WC_NEEDLE") or args[2] or "the"
  if not path then
    io.stderr:write("post_file.lua: give a file: WC_FILE=path or -- path\n")
    os.exit(2)
  end
  local f = assert(io.open(path, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.path = "/count?needle=" .. urlencode(needle)
  wrk.headers["Content-Type"] = "application/octet-stream"
  if os.getenv("WC_TOKEN") then
    wrk.headers["Authorization"] = "Bearer " .. os.getenv("WC_TOKEN")
  end
end

function request()
  return wrk.format(nil, nil, nil, wrk.body)
end

local bad = 0
function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    if bad <= 3 then io.stderr:write("status " .. status .. ": " .. body .. "\n") end
  end
end
