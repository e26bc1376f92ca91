"""Classify a mail as normal or automated (bounce, abuse report, auto-reply, auto-generated) and
decide whether anything may be sent in response (SPEC §2 "Automated mail", §7 "Loop protection").

Both orders are data: `KIND_RULES` is tried top to bottom and its first match decides the kind;
`LOOP_SIGNALS` are all checked, and any one of them (or any kind but NORMAL) suppresses
notifications in response to the mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.pipeline.rules import (
    Rule,
    auto_replied,
    auto_reply_subject,
    auto_submitted,
    autoreply_headers,
    dsn_report,
    failure_notice,
    feedback_report,
    library_bounce,
    list_id,
    mail_system_bounce,
    mailer_daemon,
    mta_bounce_text,
    null_sender,
    null_sender_bounce,
    postmaster_bounce,
    precedence_auto_reply,
    precedence_bulk,
    read_receipt,
    response_suppress,
    returned_to_sender,
    should_notify,
    unnotifiable_sender,
)

__all__ = ["KIND_RULES", "LOOP_SIGNALS", "Classification", "MailKind", "classify", "should_notify"]


class MailKind(StrEnum):
    NORMAL = "normal"
    AUTO_GENERATED = "auto-generated"  # opens a ticket, no acknowledgement
    AUTO_REPLY = "auto-reply"  # joins its ticket as a record, or is recorded without one
    BOUNCE = "bounce"  # never opens a ticket; marks the outbound mail bounced
    ABUSE_REPORT = "abuse-report"  # never opens a ticket


@dataclass(frozen=True)
class Classification:
    kind: MailKind
    reason: str  # which rule fired and why, e.g. "auto-replied: Auto-Submitted: auto-replied"
    suppress_notifications: bool  # loop protection: never send any notification in response


# First match decides. Structural reports come first (they cannot be mistaken), then the bounce
# heuristics (a bounce often also carries Auto-Submitted), then auto-replies before the plain
# auto-generated signs, since an out-of-office reply is auto-generated too but joins its ticket.
KIND_RULES: tuple[tuple[Rule, MailKind], ...] = (
    (dsn_report, MailKind.BOUNCE),
    (feedback_report, MailKind.ABUSE_REPORT),
    (read_receipt, MailKind.AUTO_REPLY),
    (mailer_daemon, MailKind.BOUNCE),
    (postmaster_bounce, MailKind.BOUNCE),
    (null_sender_bounce, MailKind.BOUNCE),
    (mta_bounce_text, MailKind.BOUNCE),
    (failure_notice, MailKind.BOUNCE),
    (mail_system_bounce, MailKind.BOUNCE),
    (returned_to_sender, MailKind.BOUNCE),
    (auto_replied, MailKind.AUTO_REPLY),
    (autoreply_headers, MailKind.AUTO_REPLY),
    (precedence_auto_reply, MailKind.AUTO_REPLY),
    (auto_reply_subject, MailKind.AUTO_REPLY),
    (auto_submitted, MailKind.AUTO_GENERATED),
    (precedence_bulk, MailKind.AUTO_GENERATED),
    (list_id, MailKind.AUTO_GENERATED),
)

# Each of these alone forbids any notification in response (SPEC §7). Every automated kind
# suppresses notifications as well, so these matter most for mail that is otherwise NORMAL.
LOOP_SIGNALS: tuple[Rule, ...] = (
    auto_submitted,
    precedence_bulk,
    list_id,
    null_sender,
    unnotifiable_sender,
    response_suppress,
)


# Kinds that the raw-mail bounce rule (flufl.bounce) may still turn into a bounce.
_LIBRARY_MAY_OVERRULE = frozenset({MailKind.NORMAL, MailKind.AUTO_GENERATED})


def classify(
    mail: ParsedMail, envelope: Envelope, *, ours: GatewayAddresses, raw: bytes | None = None
) -> Classification:
    """What kind of mail this is, why, and whether ticketgate may send anything in response.

    With the `raw` bytes, a mail the table leaves normal or auto-generated is also given to
    flufl.bounce (`library_bounce`), the one rule that needs the raw mail.
    """
    kind = MailKind.NORMAL
    found: list[tuple[str, str]] = []  # (rule name, why)
    for rule, rule_kind in KIND_RULES:
        why = rule.check(mail, envelope, ours)
        if why is not None:
            kind = rule_kind
            found.append((rule.name, why))
            break
    if raw is not None and kind in _LIBRARY_MAY_OVERRULE:
        why = library_bounce.check(mail, envelope, ours, raw)
        if why is not None:
            kind = MailKind.BOUNCE
            found = [(library_bounce.name, why)]
    loop_signals = [
        (signal.name, why)
        for signal in LOOP_SIGNALS
        if (why := signal.check(mail, envelope, ours)) is not None
    ]
    # A loop signal that says what the deciding rule said already is not repeated.
    decided = {why for _, why in found}
    found.extend((name, why) for name, why in loop_signals if why not in decided)
    reasons = [f"{name}: {why}" for name, why in found]
    return Classification(
        kind=kind,
        reason="; ".join(reasons) if reasons else "no automated-mail signs",
        suppress_notifications=kind is not MailKind.NORMAL or bool(loop_signals),
    )
