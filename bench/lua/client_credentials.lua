-- POST /oauth2/token with grant_type=client_credentials and client_secret_basic (RFC 6749 4.4).
-- Static request: no response() hook, so wrk's own Non-2xx count is the error count.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

local body = "grant_type=client_credentials"
local scope = os.getenv("BENCH_CC_SCOPE")
if scope and scope ~= "" then
  body = body .. "&scope=" .. common.urlencode(scope)
end

wrk.method = "POST"
wrk.path = common.env("BENCH_TOKEN_PATH", "/oauth2/token")
wrk.body = body
wrk.headers["Authorization"] = "Basic " .. common.env("BENCH_BASIC")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
