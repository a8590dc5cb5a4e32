"""The admin lists' `q` search (services.user_admin.users_query, services.client_admin.clients_query):
a part of a name or identifier, whatever the case, with LIKE's wildcards taken literally."""
from __future__ import annotations

from idp.extensions import db
from idp.services.client_admin import clients_query
from idp.services.user_admin import UserFilters, users_query


def test_user_search_takes_wildcards_literally(app, factories):
    percent = factories.user(email="percent@example.com", name="Other 100%")
    underscore = factories.user(email="under_score@example.com", name="Someone")
    slash = factories.user(email="slash@example.com", name="a/b\\c")
    factories.user(email="plain@example.com", name="Plain")
    with app.app_context():
        def found(q):
            return {user.id for user in db.session.scalars(users_query(UserFilters(q=q)))}
        assert found("%") == {percent.id}
        assert found("_") == {underscore.id}
        assert found("/b\\") == {slash.id}
        assert found("OTHER 1") == {percent.id}


def test_client_search_takes_wildcards_literally(app, factories):
    percent = factories.client(name="Shop 50%")
    underscore = factories.client(client_id="shop_app")
    factories.client(name="Plain", client_id="plain")
    with app.app_context():
        def found(q):
            return {client.id for client in db.session.scalars(clients_query(None, q=q))}
        assert found("%") == {percent.id}
        assert found("_") == {underscore.id}
        assert found("SHOP") == {percent.id, underscore.id}
