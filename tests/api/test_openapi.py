"""GET /api/openapi.json and GET /api/docs: every API route documented, with its errors."""
from __future__ import annotations

import html
import re

import pytest

BODY_METHODS = {"POST", "PUT", "PATCH"}
BODY_ERRORS = {"400", "413", "415", "422"}


def spec_of(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def api_v1_operations(app) -> list[tuple[str, str, str]]:
    """(flask rule, openapi path, method) for every /api/v1 route in the URL map."""
    found = []
    for rule in app.url_map.iter_rules():
        # The federation endpoints (/api/v1/auth/external/) are browser redirects answering HTML, not API operations.
        if rule.rule.startswith("/api/v1/") and not rule.rule.startswith("/api/v1/auth/external/"):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                found.append((rule.rule, openapi_path(rule.rule), method))
    return found


def resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        target = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_spec_is_openapi_3_with_info_paths_and_components(client):
    """The document has openapi 3.x, info title/version, paths, schemas and the bearer scheme (OAS 3.0.3 4.7)."""
    spec = spec_of(client)
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] and spec["info"]["version"]
    assert spec["paths"] and spec["components"]["schemas"]
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert {"ErrorEnvelope", "ErrorDetail"} <= set(spec["components"]["schemas"])


def test_every_api_v1_route_is_in_the_spec_with_its_error_responses(app, client):
    """Each /api/v1 route and method is documented with a 2xx, a default error, and the errors it can give."""
    spec = spec_of(client)
    operations = api_v1_operations(app)
    assert len(operations) >= 10
    for _, path, method in operations:
        operation = spec["paths"].get(path, {}).get(method.lower())
        assert operation is not None, f"{method} {path} is missing from the spec"
        responses = operation["responses"]
        assert any(code.startswith("2") for code in responses), f"{method} {path}: no success response"
        assert "default" in responses and any(code.startswith("4") for code in responses), f"{method} {path}"
        if method in BODY_METHODS and "requestBody" in operation:
            assert BODY_ERRORS <= set(responses), f"{method} {path}: body errors undocumented"
        if operation.get("security"):
            assert "401" in responses, f"{method} {path}: 401 undocumented"
        assert "503" in responses, f"{method} {path}: 503 (database unavailable) undocumented"
        assert operation.get("summary"), f"{method} {path}: no summary (docstring)"


def test_error_responses_describe_the_error_envelope(client):
    """Every documented 4xx/5xx/default response has a description and the ErrorEnvelope body."""
    spec = spec_of(client)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for code, response in operation["responses"].items():
                if code == "default" or code[0] in "45":
                    resolved = resolve(spec, response)
                    schema = resolved["content"]["application/json"]["schema"]
                    assert resolved["description"] and schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, \
                        f"{method} {path} {code}"


def test_routes_that_need_a_token_say_so(app, client):
    """A route that answers 401 without a token declares bearer security and 401, and vice versa."""
    spec = spec_of(client)
    for rule, path, method in api_v1_operations(app):
        url = re.sub(r"<[^>]+>", "some-id", rule)
        response = client.open(url, method=method, json={} if method in BODY_METHODS else None)
        operation = spec["paths"][path][method.lower()]
        asks_for_token = response.status_code == 401
        assert asks_for_token == bool(operation.get("security")), f"{method} {path}: {response.status_code}"


def test_docs_page_lists_every_operation_from_the_spec(client):
    """GET /api/docs renders each path, method, summary, request field and response code of the spec."""
    spec = spec_of(client)
    response = client.get("/api/docs")
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200 and response.mimetype == "text/html"
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert f"{method.upper()} {path}" in page
            assert operation.get("summary", "") in page
            for code in operation["responses"]:
                assert f"<code>{code}</code>" in page
    assert "<code>email</code>" in page and "<code>company</code>" in page  # contact request fields
    assert "one of demo, sales, general, support" in page


def test_docs_page_has_no_script_and_no_third_party_assets(client):
    """The docs page is plain HTML: no JavaScript, nothing loaded from another host."""
    page = client.get("/api/docs").get_data(as_text=True)
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)


@pytest.mark.parametrize("path", ["/api/openapi.json", "/api/docs"])
def test_docs_need_no_login(client, path):
    """The API reference is public."""
    assert client.get(path).status_code == 200


def test_nullable_nested_objects_admit_only_null_besides_their_schema(client):
    """`address: null` is allowed, but not an arbitrary object: the null branch is `enum: [null]` (OAS 3.0.3 4.7.24)."""
    address = spec_of(client)["components"]["schemas"]["ProfileUpdate"]["properties"]["address"]
    branches = address["anyOf"]
    assert {"$ref": "#/components/schemas/Address"} in branches
    assert {"type": "object", "nullable": True, "enum": [None]} in branches


def test_text_fields_document_the_characters_they_refuse(client):
    """Fields that refuse control characters say so with a JSON Schema `pattern` (OAS 3.0.3 4.7.24)."""
    schemas = spec_of(client)["components"]["schemas"]
    for schema, field in [("Register", "name"), ("Login", "email"), ("ContactRequest", "message"),
                          ("OrganizationCreate", "name")]:
        pattern = re.compile(schemas[schema]["properties"][field]["pattern"])
        assert pattern.match("Ada Lovelace") and not pattern.match("Ada\x00Lovelace"), (schema, field)
    assert schemas["Register"]["properties"]["email"]["format"] == "email"
    assert schemas["Register"]["properties"]["password"]["minLength"] == 8


# The management surface of issue #11, every operation of it.
MANAGEMENT_OPERATIONS = {
    ("get", "/api/v1/clients"), ("post", "/api/v1/clients"), ("get", "/api/v1/clients/{client_id}"),
    ("patch", "/api/v1/clients/{client_id}"), ("delete", "/api/v1/clients/{client_id}"),
    ("post", "/api/v1/clients/{client_id}/secret"),
    ("get", "/api/v1/admin/users"), ("post", "/api/v1/admin/users"), ("get", "/api/v1/admin/users/{user_id}"),
    ("patch", "/api/v1/admin/users/{user_id}"), ("delete", "/api/v1/admin/users/{user_id}"),
    ("post", "/api/v1/admin/users/{user_id}/sessions/revoke"), ("post", "/api/v1/admin/users/{user_id}/password-reset"),
    ("get", "/api/v1/admin/users/{user_id}/sessions"), ("get", "/api/v1/admin/users/{user_id}/identities"),
    ("get", "/api/v1/admin/organizations"),
    ("post", "/api/v1/organizations"), ("get", "/api/v1/organizations/{organization_id}"),
    ("patch", "/api/v1/organizations/{organization_id}"), ("delete", "/api/v1/organizations/{organization_id}"),
    ("get", "/api/v1/organizations/{organization_id}/members"),
    ("post", "/api/v1/organizations/{organization_id}/members"),
    ("get", "/api/v1/organizations/{organization_id}/members/{user_id}"),
    ("delete", "/api/v1/organizations/{organization_id}/members/{user_id}"),
    ("patch", "/api/v1/organizations/{organization_id}/members/{user_id}/role"),
    ("get", "/api/v1/organizations/{organization_id}/invitations"),
    ("post", "/api/v1/organizations/{organization_id}/invitations"),
    ("get", "/api/v1/organizations/{organization_id}/invitations/{invitation_id}"),
    ("delete", "/api/v1/organizations/{organization_id}/invitations/{invitation_id}"),
    ("post", "/api/v1/organizations/{organization_id}/invitations/{invitation_id}/resend"),
    ("get", "/api/v1/audit"), ("get", "/api/v1/audit/export"),
    ("get", "/api/v1/keys"), ("post", "/api/v1/keys"), ("post", "/api/v1/keys/rotate"), ("get", "/api/v1/keys/{kid}"),
    ("post", "/api/v1/keys/{kid}/retire"),
    ("get", "/api/v1/upstreams"), ("post", "/api/v1/upstreams"), ("get", "/api/v1/upstreams/{upstream_id}"),
    ("patch", "/api/v1/upstreams/{upstream_id}"), ("delete", "/api/v1/upstreams/{upstream_id}"),
}


def parameter_names(spec: dict, path: str, method: str) -> dict[str, str]:
    """name -> location of every parameter of an operation (path-level ones included)."""
    item = spec["paths"][path]
    params = [resolve(spec, p) for p in item.get("parameters", []) + item[method].get("parameters", [])]
    return {p["name"]: p["in"] for p in params}


def success_response(spec: dict, operation: dict) -> dict:
    return resolve(spec, next(r for code, r in operation["responses"].items() if code.startswith("2")))


def schema_of(spec: dict, node: dict) -> dict:
    """A schema with `$ref`s and apispec's one-member `allOf` wrappers followed."""
    node = resolve(spec, node)
    while len(node.get("allOf", [])) == 1:
        node = resolve(spec, node["allOf"][0])
    return node


def test_every_management_operation_is_in_the_spec_with_the_errors_it_can_give(client):
    """Issue #11's operations: bearer security, 401/403, 404 where a path names a resource, 422 where a query
    or body is validated, 412 and If-Match on PATCH and DELETE (RFC 9110 13.1.1)."""
    spec = spec_of(client)
    for method, path in sorted(MANAGEMENT_OPERATIONS):
        operation = spec["paths"].get(path, {}).get(method)
        assert operation is not None, f"{method.upper()} {path} is missing from the spec"
        responses, params = set(operation["responses"]), parameter_names(spec, path, method)
        assert operation.get("security") and {"401", "403"} <= responses, f"{method} {path}: 401/403"
        if "path" in params.values():
            assert "404" in responses, f"{method} {path}: 404 undocumented"
        if "query" in params.values() or "requestBody" in operation:
            assert "422" in responses, f"{method} {path}: 422 undocumented"
        if method in ("patch", "delete"):
            assert "412" in responses and params.get("If-Match") == "header", f"{method} {path}: If-Match/412"


def test_management_lists_page_by_cursor_and_say_so(client):
    """Every management list takes limit and cursor and documents meta.pagination.next_cursor."""
    spec = spec_of(client)
    lists = [(method, path) for method, path in MANAGEMENT_OPERATIONS
             if method == "get" and "cursor" in parameter_names(spec, path, method)]
    assert {("get", "/api/v1/clients"), ("get", "/api/v1/admin/users"), ("get", "/api/v1/admin/organizations"),
            ("get", "/api/v1/admin/users/{user_id}/sessions"), ("get", "/api/v1/organizations/{organization_id}/members"),
            ("get", "/api/v1/organizations/{organization_id}/invitations"), ("get", "/api/v1/upstreams"),
            ("get", "/api/v1/audit"), ("get", "/api/v1/keys")} <= set(lists)
    for method, path in lists:
        assert parameter_names(spec, path, method)["limit"] == "query", path
        envelope = schema_of(spec, success_response(spec, spec["paths"][path][method])["content"]["application/json"]["schema"])
        meta = schema_of(spec, envelope["properties"]["meta"])
        pagination = schema_of(spec, meta["properties"]["pagination"])
        assert {"next_cursor", "limit"} <= set(pagination["properties"]), path


def etag_getter(spec: dict, path: str) -> dict | None:
    """The GET handing out the ETag that a PATCH or DELETE of `path` takes in If-Match: the one on the
    same path, or, for a field sub-resource without a GET of its own (a literal last segment such as
    `.../members/{user_id}/role`), the one on its parent path, whose representation holds that field."""
    getter = spec["paths"][path].get("get")
    parent, _, last = path.rpartition("/")
    if getter is None and not last.startswith("{") and parent in spec["paths"]:
        getter = spec["paths"][parent].get("get")
    return getter


def test_management_resources_that_take_if_match_hand_out_their_etag(client):
    """A resource that PATCH or DELETE changes under If-Match documents the ETag header on its GET
    (RFC 9110 8.8.3); for a field sub-resource the GET is the parent's (see etag_getter)."""
    spec = spec_of(client)
    for method, path in MANAGEMENT_OPERATIONS:
        operation = spec["paths"][path][method]
        if method in ("patch", "delete") and "412" in operation["responses"]:
            getter = etag_getter(spec, path)
            assert getter is not None and "ETag" in success_response(spec, getter).get("headers", {}), path
    role = "/api/v1/organizations/{organization_id}/members/{user_id}/role"
    assert etag_getter(spec, role) is spec["paths"]["/api/v1/organizations/{organization_id}/members/{user_id}"]["get"]


def test_secrets_are_write_only_in_the_management_responses(client):
    """client_secret appears in a response only where it is shown once (creation, rotation); no password
    or its hash anywhere."""
    spec = spec_of(client)
    shown_once = {("post", "/api/v1/clients"), ("post", "/api/v1/clients/{client_id}/secret")}

    def properties(schema: dict, depth: int = 0) -> set[str]:
        """Names of the string-valued (or object) properties, nested ones included."""
        schema = schema_of(spec, schema)
        found = set()
        for name, prop in schema.get("properties", {}).items():
            prop = schema_of(spec, prop)
            if prop.get("type") != "boolean":
                found.add(name)
            if depth < 4:
                found |= properties(prop.get("items", prop), depth + 1)
        return found

    for method, path in MANAGEMENT_OPERATIONS:
        content = success_response(spec, spec["paths"][path][method]).get("content", {})
        if "application/json" not in content:
            continue
        names = properties(content["application/json"]["schema"])
        assert "password" not in names and "password_hash" not in names, path
        assert ("client_secret" in names) == ((method, path) in shown_once), f"{method} {path}"
