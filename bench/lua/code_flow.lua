-- The authorization code flow with PKCE on an existing SSO session (RFC 6749 4.1, RFC 7636,
-- OIDC Core 3.1): each connection alternates GET /oauth2/authorize (302 with ?code=) and
-- POST /oauth2/token exchanging that code. Codes wait in a per-thread FIFO, so any number of
-- connections keeps the pairs balanced. A flow counts when the token response carries an
-- access token and an ID token; refresh tokens are appended to a per-thread pool file that the
-- refresh scenario then spends.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

flows, codes_issued, authorize_failed, token_failed = 0, 0, 0, 0

local codes = {}
local sequence = 0
local pool_file = nil
local redirect_uri = common.env("BENCH_REDIRECT_URI")
local token_path = common.env("BENCH_TOKEN_PATH", "/oauth2/token")
local authorize_base = common.env("BENCH_AUTHORIZE_PATH", "/oauth2/authorize")
  .. "?response_type=code&client_id=" .. common.urlencode(common.env("BENCH_CLIENT_ID"))
  .. "&redirect_uri=" .. common.urlencode(redirect_uri)
  .. "&scope=" .. common.urlencode(common.env("BENCH_SCOPE"))
  .. "&code_challenge=" .. common.env("BENCH_CODE_CHALLENGE") .. "&code_challenge_method=S256"
local authorize_headers = { ["Cookie"] = common.env("BENCH_COOKIE") }
local token_headers = {
  ["Authorization"] = "Basic " .. common.env("BENCH_BASIC"),
  ["Content-Type"] = "application/x-www-form-urlencoded",
}
local token_body_tail = "&redirect_uri=" .. common.urlencode(redirect_uri)
  .. "&code_verifier=" .. common.env("BENCH_CODE_VERIFIER")

setup = common.setup

function init(args)
  local pool_dir = os.getenv("BENCH_POOL_DIR")
  if pool_dir and pool_dir ~= "" then
    pool_file = io.open(pool_dir .. "/refresh_" .. thread_id .. "_" .. os.time() .. ".txt", "a")
    pool_file:setvbuf("line")
  end
end

function request()
  local code = table.remove(codes, 1)
  if code then
    return wrk.format("POST", token_path, token_headers,
      "grant_type=authorization_code&code=" .. common.urlencode(code) .. token_body_tail)
  end
  sequence = sequence + 1
  local tag = thread_id .. "x" .. sequence
  return wrk.format("GET", authorize_base .. "&state=s" .. tag .. "&nonce=n" .. tag, authorize_headers)
end

function response(status, headers, body)
  local location = headers["Location"] or headers["location"]
  if location then
    local code = location:match("[?&]code=([^&#]+)")
    if status >= 300 and status < 400 and code then
      codes_issued = codes_issued + 1
      table.insert(codes, code)
    else
      authorize_failed = authorize_failed + 1
    end
    return
  end
  if status == 200 and body:find('"access_token"', 1, true) and body:find('"id_token"', 1, true) then
    flows = flows + 1
    local refresh = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if refresh and pool_file then pool_file:write(refresh, "\n") end
  elseif body:find('"error"', 1, true) then
    token_failed = token_failed + 1
  else
    authorize_failed = authorize_failed + 1
  end
end

function done(summary, latency, requests)
  common.report({ "flows", "codes_issued", "authorize_failed", "token_failed" })
end
