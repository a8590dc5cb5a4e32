-- POST /api/v1/auth/login with the demo user's JSON credentials (a new API session each time).
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

wrk.method = "POST"
wrk.path = "/api/v1/auth/login"
wrk.body = '{"email": "' .. common.env("BENCH_LOGIN_EMAIL") .. '", "password": "' .. common.env("BENCH_LOGIN_PASSWORD") .. '"}'
wrk.headers["Content-Type"] = "application/json"
