"""Contact enquiries: stored first, then mailed to CONTACT_EMAIL; kept PENDING while mail is down.

`send_pending_mail` (idp.jobs) retries PENDING enquiries, each at most MAX_DELIVERY_ATTEMPTS times.
"""
from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select

from idp.extensions import db
from idp.models import ContactEnquiry, DeliveryStatus, EnquiryType, utcnow
from idp.security.client_ip import client_ip
from idp.services import audit
from idp.services.mail import MailDeliveryError, send_mail, single_line

MAX_DELIVERY_ATTEMPTS = 5
TYPE_LABELS = {
    EnquiryType.DEMO.value: "Demo request",
    EnquiryType.SALES.value: "Sales enquiry",
    EnquiryType.GENERAL.value: "General enquiry",
    EnquiryType.SUPPORT.value: "Support request",
}


def submit_enquiry(name: str, email: str, enquiry_type: str, message: str,
                   company: str | None = None) -> ContactEnquiry:
    """Store an enquiry, audit it and try to mail it now; a mail failure leaves it PENDING."""
    enquiry = ContactEnquiry(name=name, email=email, type=enquiry_type, message=message, company=company or None,
                             ip_address=client_ip(), status=DeliveryStatus.PENDING.value, attempts=0)
    db.session.add(enquiry)
    db.session.flush()
    audit.record("contact.submit", target_type="contact_enquiry", target_id=enquiry.id, details={"type": enquiry_type})
    deliver(enquiry)
    return enquiry


def enquiry_mail(enquiry: ContactEnquiry) -> tuple[str, str]:
    """Subject and plain-text body of the mail for `enquiry`."""
    label = TYPE_LABELS.get(enquiry.type, "Enquiry")
    subject = f"[{current_app.config['BRAND_NAME']}] {label} from {single_line(enquiry.name, 120)}"
    lines = [
        f"Type:    {label}",
        f"Name:    {single_line(enquiry.name)}",
        f"Email:   {single_line(enquiry.email, 254)}",
        f"Company: {single_line(enquiry.company or '-')}",
        f"Sent:    {enquiry.created_at:%Y-%m-%d %H:%M} UTC",
        f"Ref:     {enquiry.id}",
        "",
        enquiry.message,
    ]
    return subject, "\n".join(lines) + "\n"


def deliver(enquiry: ContactEnquiry) -> bool:
    """One delivery attempt: SENT on success; on failure the attempt and its cause are kept."""
    enquiry.attempts = (enquiry.attempts or 0) + 1
    subject, text = enquiry_mail(enquiry)
    try:
        send_mail(current_app.config["CONTACT_EMAIL"], subject, text, reply_to=enquiry.email)
    except MailDeliveryError as exc:
        _note_failure(enquiry, exc)
        return False
    enquiry.status, enquiry.sent_at, enquiry.last_error = DeliveryStatus.SENT.value, utcnow(), None
    db.session.flush()
    return True


def _note_failure(enquiry: ContactEnquiry, exc: MailDeliveryError) -> None:
    enquiry.last_error = str(exc)[:500]
    give_up = enquiry.attempts >= MAX_DELIVERY_ATTEMPTS
    current_app.logger.log(logging.ERROR if give_up else logging.WARNING,
                           "contact enquiry %s not mailed (attempt %d/%d%s): %s", enquiry.id, enquiry.attempts,
                           MAX_DELIVERY_ATTEMPTS, ", giving up" if give_up else "", exc)
    db.session.flush()


def pending_enquiry_ids(limit: int = 100) -> list[str]:
    """Ids of PENDING enquiries that still have attempts left, oldest first."""
    query = (select(ContactEnquiry.id)
             .where(ContactEnquiry.status == DeliveryStatus.PENDING.value,
                    ContactEnquiry.attempts < MAX_DELIVERY_ATTEMPTS)
             .order_by(ContactEnquiry.created_at)
             .limit(limit))
    return list(db.session.scalars(query))


def deliver_pending(enquiry_id: str) -> bool | None:
    """Retry one PENDING enquiry; None when it is no longer pending or another worker holds it.

    The row lock (PostgreSQL; SQLite serialises writers anyway) keeps two job runners from
    mailing the same enquiry twice.
    """
    query = (select(ContactEnquiry)
             .where(ContactEnquiry.id == enquiry_id, ContactEnquiry.status == DeliveryStatus.PENDING.value,
                    ContactEnquiry.attempts < MAX_DELIVERY_ATTEMPTS)
             .with_for_update(skip_locked=True))
    enquiry = db.session.scalars(query).first()
    if enquiry is None:
        return None
    return deliver(enquiry)


def send_pending_mail() -> str:
    """The `send_pending_mail` job: retry PENDING enquiries, committing after each one.

    A job owns its transactions (services elsewhere only flush): committing per enquiry means a
    crash never re-sends one already delivered. The round stops at the first failure, since the
    mail server is then most likely down for the rest too.
    """
    sent = 0
    for enquiry_id in pending_enquiry_ids():
        outcome = deliver_pending(enquiry_id)
        db.session.commit()
        if outcome is False:
            return f"sent {sent} enquiry mail(s); mail still failing, the rest wait for the next round"
        sent += outcome is True
    return f"sent {sent} enquiry mail(s)"
