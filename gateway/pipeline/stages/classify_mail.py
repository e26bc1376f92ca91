"""Stage classify_mail: what kind of mail it is; bounces and abuse reports are recorded and go no further."""

from __future__ import annotations

from gateway.domain import BounceReceived
from gateway.mail.bounce import read_bounce, returned_message_ids
from gateway.pipeline.classify import MailKind, classify
from gateway.pipeline.stage_values import Classified, Decision, MailRun, Outcome, Parsed, grow


def classify_mail(mail: Parsed, run: MailRun) -> Classified | Decision:
    """Bounces and abuse reports never open a ticket; they are recorded and stop here."""
    item, ours = run.item, run.deps.ours
    classification = classify(mail.mail, item.envelope, ours=ours, raw=item.raw)
    kind = classification.kind
    if kind is MailKind.BOUNCE:
        # The notifier matches it to the notification that bounced (VERP, else the returned
        # Message-ID, else the failed recipient) and tells staff; a bounce never opens a ticket or
        # changes a status.
        report = read_bounce(mail.mail, item.envelope, ours=ours, raw=item.raw)
        returned = returned_message_ids(item.raw, own=mail.mail.message_id)
        first = (report.original_message_id,) if report.original_message_id else ()
        bounce = BounceReceived(
            inbox_id=item.id,
            verp_detail=report.verp_detail,
            recipients=report.recipients,
            permanent=report.permanent,
            status=report.status,
            diagnostic=report.diagnostic,
            message_ids=tuple(dict.fromkeys((*first, *returned))),
        )
        return Decision(Outcome.BOUNCE, None, classification.reason, (bounce,))
    if kind is MailKind.ABUSE_REPORT:
        return Decision(Outcome.ABUSE_REPORT, None, classification.reason)
    return grow(mail, Classified, classification=classification)
