-- wrk script: GET /v1/memories/{id} for random ids from $IDS_FILE.
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/v1/memories/" .. ids[math.random(#ids)])
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
