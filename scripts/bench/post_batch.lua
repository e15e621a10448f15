-- wrk script: POST /v1/memories with 100 memories per request (one transaction each).
local counter = 0
local tag = "0"
init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  tag = tostring(math.random(1, 1e9))
end
request = function()
  counter = counter + 1
  local items = {}
  for i = 1, 100 do
    items[i] = string.format('{"namespace":["bench","batch","t%s"],"text":"batched memory %d of request %d"}', tag, i, counter)
  end
  return wrk.format("POST", "/v1/memories", { ["Content-Type"] = "application/json" },
    '{"memories":[' .. table.concat(items, ",") .. ']}')
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
