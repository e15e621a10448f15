-- wrk script: engram vector search, a random request body of $SEARCH_BODIES.
local bodies = {}
for line in io.lines(os.getenv("SEARCH_BODIES")) do bodies[#bodies + 1] = line end
init = function(args) math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16)) end
request = function()
  return wrk.format("POST", "/v1/memories/search", { ["Content-Type"] = "application/json" },
    bodies[math.random(#bodies)])
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
