-- wrk script: LangGraph get_item (GET /store/items?namespace=..&key=..) on seeded items.
local n = tonumber(os.getenv("ITEMS"))
math.randomseed(os.time())
request = function()
  local i = math.random(n) - 1
  return wrk.format("GET", string.format("/store/items?namespace=bench.items.g%d&key=k%d", i % 100, i))
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
