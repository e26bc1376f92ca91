"""Stages 1-2: parse the raw bytes, and stop at a mail already processed (SPEC §2 Idempotence)."""

from __future__ import annotations

from gateway.pipeline.mime_limits import check_mime_limits
from gateway.pipeline.parse import parse_mail
from gateway.pipeline.stages.context import (
    MailContext,
    Outcome,
    ProcessorDeps,
    ProcessResult,
)
from gateway.rawmail import looks_like_mail
from gateway.store import tickets as store


def parse_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    if looks_like_mail(ctx.item.raw):  # else parse_mail says "not a mail", the truer reason
        check_mime_limits(ctx.item.raw, deps.settings.limits)  # over one: quarantined whole (SPEC §11)
    ctx.mail = parse_mail(ctx.item.raw)
    ctx.dedup_key = store.dedup_key(ctx.mail.message_id, ctx.mail.content_hash)
    return None


def duplicate_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """The same mail again (SMTP and IMAP, or redelivered after a crash) gives the first result."""
    mail = ctx.parsed
    seen = store.find_seen(ctx.session, ctx.dedup_key)
    if seen is not None:
        return ProcessResult(
            ctx.item.id, Outcome.DUPLICATE, seen.ticket_id, f"duplicate of inbox {seen.inbox_id}"
        )
    if mail.message_id:
        reused = store.message_id_reused(ctx.session, mail.message_id, mail.content_hash)
        if reused is not None:
            ctx.notes.append(
                f"Message-ID <{mail.message_id}> also used by a different mail (inbox {reused.inbox_id})"
            )
    return None
