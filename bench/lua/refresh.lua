-- POST /oauth2/token with grant_type=refresh_token (RFC 6749 section 6). Refresh tokens rotate on
-- every use, so every request spends a token never used before: each thread starts from its share
-- of the pre-minted pool (BENCH_POOL_FILE, one token a line) and queues the rotated token each
-- response returns. A thread with nothing left to spend stops and reports it as `starved`.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

refreshed, refresh_failed, starved = 0, 0, 0

local tokens = {}
local token_path = common.env("BENCH_TOKEN_PATH", "/oauth2/token")
local headers = {
  ["Authorization"] = "Basic " .. common.env("BENCH_BASIC"),
  ["Content-Type"] = "application/x-www-form-urlencoded",
}

setup = common.setup

function init(args)
  local index = 0
  for line in io.lines(common.env("BENCH_POOL_FILE")) do
    if line ~= "" and index % thread_count == thread_id then
      table.insert(tokens, line)
    end
    index = index + 1
  end
end

function request()
  local token = table.remove(tokens)
  if token == nil then
    starved = 1
    wrk.thread:stop()
    return wrk.format("GET", "/.well-known/openid-configuration")
  end
  return wrk.format("POST", token_path, headers, "grant_type=refresh_token&refresh_token=" .. common.urlencode(token))
end

function response(status, headers, body)
  local rotated = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if status == 200 and body:find('"access_token"', 1, true) then
    refreshed = refreshed + 1
    if rotated then table.insert(tokens, rotated) end
  elseif status == 200 then
    return
  else
    refresh_failed = refresh_failed + 1
  end
end

function done(summary, latency, requests)
  common.report({ "refreshed", "refresh_failed", "starved" })
end
