"""Text fields for request schemas: trimmed, and free of control characters that could split headers."""
from __future__ import annotations

import marshmallow as ma

LINE_BREAKS = {"\r", "\n", "\u2028", "\u2029", "\x85"}
# The same rules as JSON Schema patterns, so the OpenAPI document tells clients what is refused.
SINGLE_LINE_PATTERN = "^[^\\x00-\\x1F\\x7F\\x85\\u2028\\u2029]*$"
PLAIN_TEXT_PATTERN = "^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F]*$"


def _is_control(char: str) -> bool:
    return ord(char) < 32 or ord(char) == 127 or char in LINE_BREAKS


def validate_single_line(value: str) -> None:
    """Refuse CR, LF, NUL and every other control character."""
    if any(_is_control(char) for char in value):
        raise ma.ValidationError("Must be a single line without control characters.")


def validate_plain_text(value: str) -> None:
    """Refuse control characters except line breaks and tabs (multi-line text)."""
    if any(_is_control(char) and char not in "\r\n\t" for char in value):
        raise ma.ValidationError("Must not contain control characters.")


class TrimmedString(ma.fields.String):
    """A string with surrounding whitespace removed before validation."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


def line(max_length: int, *, required: bool = False, min_length: int = 1, **kwargs) -> TrimmedString:
    """A trimmed single-line string field of `min_length`..`max_length` characters."""
    validators = [ma.validate.Length(min=min_length, max=max_length), validate_single_line]
    kwargs["metadata"] = {"pattern": SINGLE_LINE_PATTERN, **kwargs.get("metadata", {})}
    return TrimmedString(required=required, validate=validators, **kwargs)
