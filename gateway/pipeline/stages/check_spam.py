"""Stage check_spam: a mail the deployment's spam filter marked is kept, with no ticket and no answer
(SPEC §11)."""

from __future__ import annotations

from gateway.pipeline.spam import spam_verdict
from gateway.pipeline.stage_values import Decision, MailRun, Outcome, P


def check_spam(mail: P, run: MailRun) -> P | Decision:
    """Outcome `spam`: stored, no ticket, no acknowledgement (no backscatter); `inbox release` undoes it."""
    if run.item.released:
        return mail
    verdict = spam_verdict(run.header_fields, run.deps.settings.security.spam_headers)
    if verdict is None:
        return mail
    return Decision(Outcome.SPAM, None, f"spam verdict of the filter: {verdict}")
