-- The requests of one scenario of bench/matrix.py, for wrk (https://github.com/wg/wrk).
--
-- matrix.py writes the data files and sets, in the environment:
--   BENCH_DATA      the folder of the data files (one value per line)
--   BENCH_SCENARIO  listing | detail | search | place | place-hot | token
--                   | baseline-listing | baseline-update
--   BENCH_RUN       a word unique to this run (it makes the Idempotency-Keys unique)
-- and reads the one line of JSON that done() prints: the figures and every status seen.

local data = os.getenv("BENCH_DATA")
local scenario = os.getenv("BENCH_SCENARIO")
local run = os.getenv("BENCH_RUN")

local function lines(name)
  local values = {}
  for line in io.lines(data .. "/" .. name) do values[#values + 1] = line end
  return values
end

local function pick(values) return values[math.random(#values)] end

-- Main state: number the threads, then gather what each counted.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

-- Thread state.
local pages, products, terms, tokens, emails
local hot, order_prefix, order_suffix, password
local sent = 0
statuses = {}

function init(_args)
  math.randomseed(os.time() * 1000 + id)
  pages, products, terms = lines("pages.txt"), lines("products.txt"), lines("terms.txt")
  tokens, emails = lines("tokens.txt"), lines("emails.txt")
  hot, password = lines("hot.txt")[1], lines("password.txt")[1]
  order_prefix, order_suffix = lines("order.txt")[1], lines("order.txt")[2]
end

local function order(product_id)
  sent = sent + 1
  return wrk.format("POST", "/orders", {
    ["Authorization"] = "Bearer " .. pick(tokens),
    ["Idempotency-Key"] = run .. "-" .. id .. "-" .. sent,
    ["Content-Type"] = "application/json",
  }, order_prefix .. product_id .. order_suffix)
end

local build = {
  ["listing"] = function() return wrk.format("GET", pick(pages)) end,
  ["baseline-listing"] = function() return wrk.format("GET", pick(pages)) end,
  ["detail"] = function() return wrk.format("GET", "/products/" .. pick(products)) end,
  ["search"] = function() return wrk.format("GET", "/products?q=" .. pick(terms)) end,
  ["place"] = function() return order(pick(products)) end,
  ["place-hot"] = function() return order(hot) end,
  ["baseline-update"] = function() return wrk.format("POST", "/reserve/" .. pick(products)) end,
  ["token"] = function()
    return wrk.format("POST", "/auth/token",
      { ["Content-Type"] = "application/x-www-form-urlencoded" },
      "grant_type=password&username=" .. pick(emails) .. "&password=" .. password)
  end,
}

request = build[scenario]
if request == nil then error("unknown BENCH_SCENARIO " .. tostring(scenario)) end

function response(status, _headers, _body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, _requests)
  local seen = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      seen[status] = (seen[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(seen) do parts[#parts + 1] = string.format('"%d": %d', status, count) end
  local errors = summary.errors
  io.write(string.format(
    '\n{"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "socket_errors": %d, "timeouts": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max,
    errors.connect + errors.read + errors.write, errors.timeout, table.concat(parts, ", ")))
end
