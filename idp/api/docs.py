"""GET /api/docs: the OpenAPI document rendered as one server-side HTML page (no JavaScript)."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template

bp = Blueprint("api_reference", __name__)

METHODS = ("get", "post", "put", "patch", "delete")
CONSTRAINTS = (("minLength", "min length"), ("maxLength", "max length"), ("pattern", "pattern"),
               ("format", "format"), ("default", "default"))


def resolve(spec: dict, node: dict | None) -> dict:
    """`node` with a local `$ref` (#/components/...) followed, transitively."""
    seen = 0
    while node and "$ref" in node and seen < 20:
        target = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target.get(part, {})
        node, seen = target, seen + 1
    return node or {}


def type_label(spec: dict, schema: dict) -> str:
    """A short type name: 'string', 'integer', 'array of Member', 'Organization'."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"array of {type_label(spec, schema.get('items', {}))}"
    return schema.get("type", "object")


def schema_fields(spec: dict, schema: dict | None) -> list[dict]:
    """One row per property of an object schema: name, type, required, description, constraints."""
    resolved = resolve(spec, schema)
    required = set(resolved.get("required", []))
    rows = []
    for name, prop in resolved.get("properties", {}).items():
        notes = [f"{label} {prop[key]}" for key, label in CONSTRAINTS if key in prop]
        if "enum" in prop:
            notes.append("one of " + ", ".join(str(value) for value in prop["enum"] if value is not None))
        if prop.get("nullable"):
            notes.append("may be null")
        rows.append({"name": name, "type": type_label(spec, prop), "required": name in required,
                     "description": prop.get("description", ""), "notes": "; ".join(notes),
                     "read_only": prop.get("readOnly", False)})
    return rows


def body_schema(spec: dict, holder: dict | None) -> dict | None:
    content = resolve(spec, holder).get("content", {})
    media = content.get("application/json") or next(iter(content.values()), {})
    return media.get("schema")


def body_label(spec: dict, envelope: dict | None) -> str:
    """'data: Organization' for a success envelope, 'error envelope' for an error one."""
    if not envelope:
        return ""
    data = resolve(spec, envelope).get("properties", {}).get("data")
    if data:
        return f"data: {type_label(spec, data)}"
    return "error envelope" if type_label(spec, envelope) == "ErrorEnvelope" else type_label(spec, envelope)


def responses(spec: dict, operation: dict) -> list[dict]:
    rows = []
    for status, response in sorted(operation.get("responses", {}).items(), key=lambda item: item[0]):
        resolved = resolve(spec, response)
        rows.append({"status": status, "description": resolved.get("description", ""),
                     "body": body_label(spec, body_schema(spec, resolved)),
                     "headers": sorted(resolved.get("headers", {}))})
    return rows


def parameters(spec: dict, item: dict, operation: dict) -> list[dict]:
    params = [resolve(spec, p) for p in item.get("parameters", []) + operation.get("parameters", [])]
    return [{"name": p.get("name"), "in": p.get("in"), "required": p.get("required", False),
             "type": type_label(spec, p.get("schema", {})), "description": p.get("description", "")}
            for p in params]


def describe_operation(spec: dict, path: str, method: str, item: dict) -> dict:
    operation = item[method]
    request_schema = body_schema(spec, operation.get("requestBody"))
    return {
        "anchor": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", "").strip("-"),
        "method": method.upper(), "path": path, "summary": operation.get("summary", ""),
        "description": operation.get("description", ""), "secured": bool(operation.get("security")),
        "parameters": parameters(spec, item, operation),
        "request_type": type_label(spec, request_schema) if request_schema else "",
        "request_fields": schema_fields(spec, request_schema), "responses": responses(spec, operation),
    }


def document_sections(spec: dict) -> list[dict]:
    """Operations grouped by tag, in the order the spec lists tags and paths."""
    tag_text = {tag["name"]: tag.get("description", "") for tag in spec.get("tags", [])}
    sections: dict[str, dict] = {}
    for path, item in spec.get("paths", {}).items():
        for method in (m for m in METHODS if m in item):
            tag = (item[method].get("tags") or ["api"])[0]
            section = sections.setdefault(tag, {"name": tag, "description": tag_text.get(tag, ""), "operations": []})
            section["operations"].append(describe_operation(spec, path, method, item))
    order = list(tag_text)
    return sorted(sections.values(), key=lambda s: order.index(s["name"]) if s["name"] in order else len(order))


@bp.route("/api/docs")
def api_docs():
    """The API reference page."""
    spec = current_app.extensions["api"].spec.to_dict()
    return render_template("api/docs.html", info=spec.get("info", {}), sections=document_sections(spec),
                           openapi_version=spec.get("openapi"))
