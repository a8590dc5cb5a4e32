"""Alembic migrations are the only way the schema is made: they run both ways and match the models."""
from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from idp.extensions import db
from tests.conftest import DATABASE_URL, _TMP


@pytest.fixture
def empty_database_url():
    """A brand-new, empty database on the same server as the test database."""
    if not DATABASE_URL.startswith("postgresql"):
        yield f"sqlite:///{_TMP}/migrations-{uuid.uuid4().hex}.db"
        return
    name = f"authy2_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _schema_diff(app) -> list:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_upgrade_downgrade_upgrade_matches_models(make_app, empty_database_url):
    """upgrade -> downgrade base -> upgrade works, and the migrated schema equals the models."""
    app = make_app(SQLALCHEMY_DATABASE_URI=empty_database_url)
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert _schema_diff(app) == []
        db.engine.dispose()


def test_downgrade_keeps_working_with_data_present(make_app, empty_database_url):
    """Downgrading a schema that holds demo data succeeds (no constraint left dangling)."""
    app = make_app(SQLALCHEMY_DATABASE_URI=empty_database_url)
    with app.app_context():
        upgrade()
        from idp.services.seed import seed_demo_data

        seed_demo_data()
        db.session.commit()
        db.session.remove()
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert db.session.execute(text("SELECT COUNT(*) FROM users")).scalar() == 0
        db.session.remove()
        db.engine.dispose()
