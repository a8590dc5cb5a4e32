"""The hosted pages' blueprint; each page module adds its routes to it."""
from flask import Blueprint

bp = Blueprint("web", __name__)
