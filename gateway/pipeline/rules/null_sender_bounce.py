"""Rule: a null envelope sender (`MAIL FROM:<>`) with bounce-like content.

RFC 5321 makes every bounce use the null reverse-path, so the null sender plus bounce wording
identifies the non-standard bounces whose From is neither mailer-daemon nor postmaster
(Exchange's "MicrosoftExchange…@" for one).
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.mail.signs import bounce_like
from gateway.pipeline.rules import envelope_sender

name = "null-sender-bounce"
description = "Null envelope sender (MAIL FROM:<> or Return-Path: <>) and a bounce-like subject or body."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    if envelope_sender(mail, envelope) != "":
        return None
    why = bounce_like(mail.subject, mail.text)
    return f"null envelope sender, {why}" if why else None
