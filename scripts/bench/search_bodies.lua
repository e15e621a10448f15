-- wrk script: POST /v1/memories/search with the bodies in $BODIES (one JSON
-- object per line, from search_bodies.py), in order, round and round.
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/v1/memories/search", { ["Content-Type"] = "application/json" }, bodies[i])
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
