-- GET-only scenario: every connection asks for the same page again and again (or cycles
-- through a list of paths), with an optional cookie.
--
--   wrk -t T -c C -d D -s bench/load/get.lua http://127.0.0.1:PORT/path -- [COOKIE] [PATH...]
--
-- COOKIE is a `Cookie:` header value such as `guichet_agent=…` ("" for none); without PATHs
-- the URL's path is used. Responses are counted by status class: in a GET-only loop a 3xx is
-- suspicious (an expired session sends to the login page), so it is reported separately, and
-- run-load.sh checks the page with curl before and after the run.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local paths = {}
local index = 0
local headers = {}

function init(args)
  local cookie = args[1]
  if cookie ~= nil and cookie ~= "" then headers["Cookie"] = cookie end
  for i = 2, #args do table.insert(paths, args[i]) end
  if #paths == 0 then table.insert(paths, wrk.path) end
  -- Threads start at different places of the list.
  index = id or 0
end

function request()
  index = index % #paths + 1
  return wrk.format("GET", paths[index], headers)
end

function response(status, headers, body)
  count_status(status)
end
