"""Password sign-in on the hosted pages: lockout check, credential check, a fresh browser session."""
from __future__ import annotations

from idp.errors import InvalidCredentials, RateLimited
from idp.models import User
from idp.security.client_ip import client_ip
from idp.services import accounts, audit, browser_sessions, lockout


class SignInLocked(RateLimited):
    """Sign-in is refused for a while after repeated failures (for this address or this IP)."""

    def __init__(self, lock: lockout.Lock):
        minutes = "1 minute" if lock.minutes == 1 else f"{lock.minutes} minutes"
        super().__init__(f"Too many failed sign-in attempts. Wait {minutes} and try again.",
                         headers={"Retry-After": str(lock.retry_after)})
        self.lock = lock


def sign_in_with_password(email: str, password: str) -> User:
    """Check the credentials and open a browser session; InvalidCredentials or SignInLocked if not.

    While a lock is in force the password is not even checked, so guessing stops paying off.
    """
    ip = client_ip()
    lock = lockout.current_lock(email, ip)
    if lock is not None:
        audit.record_failure("login", details={"reason": "locked", "scope": lock.scope, "channel": "web"})
        raise SignInLocked(lock)
    try:
        user = accounts.authenticate_password(email, password, channel="web")
    except InvalidCredentials:
        lock = lockout.record_failure(email, ip)
        if lock is not None:
            raise SignInLocked(lock) from None
        raise
    lockout.record_success(email)
    browser_sessions.sign_in(user, amr=["pwd"])
    return user
