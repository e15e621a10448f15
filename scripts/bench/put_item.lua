-- wrk script: durable LangGraph put_item without embedding (index=false), new keys.
local thread_tag = tostring(math.random(1, 1e9))
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format(
    '{"namespace":["bench","puts","t%s"],"key":"k%d","value":{"n":%d,"note":"a durable write without an embedding"},"index":false}',
    thread_tag, counter, counter)
  return wrk.format("PUT", "/store/items", { ["Content-Type"] = "application/json" }, body)
end
init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  thread_tag = tostring(math.random(1, 1e9))
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
