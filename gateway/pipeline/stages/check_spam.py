"""Stage: a mail the deployment's spam filter marked is kept, with no ticket and no answer (SPEC §11)."""

from __future__ import annotations

from gateway.pipeline.spam import spam_verdict
from gateway.pipeline.stages.context import (
    MailContext,
    Outcome,
    ProcessorDeps,
    ProcessResult,
)
from gateway.rawmail import top_header_fields


def spam_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """Outcome `spam`: stored, no ticket, no acknowledgement (no backscatter); `inbox release` undoes it."""
    if ctx.item.released:
        return None
    verdict = spam_verdict(top_header_fields(ctx.item.raw), deps.settings.security.spam_headers)
    if verdict is None:
        return None
    return ProcessResult(ctx.item.id, Outcome.SPAM, None, f"spam verdict of the filter: {verdict}")
