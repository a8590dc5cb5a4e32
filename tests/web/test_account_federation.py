"""The account page's ways to sign in: linked upstream identities, unlinking them, linking another."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from html import unescape
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, FederatedIdentity, Upstream, User
from idp.services import upstreams
from idp.services.federated_identities import LAST_METHOD_MESSAGE
from tests.federation.standins.oidc_provider import follow_authorize, running
from tests.web.helpers import csrf_from, sign_in, submit

EXTERNAL = "/api/v1/auth/external"
FORM = re.compile(r'<form method="post" action="([^"]*)">(.*?)</form>', re.S)
HIDDEN = re.compile(r'<input[^>]*name="([^"]+)"[^>]*type="hidden"[^>]*value="([^"]*)"'
                    r'|<input type="hidden" name="([^"]+)" value="([^"]*)"')


@pytest.fixture
def provider():
    yield from running("google")


@pytest.fixture
def google(app, provider) -> str:
    """The platform upstream "google" (kind google) whose issuer is the stand-in."""
    with app.app_context():
        upstream = Upstream(slug="google", kind="google", display_name="Google",
                            settings={"issuer": provider.issuer, "client_id": provider.client_id})
        upstreams.set_secrets(upstream, {"client_secret": provider.client_secret})
        db.session.add(upstream)
        db.session.commit()
        return upstream.id


def link_identity(app, user, upstream_id: str, subject: str = "sub-1", email: str | None = "me@gmail.com",
                  first: datetime | None = None, last: datetime | None = None) -> str:
    with app.app_context():
        row = FederatedIdentity(upstream_id=upstream_id, user_id=user.id, subject=subject, email=email,
                                first_signed_in_at=first or datetime.now(timezone.utc),
                                last_signed_in_at=last or datetime.now(timezone.utc))
        db.session.add(row)
        db.session.commit()
        return row.id


def forms_on(html: str) -> dict[str, dict[str, str]]:
    """Each POST form on a page: its action -> its hidden fields."""
    forms = {}
    for action, body in FORM.findall(html):
        fields = {}
        for match in HIDDEN.finditer(body):
            name, value = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
            fields[unescape(name)] = unescape(value)
        forms[unescape(action)] = fields
    return forms


def identities(app) -> list[FederatedIdentity]:
    with app.app_context():
        return list(db.session.scalars(select(FederatedIdentity)))


def unlink(client, identity_id: str):
    return submit(client, "/account", {}, action=f"/account/sign-in-methods/{identity_id}/unlink")


def federated_round_trip(client, form_fields: dict | None = None):
    """The browser's trip through the stand-in: our login (GET, or the POSTed link form), /authorize, callback."""
    if form_fields is None:
        started = client.get(f"{EXTERNAL}/google/login")
    else:
        started = client.post(f"{EXTERNAL}/google/login", data=form_fields,
                              headers={"Referer": "http://localhost/account"})
    assert started.status_code == 302, started.get_data(as_text=True)
    params = follow_authorize(started.headers["Location"])
    return client.get(f"{EXTERNAL}/google/callback?{urlencode(params)}")


def test_listing_shows_each_method_with_first_and_last_use(app, client, factories, google):
    """Issue 10 "Account page": each linked method shows its provider, its mark, the upstream address and
    its first and last use."""
    user = factories.user()
    first, last = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc), datetime(2026, 3, 14, 16, 45, tzinfo=timezone.utc)
    identity_id = link_identity(app, user, google, email="grace@gmail.com", first=first, last=last)
    sign_in(client, user.email)
    html = client.get("/account").get_data(as_text=True)
    item = html[html.index(f'id="method-{identity_id}"'):]
    item = item[:item.index("</li>")]
    assert "Google" in item and "/static/upstreams/google.svg" in item and "grace@gmail.com" in item
    assert 'First used <time datetime="2026-01-05T09:30:00+00:00">05 Jan 2026, 09:30 UTC</time>' in item
    assert 'last used <time datetime="2026-03-14T16:45:00+00:00">14 Mar 2026, 16:45 UTC</time>' in item


def test_unlink_with_a_password_removes_the_method(app, client, factories, google):
    """Unlinking is allowed while a password remains: the identity goes, a success is audited."""
    user = factories.user()
    identity_id = link_identity(app, user, google)
    sign_in(client, user.email)
    response = unlink(client, identity_id)
    assert (response.status_code, response.headers["Location"]) == (302, "/account")
    assert identities(app) == []
    assert "You can no longer sign in with Google." in client.get("/account").get_data(as_text=True)
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "federation.identity_unlinked")).one()
        assert (event.outcome, event.details["upstream"]) == ("success", "google")


def test_unlinking_the_last_way_to_sign_in_is_refused_on_the_page(app, client, google, provider):
    """Issue 10: unlink is refused when it would leave no way to sign in: 409, the reason on the account
    page (not an error page), the identity still linked."""
    assert federated_round_trip(client).headers["Location"] == "/account"
    [identity] = identities(app)
    response = unlink(client, identity.id)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert 'id="sign-in-methods-error"' in html and unescape(html).count(LAST_METHOD_MESSAGE) == 1
    assert "Your profile" in html and f'id="method-{identity.id}"' in html
    assert [row.id for row in identities(app)] == [identity.id]
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "federation.identity_unlinked")).one()
        assert (event.outcome, event.details["reason"]) == ("failure", "last_method")


def test_unlinking_another_users_identity_is_a_404(app, client, factories, google):
    """An identity id of someone else's account is not found (404), and stays linked to its owner."""
    owner, intruder = factories.user(), factories.user()
    identity_id = link_identity(app, owner, google)
    sign_in(client, intruder.email)
    response = unlink(client, identity_id)
    assert (response.status_code, response.mimetype) == (404, "text/html")
    assert [(row.id, row.user_id) for row in identities(app)] == [(identity_id, owner.id)]


def test_unlink_without_the_csrf_token_is_refused(app, client, factories, google):
    """Unlinking changes the account: a POST without the form's CSRF token is refused (400) and unlinks nothing."""
    user = factories.user()
    identity_id = link_identity(app, user, google)
    sign_in(client, user.email)
    response = client.post(f"/account/sign-in-methods/{identity_id}/unlink")
    assert response.status_code == 400
    assert [row.id for row in identities(app)] == [identity_id]


def test_link_buttons_post_to_the_federation_login_with_a_csrf_token(app, client, factories, google):
    """One "Link" form per enabled platform upstream not yet linked, each a POST to
    /api/v1/auth/external/<slug>/login with intent=link and the page's CSRF token (linking is refused on GET)."""
    user = factories.user()
    github = factories.upstream("github", kind="github", display_name="GitHub")
    factories.upstream("off", kind="microsoft", display_name="Turned off", enabled=False)
    org = factories.organization()
    factories.upstream("org-saml", kind="saml", display_name="Org SSO", organization_id=org.id)
    link_identity(app, user, github.id)
    sign_in(client, user.email)
    html = client.get("/account").get_data(as_text=True)
    forms = forms_on(html)
    links = {action: fields for action, fields in forms.items() if action.startswith(EXTERNAL)}
    assert links == {f"{EXTERNAL}/google/login": {"csrf_token": csrf_from(html), "intent": "link"}}
    assert "Link Google" in html and "Link GitHub" not in html


def test_link_google_while_signed_in_lists_the_identity(app, client, factories, google, provider):
    """Link another while signed in, through the Google-shaped stand-in: the account page's form starts it, the
    callback links Google's identity to this account, and the page lists it without a Link button for it."""
    user = factories.user(email="me@example.com")
    sign_in(client, user.email)
    fields = forms_on(client.get("/account").get_data(as_text=True))[f"{EXTERNAL}/google/login"]
    response = federated_round_trip(client, fields)
    assert (response.status_code, response.headers["Location"]) == (302, "/account")
    html = client.get("/account").get_data(as_text=True)
    [identity] = identities(app)
    assert identity.user_id == user.id and identity.email == "ada@gmail.com"
    assert "You can now sign in with Google." in html and f'id="method-{identity.id}"' in html
    assert "ada@gmail.com" in html and "Link Google" not in html
    with app.app_context():
        assert db.session.get(User, user.id).email == "me@example.com"
