-- wrk script: engram keyword search for one of a few words (POST /v1/memories/search).
local words = {"river", "garden", "music", "travel", "kitchen", "letter", "winter", "market"}
init = function(args) math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16)) end
request = function()
  local body = string.format('{"query":"%s","mode":"keyword","limit":10}', words[math.random(#words)])
  return wrk.format("POST", "/v1/memories/search", { ["Content-Type"] = "application/json" }, body)
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
