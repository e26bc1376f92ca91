"""Stage check_duplicate: a mail already processed gives its first result again (SPEC §2 Idempotence)."""

from __future__ import annotations

import dataclasses

from gateway.pipeline.stage_values import Decision, MailRun, Outcome, Parsed
from gateway.store import tickets as store


def check_duplicate(mail: Parsed, run: MailRun) -> Parsed | Decision:
    """The same mail again (SMTP and IMAP, or redelivered after a crash) is a duplicate; a different
    mail that reuses a Message-ID goes on, with the collision noted for its ticket and inbox row."""
    message_id = mail.mail.message_id
    seen, reused = store.seen_before(run.session, mail.dedup_key, message_id, mail.mail.content_hash)
    if seen is not None:
        return Decision(Outcome.DUPLICATE, seen.ticket_id, f"duplicate of inbox {seen.inbox_id}")
    if reused is not None:
        note = f"Message-ID <{message_id}> also used by a different mail (inbox {reused.inbox_id})"
        return dataclasses.replace(mail, collision=note)
    return mail
