-- POST /count with a JSON body.
--   wrk -t2 -c64 -d10s -s bench/wrk/post_json.lua http://127.0.0.1:8080/count
-- Environment: WC_NEEDLE (default "is"), WC_REPEAT (copies of the Zen of
-- Python in the text, default 1), WC_TOKEN (bearer token, if the server has one).
local zen = [[
The Zen of Python, by Tim Peters

Beautiful is better than ugly.
Explicit is better than implicit.
Simple is better than complex.
Complex is better than complicated.
Flat is better than nested.
Sparse is better than dense.
Readability counts.
Special cases aren't special enough to break the rules.
Although practicality beats purity.
Errors should never pass silently.
Unless explicitly silenced.
In the face of ambiguity, refuse the temptation to guess.
There should be one-- and preferably only one --obvious way to do it.
Although that way may not be obvious at first unless you're Dutch.
Now is better than never.
Although never is often better than *right* now.
If the implementation is hard to explain, it's a bad idea.
If the implementation is easy to explain, it may be a good idea.
Namespaces are one honking great idea -- let's do more of those!
]]

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local needle = os.getenv("WC_NEEDLE") or "is"
local text = string.rep(zen, tonumber(os.getenv("WC_REPEAT") or "1"))

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if os.getenv("WC_TOKEN") then
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("WC_TOKEN")
end
wrk.body = '{"text":' .. json_string(text) .. ',"needle":' .. json_string(needle) .. '}'

local bad = 0
function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    if bad <= 3 then io.stderr:write("status " .. status .. ": " .. body .. "\n") end
  end
end
