"""Put a service's ValidationError details onto the matching form fields."""
from __future__ import annotations

from flask_wtf import FlaskForm

from idp.errors import ValidationError


def show_on_form(form: FlaskForm, error: ValidationError, field_names: dict[str, str] | None = None) -> str | None:
    """Attach each detail to its field (renamed by `field_names`); return what fits no field."""
    leftover = []
    for key, messages in (error.details or {}).items():
        name = (field_names or {}).get(key, key)
        items = messages if isinstance(messages, list) else [messages]
        field = form._fields.get(name)
        if field is None:
            leftover.extend(str(m) for m in items)
        else:
            field.errors = list(field.errors) + [str(m) for m in items]
    if not error.details:
        leftover.append(error.message)
    return " ".join(leftover) or None
