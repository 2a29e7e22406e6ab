-- Shared by the wrk scripts of bench/run-load.sh (loaded with dofile by each of them).
--
-- Every scenario script counts the responses it sees by status class in per-thread globals
-- (each wrk thread has its own Lua state); `done` gathers them from every thread and writes one
-- JSON object to the file named by $WRK_REPORT, next to wrk's own summary: requests, duration,
-- socket errors, non-2xx/3xx responses, latency percentiles (microseconds), and whatever the
-- script adds through `extra_report` (e.g. the submissions completed).

local threads = {}
local next_id = 0

s2xx, s3xx, s4xx, s5xx, sother = 0, 0, 0, 0, 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- Counts a response by status class.
function count_status(status)
  if status >= 200 and status < 300 then s2xx = s2xx + 1
  elseif status >= 300 and status < 400 then s3xx = s3xx + 1
  elseif status >= 400 and status < 500 then s4xx = s4xx + 1
  elseif status >= 500 and status < 600 then s5xx = s5xx + 1
  else sother = sother + 1 end
end

-- A header by name, whatever its case.
function header(headers, name)
  name = name:lower()
  for k, v in pairs(headers) do
    if k:lower() == name then return v end
  end
  return nil
end

-- The value of the first hidden `_csrf` field of a page, or nil.
function csrf_of(body)
  if body == nil then return nil end
  return body:match('name="_csrf" value="([0-9a-fA-F]+)"')
end

-- Percent-encodes a form value.
function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local function json_value(v)
  local t = type(v)
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return string.format("%.17g", v)
  elseif t == "boolean" then return tostring(v)
  elseif t == "nil" then return "null"
  elseif t == "table" then
    local parts = {}
    if #v > 0 then
      for _, x in ipairs(v) do table.insert(parts, json_value(x)) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, x in pairs(v) do
      table.insert(parts, string.format("%q:%s", tostring(k), json_value(x)))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  else
    local escaped = tostring(v):gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
    end)
    return '"' .. escaped .. '"'
  end
end

-- Sums a global over every thread.
function sum_threads(name)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get(name) or 0) end
  return total
end

function each_thread(fn)
  for _, t in ipairs(threads) do fn(t) end
end

function done(summary, latency, requests)
  local report = {
    requests = summary.requests,
    duration_us = summary.duration,
    bytes = summary.bytes,
    errors_connect = summary.errors.connect,
    errors_read = summary.errors.read,
    errors_write = summary.errors.write,
    errors_timeout = summary.errors.timeout,
    errors_status = summary.errors.status,
    status_2xx = sum_threads("s2xx"),
    status_3xx = sum_threads("s3xx"),
    status_4xx = sum_threads("s4xx"),
    status_5xx = sum_threads("s5xx"),
    status_other = sum_threads("sother"),
    latency_mean_us = latency.mean,
    latency_max_us = latency.max,
    latency_p50_us = latency:percentile(50),
    latency_p90_us = latency:percentile(90),
    latency_p99_us = latency:percentile(99),
    threads = #threads,
  }
  if extra_report then extra_report(report) end
  local path = os.getenv("WRK_REPORT")
  local out = path and io.open(path, "w") or io.stdout
  out:write(json_value(report), "\n")
  if path then out:close() end
end

-- The report of a flow script (submit.lua, send.lua): submissions completed, and the
-- unexpected answers by step (`names`), with a few samples. Each thread keeps `submitted`,
-- `unexpected`, `unexpected_by_step` (by step number) and `last_unexpected`.
function flow_report(report, names)
  report.submitted = sum_threads("submitted")
  report.unexpected = sum_threads("unexpected")
  local by_step, samples = {}, {}
  for _, name in ipairs(names) do by_step[name] = 0 end
  each_thread(function(t)
    local u = t:get("unexpected_by_step")
    for i, name in ipairs(names) do by_step[name] = by_step[name] + (u[i] or 0) end
    local last = t:get("last_unexpected")
    if last ~= nil and last ~= "" and #samples < 5 then table.insert(samples, last) end
  end)
  report.unexpected_by_step = by_step
  report.unexpected_samples = samples
end

-- The request headers of a flow script's thread: the cookie of one of the citizens given
-- from args[first] on (thread i takes cookie i mod n), for GETs and for form POSTs. Also
-- zeroes the thread's unexpected answers for each of `names`' steps.
function flow_init(args, first, names)
  local cookies = {}
  for i = first, #args do table.insert(cookies, args[i]) end
  local cookie = cookies[(id or 0) % #cookies + 1]
  for i = 1, #names do unexpected_by_step[i] = 0 end
  return { ["Cookie"] = cookie }, {
    ["Cookie"] = cookie,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }
end
