"""GET /api/health: database and Redis status and the version."""
from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint

from idp.api.envelope import ErrorEnvelopeSchema, envelope_of, ok
from idp.errors import ServiceUnavailable
from idp.services import health
from idp.version import VERSION

blp = Blueprint("health", __name__, url_prefix="/api", description="Service health")


class HealthSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "ok, or degraded when Redis is down"})
    database = ma.fields.String(metadata={"description": "ok or down"})
    redis = ma.fields.String(metadata={"description": "ok, down, or not_configured"})
    schema = ma.fields.String(metadata={"description": "ok at the migrations' head, behind (503: run "
                                                       "`flask db upgrade`), or unknown"})
    version = ma.fields.String()


@blp.route("/health")
@blp.response(200, envelope_of(HealthSchema))
@blp.alt_response(503, schema=ErrorEnvelopeSchema,
                  description="The database is unreachable or its schema is behind the migrations; "
                              "error.details holds the same report as data")
def get_health():
    """Report database, schema and Redis status and the version."""
    database = "ok" if health.database_ok() else "down"
    redis_state = health.redis_status()
    schema = health.schema_status() if database == "ok" else "unknown"
    data = {"status": "ok" if redis_state != "down" else "degraded", "database": database,
            "redis": redis_state, "schema": schema, "version": VERSION}
    if database != "ok":
        raise ServiceUnavailable("The database is unreachable.", details=data)
    if schema == "behind":
        raise ServiceUnavailable("The database schema is behind the migrations.", details=data)
    return ok(data, "Service is healthy")
