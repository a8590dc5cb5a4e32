"""Outgoing mail: one `send_mail`, over SMTP, or into an outbox folder when no SMTP host is set.

Headers are built only from single-line values and parsed addresses, so a name or address carrying
CR/LF can never add a header. Message bodies are never logged: they may carry tokens (reset links).
"""
from __future__ import annotations

import os
import smtplib
import ssl
import uuid
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from flask import current_app

CONTROL_CHARACTERS = {chr(code) for code in range(32)} | {"\x7f", "\u2028", "\u2029", "\x85"}


class MailDeliveryError(Exception):
    """The message could not be handed to the mail server (or written to the outbox)."""


def single_line(value: str, limit: int = 200) -> str:
    """`value` with every control character (CR, LF, TAB, ...) turned into a space, cut to `limit`."""
    cleaned = "".join(" " if char in CONTROL_CHARACTERS else char for char in value)
    return " ".join(cleaned.split())[:limit]


def parse_address(value: str) -> Address:
    """A single mailbox from 'addr@example' or 'Name <addr@example>'; MailDeliveryError when unsafe."""
    if any(char in CONTROL_CHARACTERS for char in value):
        raise MailDeliveryError("mail address contains control characters")
    message = EmailMessage()
    try:
        message["To"] = value
        addresses = message["To"].addresses
    except (ValueError, IndexError, TypeError) as exc:
        raise MailDeliveryError("mail address is not valid") from exc
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise MailDeliveryError("mail address is not a single mailbox")
    return addresses[0]


def build_message(to: list[str], subject: str, text: str, html: str | None = None,
                  reply_to: str | None = None) -> EmailMessage:
    """The MIME message: text, plus an HTML alternative when given."""
    sender = parse_address(current_app.config["MAIL_FROM"])
    message = EmailMessage()
    message["From"] = sender
    message["To"] = [parse_address(address) for address in to]
    if reply_to:
        message["Reply-To"] = parse_address(reply_to)
    message["Subject"] = single_line(subject, 250)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.domain)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def send_mail(to: str | list[str], subject: str, text: str, html: str | None = None, *,
              reply_to: str | None = None) -> str:
    """Send one message; returns its Message-ID. Raises MailDeliveryError when it cannot be sent.

    With SMTP_HOST set, it goes over SMTP (STARTTLS and login when configured); without it
    (development) it is written as an .eml file into MAIL_OUTBOX_DIR.
    """
    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients:
        raise MailDeliveryError("no recipient")
    message = build_message(recipients, subject, text, html, reply_to)
    if current_app.config.get("SMTP_HOST"):
        _send_smtp(message)
        channel = "smtp"
    else:
        path = _write_outbox(message)
        channel = "outbox"
        if current_app.config.get("ENV_PROFILE") == "production":
            current_app.logger.warning("SMTP_HOST is not set: mail was only written to %s", path)
    current_app.logger.info("mail %s handed to %s for %d recipient(s)", message["Message-ID"], channel,
                            len(recipients))
    return message["Message-ID"]


def _send_smtp(message: EmailMessage) -> None:
    cfg = current_app.config
    try:
        with smtplib.SMTP(cfg["SMTP_HOST"], cfg["SMTP_PORT"], timeout=cfg["SMTP_TIMEOUT"]) as smtp:
            if cfg.get("SMTP_STARTTLS"):
                smtp.starttls(context=ssl.create_default_context())
            if cfg.get("SMTP_USERNAME"):
                smtp.login(cfg["SMTP_USERNAME"], cfg.get("SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        # The class name and server reply are enough to diagnose; the message itself is not logged.
        raise MailDeliveryError(f"SMTP delivery to {cfg['SMTP_HOST']}:{cfg['SMTP_PORT']} failed: "
                                f"{type(exc).__name__}: {exc}"[:400]) from exc


def _write_outbox(message: EmailMessage) -> Path:
    folder = Path(current_app.config["MAIL_OUTBOX_DIR"])
    name = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex}.eml"
    target = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{name}.tmp"
        partial.write_bytes(message.as_bytes())
        os.replace(partial, target)  # readers never see a half-written message
    except OSError as exc:
        raise MailDeliveryError(f"cannot write to the mail outbox {folder}: {exc.strerror}") from exc
    return target
