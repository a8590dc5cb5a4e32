"""Identity -> user: find by (upstream, subject), link, provision; each linking rule tested as the attack it stops."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from idp.errors import Conflict, NotFound
from idp.extensions import db
from idp.models import (AuditEvent, FederatedIdentity, Membership, PendingLink, Session, SessionKind, SessionStatus,
                        Upstream, User)
from idp.services import federated_identities, federated_sign_in, sessions
from idp.services.upstream_identity import UpstreamIdentity
from idp.services.upstream_logins import FederatedSignInRefused
from tests.conftest import DATABASE_URL

BROWSER = "b" * 64


@pytest.fixture
def rq(app):
    """A request context (the sign-in opens a browser session), rolled back afterwards."""
    with app.test_request_context("/", headers={"User-Agent": "pytest"}):
        yield
        db.session.rollback()


def make_upstream(slug: str = "acme-oidc", kind: str = "oidc", **fields) -> Upstream:
    upstream = Upstream(slug=slug, kind=kind, display_name=fields.pop("display_name", slug.title()),
                        settings={}, **fields)
    db.session.add(upstream)
    db.session.flush()
    return upstream


def ident(upstream: Upstream, subject: str = "sub-1", **fields) -> UpstreamIdentity:
    fields.setdefault("email", "alice@example.com")
    return UpstreamIdentity(upstream_id=upstream.id, subject=subject, **fields)


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.created_at)))


def refused(call) -> FederatedSignInRefused:
    with pytest.raises(FederatedSignInRefused) as info:
        call()
    return info.value


def test_first_sign_in_without_account_provisions_the_user(rq):
    """JIT: no local account has the address: the user is created (no password), linked and signed in with amr fed."""
    upstream = make_upstream()
    outcome = federated_sign_in.sign_in_identity(
        upstream, ident(upstream, email="Alice@Example.com", email_verified=True, name="Alice Liddell",
                        picture="https://cdn.example/a.png", upstream_session={"name_id": "n"}),
        browser_hash=BROWSER)
    user = outcome.user
    assert (user.email, user.password_hash, user.email_verified, user.name) == \
        ("alice@example.com", None, True, "Alice Liddell")
    assert user.picture == "https://cdn.example/a.png"
    assert db.session.scalars(select(FederatedIdentity)).one().user_id == user.id
    assert (outcome.session.amr, outcome.session.idp, outcome.session.upstream_session) == \
        (["fed"], "acme-oidc", {"name_id": "n"})
    assert actions() == ["federation.user_provisioned", "federation.sign_in"]


def test_provisioned_address_is_verified_only_when_the_upstream_vouches(rq):
    """nOAuth (2023): Microsoft's email arrives unverified, so the JIT account's address stays unverified."""
    upstream = make_upstream("microsoft", "microsoft")
    outcome = federated_sign_in.sign_in_identity(upstream, ident(upstream, email_verified=False), browser_hash=BROWSER)
    assert outcome.user.email_verified is False


def test_identity_without_email_is_refused(rq):
    """The users table needs an address: an upstream that shares none is refused with a clear reason."""
    upstream = make_upstream("github", "github")
    error = refused(lambda: federated_sign_in.sign_in_identity(upstream, ident(upstream, email=None),
                                                               browser_hash=BROWSER))
    assert (error.reason, error.status) == ("email_missing", 400)
    assert db.session.scalar(select(func.count(User.id))) == 0


def test_known_identity_signs_in_and_refreshes_the_profile(rq, factories):
    """The key is (upstream, subject), not the address: a changed upstream e-mail still finds the same user,
    whose profile follows the upstream."""
    upstream = make_upstream()
    user = db.session.get(User, factories.user(email="alice@example.com", name="Old Name").id)
    db.session.add(FederatedIdentity(upstream_id=upstream.id, user_id=user.id, subject="sub-1"))
    outcome = federated_sign_in.sign_in_identity(
        upstream, ident(upstream, email="renamed@elsewhere.example", name="New Name", given_name="New"),
        browser_hash=BROWSER)
    assert outcome.user.id == user.id and outcome.session is not None
    assert (user.name, user.given_name, user.email) == ("New Name", "New", "alice@example.com")
    assert db.session.scalars(select(FederatedIdentity)).one().email == "renamed@elsewhere.example"


def test_known_identity_of_a_disabled_user_is_refused(rq, factories):
    """A disabled account cannot sign in through an upstream either: 403, no session."""
    upstream = make_upstream()
    user = factories.user(is_active=False)
    db.session.add(FederatedIdentity(upstream_id=upstream.id, user_id=user.id, subject="sub-1"))
    error = refused(lambda: federated_sign_in.sign_in_identity(upstream, ident(upstream), browser_hash=BROWSER))
    assert (error.reason, error.status) == ("user_disabled", 403)
    assert db.session.scalar(select(func.count(Session.id))) == 0


def test_verified_local_account_is_never_linked_silently(rq, factories):
    """Keycloak/Zitadel account-linking takeovers (2025-2026): an upstream identity claiming a verified account's
    address, even one the upstream verified, only creates a pending link bound to this browser; nothing is linked."""
    upstream = make_upstream("google", "google")
    owner = factories.user(email="alice@example.com", email_verified=True)
    outcome = federated_sign_in.sign_in_identity(upstream, ident(upstream, email_verified=True), browser_hash=BROWSER,
                                                 authorization_request_id="req-1")
    assert outcome.session is None and outcome.pending_link is not None
    link = db.session.scalars(select(PendingLink)).one()
    assert (link.user_id, link.browser_hash, link.authorization_request_id) == (owner.id, BROWSER, "req-1")
    assert db.session.scalar(select(func.count(FederatedIdentity.id))) == 0
    assert db.session.scalar(select(func.count(Session.id))) == 0


def test_microsoft_email_claiming_a_verified_account_needs_proof(rq, factories):
    """nOAuth (Descope, 2023): a Microsoft identity whose unverified `email` names an existing account is never
    linked without the owner's proof."""
    upstream = make_upstream("microsoft", "microsoft")
    factories.user(email="victim@example.com", email_verified=True)
    outcome = federated_sign_in.sign_in_identity(
        upstream, ident(upstream, subject="tid:oid", email="victim@example.com", email_verified=False),
        browser_hash=BROWSER)
    assert outcome.pending_link is not None and outcome.session is None
    assert db.session.scalar(select(func.count(FederatedIdentity.id))) == 0


def test_unverified_account_is_neutralised_before_a_verified_identity_takes_it(rq, factories):
    """Pre-account-hijacking (Sudhodanan & Paverd, USENIX Security 2022): the attacker's password, sessions and
    linked identities stop working before the verified upstream identity gets the account."""
    google, attacker_idp = make_upstream("google", "google"), make_upstream("other")
    squatter = db.session.get(User, factories.user(email="alice@example.com", email_verified=False).id)
    _, _ = sessions.create_session(squatter, kind=SessionKind.API)
    db.session.add(FederatedIdentity(upstream_id=attacker_idp.id, user_id=squatter.id, subject="attacker"))
    outcome = federated_sign_in.sign_in_identity(google, ident(google, email_verified=True), browser_hash=BROWSER)
    assert outcome.user.id == squatter.id and outcome.session is not None
    assert (squatter.password_hash, squatter.email_verified) == (None, True)
    statuses = {s.id: s.status for s in db.session.scalars(select(Session))}
    assert statuses.pop(outcome.session.id) == SessionStatus.ACTIVE.value
    assert set(statuses.values()) == {SessionStatus.REVOKED.value}
    assert [(i.upstream_id, i.subject) for i in db.session.scalars(select(FederatedIdentity))] == [(google.id, "sub-1")]
    assert "federation.unverified_account_reclaimed" in actions()


def test_unverified_identity_never_captures_an_unverified_account(rq, factories):
    """nOAuth + pre-hijacking: an identity whose address the upstream does not vouch for is refused, and the
    unverified account is left exactly as it was."""
    upstream = make_upstream("microsoft", "microsoft")
    account = db.session.get(User, factories.user(email="alice@example.com", email_verified=False).id)
    error = refused(lambda: federated_sign_in.sign_in_identity(upstream, ident(upstream, email_verified=False),
                                                               browser_hash=BROWSER))
    assert (error.reason, error.status) == ("email_unverified", 400)
    assert "verify the address" in error.message.lower()
    assert account.password_hash is not None and account.email_verified is False
    assert db.session.scalar(select(func.count(FederatedIdentity.id))) == 0


def test_github_unverified_address_never_reclaims(rq, factories):
    """GitHub's unverified addresses arrive unverified: they neither reclaim nor link."""
    upstream = make_upstream("github", "github")
    factories.user(email="alice@example.com", email_verified=False)
    error = refused(lambda: federated_sign_in.sign_in_identity(upstream, ident(upstream, subject="4242"),
                                                               browser_hash=BROWSER))
    assert error.reason == "email_unverified"


def test_link_purpose_links_to_the_signed_in_user_whatever_the_address(rq, factories):
    """A signed-in user adds a sign-in method: linked to that user, no new session."""
    upstream = make_upstream("github", "github")
    user = factories.user(email="me@example.com")
    outcome = federated_sign_in.sign_in_identity(upstream, ident(upstream, email="other@example.org"),
                                                 browser_hash=BROWSER, purpose="link", link_user_id=user.id)
    assert outcome.user.id == user.id and outcome.session is None
    assert db.session.scalars(select(FederatedIdentity)).one().user_id == user.id
    assert actions() == ["federation.identity_linked"]


def test_link_purpose_refuses_an_identity_of_another_account(rq, factories):
    """An identity linked to one account cannot be linked to a second one (identity_in_use)."""
    upstream = make_upstream()
    first, second = factories.user(), factories.user()
    db.session.add(FederatedIdentity(upstream_id=upstream.id, user_id=first.id, subject="sub-1"))
    error = refused(lambda: federated_sign_in.sign_in_identity(upstream, ident(upstream), browser_hash=BROWSER,
                                                               purpose="link", link_user_id=second.id))
    assert (error.reason, error.status) == ("identity_in_use", 400)


def test_identity_from_another_upstream_is_refused(rq):
    """Mix-up: an identity that names another upstream than the one answering is refused."""
    one, other = make_upstream("one"), make_upstream("two")
    error = refused(lambda: federated_sign_in.sign_in_identity(one, ident(other), browser_hash=BROWSER))
    assert error.reason == "identity_other_upstream"


def _org_upstream(factories, **fields):
    organization = factories.organization()
    return organization, make_upstream("acme-saml", "saml", organization_id=organization.id, **fields)


def _role(organization, user_id) -> str:
    return db.session.scalars(select(Membership.role).where(Membership.organization_id == organization.id,
                                                            Membership.user_id == user_id)).one()


def test_organization_upstream_adds_its_users_as_members(rq, factories):
    """An organization's upstream makes its users members, role member by default."""
    organization, upstream = _org_upstream(factories)
    outcome = federated_sign_in.sign_in_identity(upstream, ident(upstream, email_verified=True), browser_hash=BROWSER)
    assert _role(organization, outcome.user.id) == "member"


def test_role_mapping_follows_groups_but_never_grants_owner(rq, factories):
    """The role mapping sets the role from the groups at each sign-in (removed from the group: back to member),
    and never grants owner even when mapped."""
    mapping = {"claim": "groups", "map": {"idp-admins": "admin", "idp-owners": "owner"}}
    organization, upstream = _org_upstream(factories, role_mapping=mapping)
    user = federated_sign_in.sign_in_identity(upstream, ident(upstream, groups=("idp-admins", "staff")),
                                              browser_hash=BROWSER).user
    assert _role(organization, user.id) == "admin"
    federated_sign_in.sign_in_identity(upstream, ident(upstream, groups=("idp-owners",)), browser_hash=BROWSER)
    assert _role(organization, user.id) == "member"


def test_role_mapping_never_demotes_an_owner(rq, factories):
    """An owner stays owner whatever the upstream's groups say."""
    organization, upstream = _org_upstream(factories, role_mapping={"claim": "groups", "map": {"x": "admin"}})
    owner = factories.user(email="alice@example.com")
    factories.membership(organization, owner, "owner")
    db.session.add(FederatedIdentity(upstream_id=upstream.id, user_id=owner.id, subject="sub-1"))
    federated_sign_in.sign_in_identity(upstream, ident(upstream, groups=()), browser_hash=BROWSER)
    assert _role(organization, owner.id) == "owner"


def test_unlink_is_refused_when_it_would_leave_no_way_to_sign_in(rq, factories):
    """A passwordless account keeps its last identity; with a second one it may unlink the first (audited)."""
    one, two = make_upstream("one"), make_upstream("two")
    user = db.session.get(User, factories.user(password=None).id)
    first = FederatedIdentity(upstream_id=one.id, user_id=user.id, subject="a")
    db.session.add(first)
    db.session.flush()
    with pytest.raises(Conflict):
        federated_identities.unlink_identity(user, first.id)
    db.session.add(FederatedIdentity(upstream_id=two.id, user_id=user.id, subject="b"))
    db.session.flush()
    assert [i.upstream_slug for i in federated_identities.list_identities(user)] in (["one", "two"], ["two", "one"])
    federated_identities.unlink_identity(user, first.id)
    assert [i.upstream_slug for i in federated_identities.list_identities(user)] == ["two"]
    assert "federation.identity_unlinked" in actions()


def test_unlink_of_someone_elses_identity_is_not_found(rq, factories):
    """One user cannot unlink (or learn of) another user's identity: 404."""
    upstream = make_upstream()
    owner, other = factories.user(), db.session.get(User, factories.user().id)
    row = FederatedIdentity(upstream_id=upstream.id, user_id=owner.id, subject="a")
    db.session.add(row)
    db.session.flush()
    with pytest.raises(NotFound):
        federated_identities.unlink_identity(other, row.id)


def test_saml_logout_ends_the_sessions_of_that_name_id_only(rq, factories):
    """SAML 2.0 Profiles 4.4: a LogoutRequest ends the sessions of the NameID (and SessionIndex) it names."""
    upstream = make_upstream("acme-saml", "saml")
    user = db.session.get(User, factories.user().id)
    mine, _ = sessions.create_session(user, kind=SessionKind.BROWSER)
    other, _ = sessions.create_session(user, kind=SessionKind.BROWSER)
    mine.idp, mine.upstream_session = "acme-saml", {"name_id": "n1", "session_index": "s1"}
    other.idp, other.upstream_session = "acme-saml", {"name_id": "n2", "session_index": "s2"}
    ended = federated_sign_in.end_upstream_sessions(upstream, "n1", ("s1",))
    assert ended.ended_ids == [mine.id] and other.status == SessionStatus.ACTIVE.value


@pytest.mark.postgres
def test_twenty_concurrent_first_sign_ins_create_one_user(app, make_app):
    """20 racing first sign-ins of one new identity create exactly one user and one identity (the unique
    constraints, caught in a SAVEPOINT and decided again), and every one of them signs in."""
    with app.app_context():
        upstream_id = make_upstream().id
        db.session.commit()
    barrier, results = threading.Barrier(20), []

    def attempt():
        with app.test_request_context("/"):
            barrier.wait(timeout=30)  # before any query: the pool lends connections as they come back
            upstream = db.session.get(Upstream, upstream_id)
            identity = UpstreamIdentity(upstream_id=upstream_id, subject="racer", email="racer@example.com",
                                        email_verified=True)
            outcome = federated_sign_in.sign_in_identity(upstream, identity, browser_hash=BROWSER)
            db.session.commit()
            results.append(outcome.user.id)
            db.session.remove()

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app.app_context():
        assert db.session.scalar(select(func.count(User.id))) == 1
        assert db.session.scalar(select(func.count(FederatedIdentity.id))) == 1
        assert len(results) == 20 and len(set(results)) == 1
    assert DATABASE_URL.startswith("postgresql")


def test_verifying_the_address_by_mail_unlinks_identities_that_never_proved_it(rq):
    """Pre-account-hijacking via JIT (Sudhodanan & Paverd 2022, "trojan identifier"): an attacker's Microsoft identity
    claiming the victim's address provisions an unverified account; when the real owner verifies the address by
    mail (verification link or password reset), that identity is unlinked and can no longer sign in."""
    from idp.models import TokenPurpose
    from idp.services import email_verification
    from idp.services.account_tokens import issue_token

    microsoft = make_upstream("microsoft", "microsoft")
    squatted = federated_sign_in.sign_in_identity(
        microsoft, ident(microsoft, subject="attacker", email="victim@example.com"), browser_hash=BROWSER).user
    assert squatted.email_verified is False
    email_verification.verify_email(issue_token(squatted, TokenPurpose.VERIFY_EMAIL))
    assert squatted.email_verified is True
    assert db.session.scalar(select(func.count(FederatedIdentity.id))) == 0
    outcome = federated_sign_in.sign_in_identity(
        microsoft, ident(microsoft, subject="attacker", email="victim@example.com"), browser_hash=BROWSER)
    assert outcome.session is None and outcome.pending_link is not None  # now needs the owner's proof


def test_password_reset_unlinks_identities_linked_while_the_address_was_unproven(rq):
    """The same attack, finished by the owner's password reset: the reset proves the address and unlinks them."""
    from idp.models import TokenPurpose
    from idp.services import password_reset
    from idp.services.account_tokens import issue_token

    microsoft = make_upstream("microsoft", "microsoft")
    squatted = federated_sign_in.sign_in_identity(
        microsoft, ident(microsoft, subject="attacker", email="victim@example.com"), browser_hash=BROWSER).user
    password_reset.reset_password(issue_token(squatted, TokenPurpose.RESET_PASSWORD), "Quiet-Harbour-Lights-9")
    assert db.session.scalar(select(func.count(FederatedIdentity.id))) == 0
