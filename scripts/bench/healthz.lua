-- wrk script: GET /healthz, which does no work: what the HTTP stack, the
-- middleware and the kernel cost on their own (the ceiling of any route).
request = function() return wrk.format("GET", "/healthz") end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
