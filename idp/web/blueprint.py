"""The hosted pages' blueprint; each page module adds its routes to it."""
from flask import Blueprint

from idp.security.request_hygiene import forbid_caching, refuse_control_characters_in_path

bp = Blueprint("web", __name__)
bp.before_request(refuse_control_characters_in_path)
bp.after_request(forbid_caching)
