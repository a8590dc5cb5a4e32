-- GET with If-None-Match (RFC 9110 section 13.1.2): a client revalidating its cached discovery
-- document or JWKS. The ETag comes from BENCH_IF_NONE_MATCH; a 304 carries no body.
-- Static request: no response() hook, so wrk's own Non-2xx count is the error count.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

wrk.method = "GET"
wrk.headers["If-None-Match"] = common.env("BENCH_IF_NONE_MATCH")
