"""Password sign-in, one path for the hosted pages and the API login: the sign-in lockout, the
credential check, a device cookie for the client that proved the password, then a browser session
(pages) or an API session (API)."""
from __future__ import annotations

from idp.errors import InvalidCredentials, RateLimited
from idp.extensions import limiter
from idp.models import Session, SessionKind, User
from idp.security.client_ip import client_ip
from idp.security.device_cookie import issue_device_cookie, presented_device
from idp.services import accounts, audit, browser_sessions, lockout, sessions


def _wait(seconds: int) -> str:
    if seconds < 60:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    minutes = -(-seconds // 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


class SignInLocked(RateLimited):
    """Sign-in is refused for a while after repeated failures (one message whatever the scope)."""

    def __init__(self, lock: lockout.Lock):
        super().__init__(f"Too many failed sign-in attempts. Wait {_wait(lock.retry_after)} and try again.",
                         headers={"Retry-After": str(lock.retry_after)})
        self.lock = lock


def _refusal(lock: lockout.Lock) -> SignInLocked:
    _keep_retry_after_of_the_lock()
    return SignInLocked(lock)


def _keep_retry_after_of_the_lock() -> None:
    # Flask-Limiter stamps every response of a limited route with Retry-After = the later of the
    # response's own and its window's reset (up to a minute for the per-IP login limit), which would
    # tell an owner slowed down for 3 s to wait 60. The per-IP limit did not refuse this request, so
    # its headers do not belong on the answer.
    if limiter.enabled and limiter.initialized:
        limiter.context.view_rate_limit = None


def _attempt(email: str) -> lockout.Attempt:
    # A device cookie counts only for the account it was issued to; the lookup happens only when a
    # valid cookie is presented, and an attempt without one looks the same for every address.
    device = presented_device()
    nonce = None
    if device is not None:
        user = accounts.find_user_by_email(email)
        nonce = device.nonce if user is not None and user.id == device.user_id else None
    return lockout.Attempt(email=email, address=client_ip(), device=nonce)


def check_password(email: str, password: str, *, channel: str) -> User:
    """The active user with these credentials, under the sign-in lockout (idp.services.lockout).

    InvalidCredentials, SignInLocked (429 with Retry-After) or SingleSignOnRequired if not. While a
    lock or slow-down refuses the attempt the password is not even checked, so guessing stops
    paying off; a success gives the client a fresh device cookie for this account.
    """
    attempt = _attempt(email)
    lock = lockout.refusal(attempt)
    if lock is not None:
        audit.record_failure("login", details={"reason": "locked", "scope": lock.scope, "channel": channel})
        raise _refusal(lock)
    try:
        user = accounts.authenticate_password(email, password, channel=channel)
    except InvalidCredentials:
        lock = lockout.record_failure(attempt)
        if lock is not None:
            raise _refusal(lock) from None
        raise
    lockout.record_success(attempt)
    issue_device_cookie(user.id)
    return user


def sign_in_with_password(email: str, password: str) -> User:
    """Check the credentials (check_password) and open a fresh browser session."""
    user = check_password(email, password, channel="web")
    browser_sessions.sign_in(user, amr=["pwd"])
    return user


def log_in_api(email: str, password: str, *, user_agent: str | None) -> tuple[Session, str]:
    """Password login for the API: check the credentials (check_password), open an API session;
    (session, bearer token)."""
    user = check_password(email, password, channel="api")
    return sessions.create_session(user, kind=SessionKind.API, ip_address=client_ip(), user_agent=user_agent,
                                   amr=["pwd"])
