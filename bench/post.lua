-- wrk: POST the body in the file named by BENCH_BODY (read once, sent on every request).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- BENCH_ENCODING: the body file is compressed with this coding (gzip bodies, as SDKs send them).
local encoding = os.getenv("BENCH_ENCODING")
if encoding ~= nil and encoding ~= "" then
  wrk.headers["Content-Encoding"] = encoding
end
local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()
