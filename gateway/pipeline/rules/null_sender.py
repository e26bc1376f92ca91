"""Loop signal: the null envelope sender (`MAIL FROM:<>`, or `Return-Path: <>` where there is no envelope).

Mail with the null reverse-path must never be answered (RFC 5321 §4.5.5), whatever it says.
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.pipeline.rules import envelope_sender

name = "null-sender"
description = "Null envelope sender."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    return "null envelope sender" if envelope_sender(mail, envelope) == "" else None
