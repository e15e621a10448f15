-- wrk script: engram put of a new item with its vector (POST /v1/memories,
-- one keyed memory), the texts and vectors replayed from $PUT_BODIES, over
-- 16 namespaces a thread (LangGraph's peer puts into one per task).
local bodies = {}
for line in io.lines(os.getenv("PUT_BODIES")) do bodies[#bodies + 1] = line end
local tag, counter = "0", 0
init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  tag = tostring(math.random(1, 1e9))
end
request = function()
  counter = counter + 1
  local body = string.format('{"memories":[{"namespace":["bench","puts","t%sw%d"],"key":"k%d",%s}]}',
    tag, counter % 16, counter, bodies[(counter % #bodies) + 1])
  return wrk.format("POST", "/v1/memories", { ["Content-Type"] = "application/json" }, body)
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
