-- wrk script: LangGraph get_item (GET /store/items?namespace=..&key=..) on
-- seeded items $ITEM_NS.g<i % 100> / k<i> (default bench.items).
local n = tonumber(os.getenv("ITEMS"))
local ns = os.getenv("ITEM_NS") or "bench.items"
math.randomseed(os.time())
request = function()
  local i = math.random(n) - 1
  return wrk.format("GET", string.format("/store/items?namespace=%s.g%d&key=k%d", ns, i % 100, i))
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
