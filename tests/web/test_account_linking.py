"""The link-confirmation pages: an upstream identity joins an existing verified account only after its owner's
proof (password, or a mailed single-use link), and only in the browser that came back from the upstream."""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest
import time_machine
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, FederatedIdentity, Session, Upstream
from idp.services import upstreams
from tests.factories import DEFAULT_PASSWORD
from tests.federation.standins.oidc_provider import follow_authorize, running
from tests.web.helpers import csrf_from, link_in, submit

EXTERNAL = "/api/v1/auth/external"
ADA = "ada@gmail.com"


@pytest.fixture
def provider():
    yield from running("google")


@pytest.fixture
def mail_app(make_app, smtp_sink, provider):
    """The app mailing through the real SMTP sink, with a Google upstream at the stand-in."""
    app = make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, ISSUER="http://localhost")
    with app.app_context():
        upstream = Upstream(slug="google", kind="google", display_name="Google",
                            settings={"issuer": provider.issuer, "client_id": provider.client_id})
        upstreams.set_secrets(upstream, {"client_secret": provider.client_secret})
        db.session.add(upstream)
        db.session.commit()
    return app


@pytest.fixture
def owner(factories):
    """The existing, verified local account whose address the upstream identity also claims."""
    return factories.user(email=ADA, email_verified=True)


def come_back_from_google(client, query: str = "") -> str:
    """Start at our login, pass the stand-in's /authorize, return to the callback: the link page's path."""
    login = client.get(f"{EXTERNAL}/google/login{query}")
    params = follow_authorize(login.headers["Location"])
    response = client.get(f"{EXTERNAL}/google/callback?{urlencode(params)}")
    assert response.status_code == 302 and response.headers["Location"].startswith(f"{EXTERNAL}/link?link=")
    return response.headers["Location"]


def link_id(path: str) -> str:
    return path.split("link=")[1]


def prove_with_password(client, path: str, password: str):
    return submit(client, path, {"link": link_id(path), "password": password}, action=f"{EXTERNAL}/link")


def linked(app) -> list[FederatedIdentity]:
    with app.app_context():
        return db.session.scalars(select(FederatedIdentity)).all()


def mailed_confirm_path(client, path: str, smtp_sink) -> str:
    submit(client, path, {"link": link_id(path)}, action=f"{EXTERNAL}/link/mail")
    url = link_in(smtp_sink.wait_for(1)[0], "/link/confirm")
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def confirm_by_mail(client, confirm_path: str):
    return submit(client, confirm_path, {"token": confirm_path.split("token=")[1]}, action=f"{EXTERNAL}/link/confirm")


def test_link_page_says_the_account_exists_and_offers_both_proofs(mail_app, owner):
    """The page names the address and the provider and offers the password and the mailed link."""
    client = mail_app.test_client()
    page = client.get(come_back_from_google(client)).get_data(as_text=True)
    assert f"An account with <strong>{ADA}</strong> already exists" in page
    assert "To add Google as a way to sign in, prove it is yours" in page and "Email me a link" in page


def test_password_proof_links_and_signs_in(mail_app, owner):
    """The account's password proves control: the identity is linked, the browser signed in (amr fed, pwd; idp)."""
    client = mail_app.test_client()
    response = prove_with_password(client, come_back_from_google(client), DEFAULT_PASSWORD)
    assert (response.status_code, response.headers["Location"]) == (302, "/account")
    [identity] = linked(mail_app)
    assert identity.user_id == owner.id
    with mail_app.app_context():
        session = db.session.scalars(select(Session)).one()
        assert (session.amr, session.idp) == (["fed", "pwd"], "google")
        assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "federation.identity_linked")).one()


def test_password_proof_resumes_the_pending_authorization_request(mail_app, owner, factories):
    """After the proof the pending authorization request resumes, as after any sign-in."""
    rp = factories.client(first_party=True)
    client = mail_app.test_client()
    login = client.get("/oauth2/authorize?" + urlencode({
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": "https://rp.example/callback",
        "scope": "openid", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256"}))
    request_id = login.headers["Location"].split("request=")[1]
    path = come_back_from_google(client, f"?request={request_id}")
    response = prove_with_password(client, path, DEFAULT_PASSWORD)
    assert response.headers["Location"] == f"/oauth2/authorize/resume/{request_id}"


def test_wrong_password_links_nothing_and_counts_toward_lockout(mail_app, owner):
    """A wrong password links nothing (401); the password sign-in's lockout counts it: the 5th failure locks (429),
    and then even the right password is refused until the lock ends."""
    client = mail_app.test_client()
    path = come_back_from_google(client)
    assert [prove_with_password(client, path, "wrong-password").status_code for _ in range(4)] == [401] * 4
    assert prove_with_password(client, path, "wrong-password").status_code == 429
    assert prove_with_password(client, path, DEFAULT_PASSWORD).status_code == 429
    assert linked(mail_app) == []


def test_mailed_link_completes_in_the_same_browser(mail_app, owner, smtp_sink):
    """The single-use link mailed to the account's address links and signs in, in the browser that started."""
    client = mail_app.test_client()
    confirm = mailed_confirm_path(client, come_back_from_google(client), smtp_sink)
    assert "Add Google and sign in" in client.get(confirm).get_data(as_text=True)
    response = confirm_by_mail(client, confirm)
    assert (response.status_code, response.headers["Location"]) == (302, "/account")
    assert [identity.user_id for identity in linked(mail_app)] == [owner.id]
    assert client.get(confirm).status_code == 400  # single use


def test_mailed_link_clicked_in_another_browser_links_nothing(mail_app, owner, smtp_sink):
    """The attack: an attacker signs in upstream with an account claiming the victim's address, so the victim
    receives the mail; the victim's click (another browser, no binding cookie) must not link the attacker's
    identity (400), while the link still works only in the browser that started."""
    attacker = mail_app.test_client()
    confirm = mailed_confirm_path(attacker, come_back_from_google(attacker), smtp_sink)
    victim = mail_app.test_client()
    response = victim.get(confirm)
    assert response.status_code == 400 and "browser where you signed in" in response.get_data(as_text=True)
    assert linked(mail_app) == []
    with mail_app.app_context():
        assert db.session.scalars(select(Session)).all() == []


def test_link_page_in_another_browser_is_refused(mail_app, owner):
    """The pending link belongs to the browser that came back from the upstream: elsewhere it is refused (400)."""
    path = come_back_from_google(mail_app.test_client())
    other = mail_app.test_client()
    assert other.get(path).status_code == 400


def test_pending_link_expires_after_15_minutes(mail_app, owner):
    """A pending link lives 15 minutes."""
    client = mail_app.test_client()
    with time_machine.travel("2026-06-01 10:00:00", tick=False) as clock:
        path = come_back_from_google(client)
        clock.shift(14 * 60)
        assert client.get(path).status_code == 200
        clock.shift(2 * 60)
        assert client.get(path).status_code == 400


def test_passwordless_account_is_offered_the_mail_proof_only(mail_app, factories):
    """An account without a password (itself federated) can prove control by mail only."""
    factories.user(email=ADA, password=None)
    client = mail_app.test_client()
    page = client.get(come_back_from_google(client)).get_data(as_text=True)
    assert "Email me a link" in page and 'name="password"' not in page
    assert csrf_from(page)
