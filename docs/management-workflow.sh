#!/usr/bin/env bash
# The management API end to end over HTTP (issue #11):
#   1. the platform admin signs in to the API (POST /api/v1/auth/login);
#   2. creates a platform-wide service-account client, grant client_credentials, scope manage:clients;
#   3. that client gets an access token by client_credentials (RFC 6749 4.4) at /oauth2/token;
#   4. and with it registers a relying party (POST /api/v1/clients), redirect URI on loopback;
#   5. the admin signs in on the hosted page (cookie jar, CSRF token read from the form);
#   6. the relying party runs the authorization code flow with PKCE S256 (RFC 7636): authorize on the
#      SSO session, consent, code, token exchange;
#   7. the ID token's signature is checked against /oauth2/jwks (RS256) with iss, aud, nonce and exp,
#      and its claims are printed (stdout: JSON; progress goes to stderr).
#
# Needs bash, curl and python3 (standard library only). With `make run` serving http://localhost:5000:
#   docs/management-workflow.sh
# Environment: IDP_URL (default http://localhost:5000), ADMIN_EMAIL and ADMIN_PASSWORD (default: the demo
# platform admin), RP_REDIRECT_URI (default http://127.0.0.1:8765/callback; nothing has to listen there,
# the script reads the code from the redirect). The two clients it creates stay registered: see them with
# GET /api/v1/clients.
set -euo pipefail

IDP_URL="${IDP_URL:-http://localhost:5000}"
IDP_URL="${IDP_URL%/}"
ADMIN_EMAIL="${ADMIN_EMAIL:-admin@acme-corp.com}"
ADMIN_PASSWORD="${ADMIN_PASSWORD:-AdminPass123!}"
RP_REDIRECT_URI="${RP_REDIRECT_URI:-http://127.0.0.1:8765/callback}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
BODY="$WORK/body"
JAR="$WORK/cookies"

step() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# field FILE PATH: the value at a dotted PATH (e.g. data.client_id) of a JSON file; objects as JSON.
field() {
  python3 -c '
import json, sys
value = json.load(open(sys.argv[1]))
for part in sys.argv[2].split("."):
    value = value[int(part)] if isinstance(value, list) else value[part]
print(value if isinstance(value, str) else json.dumps(value))' "$1" "$2"
}

# http METHOD URL [curl options]: the body goes to $BODY; prints "STATUS REDIRECT_URL" (never follows).
http() {
  local method="$1" url="$2"
  shift 2
  curl -sS -o "$BODY" -w '%{http_code} %{redirect_url}\n' -X "$method" -b "$JAR" -c "$JAR" "$url" "$@"
}

# expect WANTED STATUS WHAT: stop with the answer's body unless STATUS is WANTED.
expect() {
  [ "$2" = "$1" ] || die "$3 answered HTTP $2, expected $1: $(head -c 2000 "$BODY")"
}

# api METHOD PATH TOKEN JSON: a management API call with a bearer token and a JSON body.
api() {
  http "$1" "$IDP_URL$2" -H "Authorization: Bearer $3" -H "Content-Type: application/json" \
    -H "Accept: application/json" --data-binary "$4"
}

# csrf_token: the Flask-WTF token of the form in the page just fetched.
csrf_token() {
  python3 -c '
import html, re, sys
found = re.search(r"<input[^>]*name=\"csrf_token\"[^>]*value=\"([^\"]+)\"", open(sys.argv[1]).read())
sys.exit("no CSRF token in the page") if not found else print(html.unescape(found.group(1)))' "$BODY"
}

random_value() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }

step "1. platform admin $ADMIN_EMAIL signs in to the API"
read -r status _ < <(http POST "$IDP_URL/api/v1/auth/login" -H "Content-Type: application/json" \
  --data-binary "$(python3 -c 'import json, sys; print(json.dumps({"email": sys.argv[1], "password": sys.argv[2]}))' \
    "$ADMIN_EMAIL" "$ADMIN_PASSWORD")")
expect 200 "$status" "POST /api/v1/auth/login"
ADMIN_TOKEN="$(field "$BODY" data.token)"

step "2. the admin creates a platform-wide service account with manage:clients"
read -r status _ < <(api POST /api/v1/clients "$ADMIN_TOKEN" '{"client_name": "Workflow service account",
  "grant_types": ["client_credentials"], "response_types": [], "redirect_uris": [], "scope": "manage:clients",
  "token_endpoint_auth_method": "client_secret_basic"}')
expect 201 "$status" "POST /api/v1/clients (service account)"
SA_ID="$(field "$BODY" data.client_id)"
SA_SECRET="$(field "$BODY" data.client_secret)"
step "   service account $SA_ID (its secret is shown once, in this answer only)"

step "3. the service account gets an access token by client_credentials"
read -r status _ < <(http POST "$IDP_URL/oauth2/token" -u "$SA_ID:$SA_SECRET" \
  --data-urlencode grant_type=client_credentials --data-urlencode scope=manage:clients)
expect 200 "$status" "POST /oauth2/token (client_credentials)"
SA_TOKEN="$(field "$BODY" access_token)"

step "4. the service account registers a relying party redirecting to $RP_REDIRECT_URI"
read -r status _ < <(api POST /api/v1/clients "$SA_TOKEN" "$(python3 -c 'import json, sys; print(json.dumps({
  "client_name": "Workflow relying party", "redirect_uris": [sys.argv[1]], "grant_types": ["authorization_code"],
  "response_types": ["code"], "scope": "openid profile email", "token_endpoint_auth_method": "client_secret_basic",
  "require_pkce": True}))' "$RP_REDIRECT_URI")")
expect 201 "$status" "POST /api/v1/clients (relying party, with the service account's token)"
RP_ID="$(field "$BODY" data.client_id)"
RP_SECRET="$(field "$BODY" data.client_secret)"
step "   relying party $RP_ID"

step "5. the admin signs in on the hosted page (SSO session cookie)"
read -r status _ < <(http GET "$IDP_URL/login")
expect 200 "$status" "GET /login"
read -r status _ < <(http POST "$IDP_URL/login" --data-urlencode "csrf_token=$(csrf_token)" \
  --data-urlencode "email=$ADMIN_EMAIL" --data-urlencode "password=$ADMIN_PASSWORD")
expect 302 "$status" "POST /login"

step "6. authorization code flow with PKCE S256, state and nonce"
STATE="$(random_value)"
NONCE="$(random_value)"
VERIFIER="$(random_value)$(random_value)"
CHALLENGE="$(python3 -c 'import base64, hashlib, sys
print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).decode().rstrip("="))' "$VERIFIER")"
location="$IDP_URL/oauth2/authorize?$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlencode({
  "response_type": "code", "client_id": sys.argv[1], "redirect_uri": sys.argv[2], "scope": "openid profile email",
  "state": sys.argv[3], "nonce": sys.argv[4], "code_challenge": sys.argv[5], "code_challenge_method": "S256"}))' \
  "$RP_ID" "$RP_REDIRECT_URI" "$STATE" "$NONCE" "$CHALLENGE")"
for _ in $(seq 10); do
  case "$location" in "$RP_REDIRECT_URI"*) break ;; esac
  read -r status next < <(http GET "$location")
  if [ "$status" = 200 ] && grep -q 'name="allow"' "$BODY"; then
    step "   consent: allow $RP_ID"
    read -r status next < <(http POST "$location" --data-urlencode "csrf_token=$(csrf_token)" --data-urlencode allow=Allow)
  fi
  case "$status" in 302 | 303) location="$next" ;; *) die "GET $location answered HTTP $status: $(head -c 2000 "$BODY")" ;; esac
done
case "$location" in "$RP_REDIRECT_URI"*) ;; *) die "the flow never reached $RP_REDIRECT_URI (last: $location)" ;; esac
CODE="$(python3 -c 'import sys, urllib.parse
query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(sys.argv[1]).query))
sys.exit("redirect without a code: " + sys.argv[1]) if "code" not in query else None
sys.exit("state differs: " + sys.argv[1]) if query.get("state") != sys.argv[2] else None
sys.exit("iss differs (RFC 9207): " + sys.argv[1]) if query.get("iss") != sys.argv[3] else None
print(query["code"])' "$location" "$STATE" "$IDP_URL")"

read -r status _ < <(http POST "$IDP_URL/oauth2/token" -u "$RP_ID:$RP_SECRET" \
  --data-urlencode grant_type=authorization_code --data-urlencode "code=$CODE" \
  --data-urlencode "redirect_uri=$RP_REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER")
expect 200 "$status" "POST /oauth2/token (authorization_code)"
ID_TOKEN="$(field "$BODY" id_token)"

step "7. the ID token, its RS256 signature checked against /oauth2/jwks"
read -r status _ < <(http GET "$IDP_URL/oauth2/jwks")
expect 200 "$status" "GET /oauth2/jwks"
python3 - "$ID_TOKEN" "$BODY" "$IDP_URL" "$RP_ID" "$NONCE" <<'PY'
import base64, hashlib, json, sys, time

token, jwks_path, issuer, client_id, nonce = sys.argv[1:6]


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


header_part, claims_part, signature_part = token.split(".")
header, claims = json.loads(unb64(header_part)), json.loads(unb64(claims_part))
key = next((k for k in json.load(open(jwks_path))["keys"] if k["kid"] == header.get("kid")), None)
if key is None or header.get("alg") != "RS256" or key.get("kty") != "RSA":
    sys.exit(f"no published RS256 key for the ID token's header {header}")
# RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 8.2.2, RFC 7518 3.3): the signature, raised to e mod n, is the
# padded DigestInfo of the signing input.
n, e = (int.from_bytes(unb64(key[name]), "big") for name in ("n", "e"))
size = (n.bit_length() + 7) // 8
digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + \
    hashlib.sha256(f"{header_part}.{claims_part}".encode()).digest()
expected = b"\x00\x01" + b"\xff" * (size - len(digest_info) - 3) + b"\x00" + digest_info
if pow(int.from_bytes(unb64(signature_part), "big"), e, n).to_bytes(size, "big") != expected:
    sys.exit("the ID token's signature does not verify")
audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
problems = [name for name, good in [("iss", claims.get("iss") == issuer), ("aud", client_id in audience),
                                    ("nonce", claims.get("nonce") == nonce), ("exp", claims.get("exp", 0) > time.time())]
            if not good]
if problems:
    sys.exit(f"ID token claims do not check out: {', '.join(problems)}")
print(json.dumps(claims, indent=2, sort_keys=True))
PY
step "done: $ADMIN_EMAIL signed in to $RP_ID, the relying party that service account $SA_ID registered"
