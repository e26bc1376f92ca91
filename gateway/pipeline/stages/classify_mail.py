"""Stage 3: bounces and abuse reports are recorded and go no further."""

from __future__ import annotations

from gateway.pipeline.bounce import read_bounce, returned_message_ids
from gateway.pipeline.classify import MailKind, classify
from gateway.pipeline.happenings import BounceReceived
from gateway.pipeline.stages.context import (
    MailContext,
    Outcome,
    ProcessorDeps,
    ProcessResult,
)


def classify_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """Bounces and abuse reports never open a ticket; they are recorded and stop here."""
    ctx.classification = classify(ctx.parsed, ctx.item.envelope, ours=deps.ours, raw=ctx.item.raw)
    kind = ctx.classification.kind
    if kind is MailKind.BOUNCE:
        # The notifier matches it to the notification that bounced (VERP, else the returned
        # Message-ID, else the failed recipient) and tells staff; a bounce never opens a ticket or
        # changes a status.
        raw = ctx.item.raw
        report = read_bounce(ctx.parsed, ctx.item.envelope, ours=deps.ours, raw=raw)
        returned = returned_message_ids(raw, own=ctx.parsed.message_id)
        first = (report.original_message_id,) if report.original_message_id else ()
        ctx.happenings.append(
            BounceReceived(
                inbox_id=ctx.item.id,
                verp_detail=report.verp_detail,
                recipients=report.recipients,
                permanent=report.permanent,
                status=report.status,
                diagnostic=report.diagnostic,
                message_ids=tuple(dict.fromkeys((*first, *returned))),
            )
        )
        return ProcessResult(ctx.item.id, Outcome.BOUNCE, None, ctx.classification.reason)
    if kind is MailKind.ABUSE_REPORT:
        return ProcessResult(ctx.item.id, Outcome.ABUSE_REPORT, None, ctx.classification.reason)
    return None
