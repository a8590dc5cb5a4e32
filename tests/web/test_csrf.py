"""CSRF refusal on the hosted pages' forms (idp.web.csrf)."""
from __future__ import annotations

from tests.web.helpers import csrf_from, sign_in, submit



def test_post_without_csrf_token_is_refused_with_a_page(client, factories):
    """A form POST without its CSRF token answers 400 with an explanation, and nothing happens."""
    user = factories.user()
    response = client.post("/login", data={"email": user.email, "password": "Correct-Horse-42"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "text/html" in response.content_type
    assert "did not come from this site" in html
    assert client.get_cookie("authy2_session") is None


def test_post_with_forged_csrf_token_is_refused(client, factories):
    """A wrong CSRF token is refused like a missing one."""
    user = factories.user()
    client.get("/login")
    response = client.post("/login", data={"csrf_token": "forged", "email": user.email,
                                           "password": "Correct-Horse-42"})
    assert response.status_code == 400
    assert client.get_cookie("authy2_session") is None


def test_csrf_token_of_one_browser_does_not_work_in_another(app, factories):
    """A CSRF token is bound to its browser's form cookie."""
    user = factories.user()
    first, second = app.test_client(), app.test_client()
    token = csrf_from(first.get("/login").get_data(as_text=True))
    second.get("/login")
    response = second.post("/login", data={"csrf_token": token, "email": user.email, "password": "Correct-Horse-42"})
    assert response.status_code == 400


def test_https_form_post_from_another_origin_is_refused(make_app, factories):
    """Under HTTPS a POST whose Referer is another site is refused even with a valid token."""
    app = make_app(ISSUER="https://id.example.com")
    client = app.test_client()
    user = factories.user()
    response = submit(client, "/login", {"email": user.email, "password": "Correct-Horse-42"},
                      base_url="https://id.example.com", headers={"Referer": "https://evil.example/login"})
    assert response.status_code == 400


def test_every_state_changing_page_route_refuses_a_post_without_token(app, client, factories):
    """Each POST route of the hosted pages answers 400 without a CSRF token, even signed in (OWASP CSRF cheat sheet)."""
    sign_in(client, factories.user().email)
    cookie_before = client.get_cookie("authy2_session").value
    posts = [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("web.") and "POST" in rule.methods]
    assert len(posts) >= 8
    for rule in posts:
        path = rule.rule.replace("<session_id>", "x").replace("<client_id>", "x").replace("<request_id>", "x")
        response = client.post(path, data={"name": "Changed", "allow": "Allow"})
        assert response.status_code == 400, rule.rule
    assert client.get_cookie("authy2_session").value == cookie_before
    assert client.get("/account").status_code == 200
