"""`flask seed`: the demo data of the seed README, created once however often it runs."""
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import Membership, OAuthClient, Organization, User
from idp.security.passwords import verify_password
from idp.security.secrets import check_client_secret


def test_seed_creates_demo_data_once(app):
    """Running seed twice leaves one organization, two users and one client."""
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed"])
    second = runner.invoke(args=["seed"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "users created=none" in second.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Organization)) == 1
        assert db.session.scalar(select(func.count()).select_from(User)) == 2
        assert db.session.scalar(select(func.count()).select_from(OAuthClient)) == 1


def test_seed_credentials_work(app):
    """The README's demo credentials verify, and roles match: admin owns Acme Corp, bob is a member."""
    app.test_cli_runner().invoke(args=["seed"])
    with app.app_context():
        admin = db.session.scalars(select(User).where(User.email == "admin@acme-corp.com")).one()
        bob = db.session.scalars(select(User).where(User.email == "bob@acme-corp.com")).one()
        assert verify_password("AdminPass123!", admin.password_hash) and admin.is_admin
        assert verify_password("UserPass123!", bob.password_hash) and not bob.is_admin
        roles = {m.user_id: m.role for m in db.session.scalars(select(Membership))}
        assert roles == {admin.id: "owner", bob.id: "member"}
        client = db.session.scalars(select(OAuthClient).where(OAuthClient.client_id == "acme-portal-001")).one()
        assert check_client_secret(client.client_secret_hash, "acme_secret_portal_2024")
        assert client.redirect_uris == ["http://localhost:3000/callback", "http://127.0.0.1:3000/callback"]
        assert client.post_logout_redirect_uris == ["http://localhost:3000/", "http://127.0.0.1:3000/"]
        assert set(client.grant_types) == {"authorization_code", "refresh_token", "client_credentials"}
        assert set(client.scope.split()) == {"openid", "profile", "email", "offline_access"}


def test_seed_gives_an_older_demo_client_the_127_0_0_1_post_logout_uri(app):
    """RPI Logout 3 matches post_logout_redirect_uri exactly: the demo client, which may send users to
    127.0.0.1:3000, must register http://127.0.0.1:3000/ too; a re-seed adds it to an existing client
    and keeps any URI an operator added."""
    app.test_cli_runner().invoke(args=["seed"])
    with app.app_context():
        client = db.session.scalars(select(OAuthClient).where(OAuthClient.client_id == "acme-portal-001")).one()
        client.post_logout_redirect_uris = ["http://localhost:3000/", "https://portal.acme.example/"]
        db.session.commit()
    assert app.test_cli_runner().invoke(args=["seed"]).exit_code == 0
    with app.app_context():
        client = db.session.scalars(select(OAuthClient).where(OAuthClient.client_id == "acme-portal-001")).one()
        assert client.post_logout_redirect_uris == ["http://localhost:3000/", "https://portal.acme.example/",
                                                    "http://127.0.0.1:3000/"]
