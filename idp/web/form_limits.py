"""Rate limits of the hosted forms, per client address; only POSTs (a submitted form) count.

The registration form spends the API's bucket (one shared_limit scope and key), so the page and
`/api/v1/auth/register` together stay within RATELIMIT_REGISTER per address. The forms that mail a
link on request share RATELIMIT_ACCOUNT_MAIL. The limit is checked inside the view, after Flask-WTF's
CSRF check, so a forged POST is refused before it can spend anyone's budget. A refusal is a 429 page
with Retry-After (the hosted error renderer), and is audited like the API's.
"""
from __future__ import annotations

from typing import Callable

from idp.extensions import limiter
from idp.security import ratelimits
from idp.services import audit


def _audit_rate_limited(action: str):
    def on_breach(limit) -> None:
        audit.record_failure(action, details={"reason": "rate_limited", "limit": str(limit.limit)})
    return on_breach


def _limited_posts(limit_value: Callable[[], str], scope: str, action: str):
    return limiter.shared_limit(limit_value, scope, key_func=ratelimits.ip_key, methods=["POST"],
                                exempt_when=ratelimits.limits_disabled, on_breach=_audit_rate_limited(action))


register_limited = _limited_posts(ratelimits.register_limit, ratelimits.REGISTER_SCOPE, "register")
account_mail_limited = _limited_posts(ratelimits.account_mail_limit, ratelimits.ACCOUNT_MAIL_SCOPE, "account_mail")
