"""Marshmallow schemas of API v1 request bodies and response data, one module per resource."""
