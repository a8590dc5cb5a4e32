"""Create the schema straight from the models (create_all), for when migrations are absent or stale.

Run with the bench's app environment; prints the tables it made, one JSON line.
"""
from __future__ import annotations

import json

from sqlalchemy import inspect

from idp import create_app
from idp.extensions import db


def main() -> None:
    app = create_app()
    with app.app_context():
        existing = set(inspect(db.engine).get_table_names())
        db.create_all()
        made = [table.name for table in db.metadata.sorted_tables if table.name not in existing]
    print(json.dumps({"tables_created": made}))


if __name__ == "__main__":
    main()
