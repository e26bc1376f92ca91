"""Stage parse_mail: the raw bytes, checked against the MIME limits and parsed once (SPEC §11)."""

from __future__ import annotations

from gateway.mail.mime_limits import check_mime_limits
from gateway.mail.parse import parse_mail as parse
from gateway.mail.rawmail import looks_like_mail
from gateway.pipeline.stage_values import MailRun, Parsed
from gateway.store import tickets as store
from gateway.store.inbox import ClaimedItem


def parse_mail(item: ClaimedItem, run: MailRun) -> Parsed:
    """Over a limit raises ProcessingError, not a mail NotAMailError: both quarantine the mail whole."""
    if looks_like_mail(item.raw):  # else parse says "not a mail", the truer reason
        check_mime_limits(item.raw, run.deps.settings.limits)
    mail = parse(item.raw)
    return Parsed(mail=mail, dedup_key=store.dedup_key(mail.message_id, mail.content_hash))
