-- One wrk script for every workload and target:
--   wrk ... -s bench/wrk/workload.lua URL -- WORKLOAD FLAVOUR PREFIX INPUT_DIR [TOKEN]
-- WORKLOAD: get_by_id | by_name | search | create | update
-- FLAVOUR:  ours | tutorial | hello (field names differ: name vs book_name)
-- PREFIX:   makes created names unique across runs (warm-up, each concurrency, each target)
-- Every response that is not 2xx is counted here (wrk itself only counts >= 400), and the
-- summary is printed as one JSON line that bench/run.py parses.

local ids = 10000
local workload, flavour, prefix, input_dir, token
local names, terms = {}, {}
local counter = 0
non2xx = 0 -- global: done() reads it through thread:get
statuses = {}
local headers_json = { ["Content-Type"] = "application/json" }

local function read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if #line > 0 then lines[#lines + 1] = line end
  end
  return lines
end

function init(args)
  workload, flavour, prefix, input_dir, token = args[1], args[2], args[3], args[4], args[5]
  names = read_lines(input_dir .. "/names.txt")
  terms = read_lines(input_dir .. "/terms.txt")
  ids = #names
  if token and #token > 0 then headers_json["Authorization"] = "Bearer " .. token end
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % 100000)
end

local function name_field()
  if flavour == "tutorial" then return "book_name" end
  return "name"
end

function request()
  if workload == "get_by_id" then
    return wrk.format("GET", "/books/" .. math.random(1, ids))
  elseif workload == "by_name" then
    return wrk.format("GET", "/books?name=" .. names[math.random(1, #names)])
  elseif workload == "search" then
    return wrk.format("GET", "/books?limit=20&q=" .. terms[math.random(1, #terms)])
  elseif workload == "create" then
    counter = counter + 1
    local body = string.format(
      '{"%s":"%s %d The Unwritten Chronicle","author":"Bench Author %d",' ..
      '"publisher":"Load Press","published_year":%d,"pages":%d}',
      name_field(), prefix, counter, counter % 997, 1900 + counter % 120, 100 + counter % 900)
    return wrk.format("POST", "/books", headers_json, body)
  elseif workload == "update" then
    local body = string.format('{"pages":%d}', math.random(50, 2000))
    return wrk.format("PATCH", "/books/" .. math.random(1, ids), headers_json, body)
  end
  error("unknown workload " .. tostring(workload))
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local bad, by_status = 0, {}
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
    for code, n in pairs(thread:get("statuses")) do
      by_status[#by_status + 1] = string.format('"%d":%d', code, n)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,"statuses":{%s},' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, bad, table.concat(by_status, ","),
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
