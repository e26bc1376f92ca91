"""Which mail asks for the sender's own tickets (SPEC §12): the `+tickets` sub-address of any of our
addresses, by RCPT TO or, where there is no envelope (IMAP, pipe), by Delivered-To, To and Cc."""

from __future__ import annotations

import pytest

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope
from gateway.mail.parse import parse_mail
from gateway.pipeline.stages.my_tickets import asks_for_tickets
from tests.helpers import make_mail

OURS = GatewayAddresses(["support@smilepass.example", "billing@smilepass.example"])


@pytest.mark.parametrize(
    ("rcpt", "asks"),
    [
        ("support+tickets@smilepass.example", True),
        ("Support+TICKETS@SmilePass.example", True),
        ("billing+tickets@smilepass.example", True),
        ("support@smilepass.example", False),
        ("support+billing@smilepass.example", False),
        ("support+tickets.urgent@smilepass.example", False),
        ("support+SP-4.abcdef@smilepass.example", False),
        ("someone+tickets@customer.example", False),
    ],
)
def test_the_envelope_recipient_decides(rcpt: str, asks: bool) -> None:
    mail = parse_mail(make_mail(to="support+tickets@smilepass.example"))  # the header does not count here
    envelope = Envelope(mail_from="maria@customer.example", rcpt_tos=(rcpt,), source="smtp")
    assert asks_for_tickets(mail, envelope, ours=OURS, word="tickets") is asks


def test_without_an_envelope_the_headers_decide_and_the_word_is_the_configured_one() -> None:
    no_envelope = Envelope(mail_from="maria@customer.example", rcpt_tos=(), source="imap:support")
    mail = parse_mail(make_mail(to="Support <support+mine@smilepass.example>"))
    assert asks_for_tickets(mail, no_envelope, ours=OURS, word="mine")
    assert not asks_for_tickets(mail, no_envelope, ours=OURS, word="tickets")
    assert not asks_for_tickets(parse_mail(make_mail()), no_envelope, ours=OURS, word="tickets")
