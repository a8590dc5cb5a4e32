"""The URL tables of API v1, in one list, with the hooks every API route runs."""
from idp.api import require_json_body
from idp.api.admin_organizations import blp as admin_organizations
from idp.api.admin_users import blp as admin_users
from idp.api.audit import blp as audit
from idp.api.auth import blp as auth
from idp.api.clients import blp as clients
from idp.api.contact import blp as contact
from idp.api.health import blp as health
from idp.api.invitations import blp as invitations
from idp.api.keys import blp as keys
from idp.api.organizations import blp as organizations
from idp.api.upstreams import blp as upstreams
from idp.api.users import blp as users
from idp.security.request_hygiene import forbid_caching, refuse_control_characters_in_path

BLUEPRINTS = [health, auth, users, contact, organizations, invitations, upstreams, clients, admin_organizations,
              admin_users, keys, audit]
for _blueprint in BLUEPRINTS:
    _blueprint.before_request(refuse_control_characters_in_path)
    _blueprint.before_request(require_json_body)
    _blueprint.after_request(forbid_caching)
