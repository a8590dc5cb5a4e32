"""Authorization response URIs (RFC 6749 4.1.2, 3.1.2)."""
from urllib.parse import parse_qsl, urlsplit

from idp.oidc.responses import with_query


def test_with_query_appends_encoded_params_to_a_plain_redirect_uri():
    """RFC 6749 4.1.2: the code, state and iss go in the query, form-urlencoded."""
    uri = with_query("https://rp.example/cb", [("code", "a b"), ("state", "x&y=z"), ("iss", "https://idp")])
    parts = urlsplit(uri)
    assert parts.scheme == "https" and parts.netloc == "rp.example" and parts.path == "/cb"
    assert parse_qsl(parts.query) == [("code", "a b"), ("state", "x&y=z"), ("iss", "https://idp")]


def test_with_query_keeps_the_redirect_uris_own_query():
    """RFC 6749 3.1.2: the registered URI's query component is retained when parameters are added."""
    uri = with_query("https://rp.example/cb?tenant=7", [("code", "c1")])
    assert urlsplit(uri).path == "/cb"
    assert parse_qsl(urlsplit(uri).query) == [("tenant", "7"), ("code", "c1")]
