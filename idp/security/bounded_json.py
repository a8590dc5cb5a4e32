"""JSON parsing with bounds, for every document that comes from outside (request bodies, the `claims`
parameter, request objects, upstream answers).

Deeper nesting is refused before any code walks a document recursively (Python's json module and
marshmallow recurse, and 50,000 levels exhaust the interpreter's stack); a longer number is no id,
count or timestamp, and past 4,300 digits Python refuses to convert it at all. Every refusal is a
ValueError, so callers that already catch invalid JSON catch these too.
"""
from __future__ import annotations

import json
import math

MAX_JSON_DEPTH = 64
MAX_JSON_NUMBER_LENGTH = 100


class UnacceptableJSON(ValueError):
    """JSON that parses but that this service refuses; the message is safe to show the client."""


def _bounded_number(kind: type):
    def parse(text: str):
        if len(text) > MAX_JSON_NUMBER_LENGTH:
            raise UnacceptableJSON(f"a number has more than {MAX_JSON_NUMBER_LENGTH} characters")
        value = kind(text)
        if not math.isfinite(value):  # 1e400 overflows to infinity, which JSON cannot carry back
            raise UnacceptableJSON("a number is out of range")
        return value
    return parse


def _refuse_constant(name: str):
    raise UnacceptableJSON(f"{name} is not a JSON value (RFC 8259 section 6)")


def json_depth_exceeds(document, limit: int) -> bool:
    """True when arrays and objects nest deeper than `limit` (an iterative walk: no recursion)."""
    pending = [(document, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def loads(s, **kwargs):
    """json.loads within the bounds above; UnacceptableJSON (a ValueError) when a bound is crossed."""
    kwargs.setdefault("parse_int", _bounded_number(int))
    kwargs.setdefault("parse_float", _bounded_number(float))
    kwargs.setdefault("parse_constant", _refuse_constant)
    try:
        document = json.loads(s, **kwargs)
    except RecursionError:
        raise UnacceptableJSON(f"it nests deeper than {MAX_JSON_DEPTH} levels") from None
    if json_depth_exceeds(document, MAX_JSON_DEPTH):
        raise UnacceptableJSON(f"it nests deeper than {MAX_JSON_DEPTH} levels")
    return document
