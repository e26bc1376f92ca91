"""Bounces sent to `support@` without VERP, one constructed example per format family (SPEC §2, §7):
each is recognised (never a ticket) and its failed address read, through the real parser,
`classify` and `read_bounce` as the pipeline calls them (with the raw bytes, so flufl.bounce runs).

The examples are written here from each family's published wording, not copied from the corpus:
they check that the rules generalise beyond the mail they were tuned on (`tests/integration/
test_corpus_bounces.py` measures the corpus halves).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope
from gateway.mail.bounce import read_bounce, returned_message_ids
from gateway.mail.parse import parse_mail
from gateway.pipeline.classify import MailKind, classify

OURS = GatewayAddresses(["support@smilepass.example"])
# IMAP and pipe intake know no envelope: the harder case, with no null sender to go by.
NO_ENVELOPE = Envelope(mail_from="", rcpt_tos=(), source="imap:support")


def notice(sender: str, subject: str, body: str, *headers: str) -> bytes:
    head = [
        f"From: {sender}",
        "To: support@smilepass.example",
        f"Subject: {subject}",
        "Date: Tue, 01 Dec 2026 09:00:00 +0100",
        "Message-ID: <notice.1@mx.kunde.example>",
        *headers,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    return ("\r\n".join(head) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()


@dataclass(frozen=True)
class Family:
    name: str
    raw: bytes
    failed: tuple[str, ...]
    permanent: bool = True


FAMILIES = [
    Family(
        "Lotus Notes",
        notice(
            '"Notes Mail Router" <router@domino.kunde.example>',
            "DELIVERY FAILURE: User mueller (mueller@kunde.example) not listed in Domino Directory",
            "Your message\n\n  Subject: Ihre Rechnung SP-12\n\nwas not delivered to:\n\n"
            "  mueller@kunde.example\n\nbecause:\n\n"
            "  User mueller (mueller@kunde.example) not listed in Domino Directory\n",
        ),
        ("mueller@kunde.example",),
    ),
    Family(
        "Lotus Notes, German",
        notice(
            '"Domino Server" <domino@kunde.example>',
            "Zustellungsfehler: Ihre Rechnung",
            "Ihre Nachricht\n\n  Betreff: Ihre Rechnung\n\nwurde nicht zugestellt an:\n\n"
            "  k.schmidt@kunde.example\n\nweil:\n\n"
            "  Benutzer k.schmidt ist im Domino-Verzeichnis nicht aufgeführt\n",
        ),
        ("k.schmidt@kunde.example",),
    ),
    Family(
        "old Exchange",
        notice(
            "System Administrator <exadmin@corp.example>",
            "Undeliverable: Your ticket SP-7",
            "Your message\n\n  To:      Mark Olsen\n  Subject: Your ticket SP-7\n"
            "  Sent:    Tue, 1 Dec 2026 08:58:00 +0100\n\n"
            "did not reach the following recipient(s):\n\n"
            "mark.olsen@corp.example on Tue, 1 Dec 2026 09:00:00 +0100\n"
            "    The recipient name is not recognized\n"
            "\tThe MTS-ID of the original message is: c=us;a= ;p=corp;l=EXCH01-0612010800Z\n"
            "    MSEXCH:IMS:Corp:Site:EXCH01 0 (000C05A6) Unknown Recipient\n",
        ),
        ("mark.olsen@corp.example",),
    ),
    Family(
        "qmail",
        notice(
            "MAILER-DAEMON@mx.ostsee.example",
            "failure notice",
            "Hi. This is the qmail-send program at mx.ostsee.example.\n"
            "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
            "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
            "<p.nowak@ostsee.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
            "--- Below this line is a copy of the message.\n\nReturn-Path: <x@smilepass.example>\n",
        ),
        ("p.nowak@ostsee.example",),
    ),
    Family(
        "Exchange, German",
        notice(
            "Microsoft Outlook <MicrosoftExchange329e71ec88ae@kunde.example>",
            "Unzustellbar: Ihre Anfrage SP-3",
            "Die Zustellung an folgende Empfänger oder Gruppen ist fehlgeschlagen:\n\n"
            "jonas.weber@kunde.example\nDas Postfach des Empfängers existiert nicht.\n\n"
            "Diagnoseinformationen für Administratoren:\n\n"
            "Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'\n\n"
            "Ursprüngliche Nachrichtenkopfzeilen:\n\nTo: other@kunde.example\n",
        ),
        ("jonas.weber@kunde.example",),
    ),
    Family(
        "Exchange, French",
        notice(
            "Microsoft Outlook <MicrosoftExchange329e71ec88ae@client.example>",
            "Non remis : Votre demande SP-4",
            "La remise aux destinataires ou groupes suivants a échoué :\n\n"
            "claire.martin@client.example\nL'adresse de messagerie est introuvable.\n\n"
            "Informations de diagnostic pour les administrateurs :\n\n"
            "Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found'\n",
        ),
        ("claire.martin@client.example",),
    ),
    Family(
        "Exchange, Spanish",
        notice(
            "Microsoft Outlook <MicrosoftExchange329e71ec88ae@cliente.example>",
            "No se puede entregar: Su solicitud SP-5",
            "Error en la entrega a estos destinatarios o grupos:\n\n"
            "lucia.gomez@cliente.example\nEl buzón del destinatario está lleno.\n\n"
            "Remote Server returned '552 5.2.2 mailbox full'\n",
        ),
        ("lucia.gomez@cliente.example",),
    ),
    Family(
        "Exchange, Italian",
        notice(
            "Microsoft Outlook <MicrosoftExchange329e71ec88ae@cliente.example>",
            "Non recapitabile: La sua richiesta SP-6",
            "Recapito non riuscito per i seguenti destinatari o gruppi:\n\n"
            "marco.rossi@cliente.example\nL'indirizzo di posta elettronica non è stato trovato.\n\n"
            "Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'\n",
        ),
        ("marco.rossi@cliente.example",),
    ),
    Family(
        "Exchange, Portuguese",
        notice(
            "Microsoft Outlook <MicrosoftExchange329e71ec88ae@cliente.example>",
            "Não é possível entregar: O seu pedido SP-8",
            "Falha na entrega a estes destinatários ou grupos:\n\n"
            "joao.silva@cliente.example\nO endereço de e-mail não foi encontrado.\n\n"
            "Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'\n",
        ),
        ("joao.silva@cliente.example",),
    ),
    Family(
        "a gateway's own notice",
        notice(
            "Secure Mail Gateway <gateway@filter.partner.example>",
            "Message delivery failure",
            "Your message could not be delivered to the following recipients:\n\n"
            "* ops@partner.example  (550 Requested action not taken: mailbox unavailable)\n\n"
            "Please contact your system administrator.\n",
        ),
        ("ops@partner.example",),
    ),
    Family(
        "MDaemon",
        notice(
            "MDaemon@mail.werkstatt.example",
            "Permanent Delivery Failure",
            "The attached message had PERMANENT fatal delivery errors!\n\n"
            "After one or more unsuccessful delivery attempts the attached message has\n"
            "been removed from the mail queue on this server.\n\nYOUR MESSAGE WAS NOT DELIVERED!\n\n"
            "The following addresses did NOT receive a copy of your message:\n\n"
            "> meister@werkstatt.example\n\n--- Session Transcript ---\n",
        ),
        ("meister@werkstatt.example",),
    ),
    Family(
        "plain text without a DSN part",
        notice(
            "Mail Delivery Subsystem <daemon@relay.firma.example>",
            "Returned mail: User unknown",
            "The original message was received at Tue, 1 Dec 2026 08:59:00 +0100\n\n"
            "... while talking to mx.firma.example.:\n>>> RCPT To:<olga@firma.example>\n"
            "<<< 550 5.1.1 <olga@firma.example>... User unknown\n",
        ),
        ("olga@firma.example",),
    ),
    Family(
        "a delay warning",
        notice(
            "Mail Delivery System <mds@relay.firma.example>",
            "Delayed Mail (still being retried)",
            "This is the mail system at host relay.firma.example.\n\n"
            "####################################################################\n"
            "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
            "####################################################################\n\n"
            "Your message could not be delivered for more than 4 hour(s).\n"
            "It will be retried until it is 5 day(s) old.\n\n"
            "<slow@firma.example>: connect to mx.firma.example[203.0.113.5]:25: Connection timed out\n",
        ),
        ("slow@firma.example",),
        permanent=False,
    ),
]


@pytest.mark.parametrize("family", FAMILIES, ids=[family.name for family in FAMILIES])
def test_each_family_is_a_bounce_and_its_failed_address_is_read(family: Family) -> None:
    parsed = parse_mail(family.raw)
    classification = classify(parsed, NO_ENVELOPE, ours=OURS, raw=family.raw)
    assert classification.kind is MailKind.BOUNCE, classification.reason
    report = read_bounce(parsed, NO_ENVELOPE, ours=OURS, raw=family.raw)
    assert tuple(address.lower() for address in report.recipients) == family.failed
    assert report.permanent is family.permanent


def test_the_remote_servers_words_and_code_are_read_from_a_translated_notice() -> None:
    [french] = [family for family in FAMILIES if family.name == "Exchange, French"]
    report = read_bounce(parse_mail(french.raw), NO_ENVELOPE, ours=OURS, raw=french.raw)
    assert report.status == "5.1.10"
    assert report.diagnostic == "550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found"


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        # A person forwarding a bounce, or asking about one in their own words, gets a ticket.
        (
            "Fwd: Undeliverable: Your ticket SP-7",
            "Why did this bounce?\n\n---------- Forwarded message ---------\n"
            "Delivery has failed to these recipients or groups:\n\nmark.olsen@corp.example\n",
        ),
        ("Delivery failed?", "My parcel could not be delivered to my address, what now?"),
        ("Undeliverable invoices", "Your invoices to our accounts team are undeliverable, please check."),
        ("Returned mail", "I returned the card reader by mail last week. Did it arrive?"),
    ],
)
def test_a_person_writing_about_delivery_is_not_a_bounce(subject: str, body: str) -> None:
    raw = notice("Ana Kovac <ana.kovac@kunde.example>", subject, body)
    assert classify(parse_mail(raw), NO_ENVELOPE, ours=OURS, raw=raw).kind is MailKind.NORMAL


def test_every_returned_message_id_is_found_even_in_a_wrapped_report() -> None:
    """A gateway that wraps the whole DSN in another message: the DSN's own id comes first, then the
    id of the mail that bounced."""
    dsn = (
        "From: MAILER-DAEMON@mx.kunde.example\r\nMessage-ID: <dsn.5@mx.kunde.example>\r\n"
        "Subject: Delivery Status Notification (Failure)\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="in"\r\n\r\n'
        "--in\r\nContent-Type: text/plain\r\n\r\nDelivery to the following recipients failed.\r\n\r\n"
        "   gone@kunde.example\r\n\r\n"
        "--in\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.kunde.example\r\n\r\n"
        "Final-Recipient: rfc822; gone@kunde.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--in\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "From: SmilePass Support <support@smilepass.example>\r\n"
        "Message-ID: <tg.SP-9.o31.ab12cd34ef56@smilepass.example>\r\n\r\n"
        "--in--\r\n"
    )
    raw = (
        "From: postmaster@wrapper.kunde.example\r\nTo: support@smilepass.example\r\n"
        "Subject: Delivery Status Notification (Failure)\r\nMessage-ID: <dsn.5@mx.kunde.example>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="out"\r\n\r\n'
        "--out\r\nContent-Type: message/rfc822\r\n\r\n" + dsn + "\r\n--out--\r\n"
    ).encode()
    parsed = parse_mail(raw)
    assert returned_message_ids(raw, own=parsed.message_id) == ("tg.SP-9.o31.ab12cd34ef56@smilepass.example",)
    report = read_bounce(parsed, NO_ENVELOPE, ours=OURS, raw=raw)
    assert (report.recipients, report.permanent, report.status) == (("gone@kunde.example",), True, "5.1.1")


def test_a_mail_flufl_bounce_misreads_is_not_a_bounce_without_a_second_sign() -> None:
    """flufl.bounce reads "failed" addresses out of some ordinary replies (a quoted header block with
    an address is enough for its heuristics); without a bounce word, a machine sender or an
    automated header, the mail stays a customer's."""
    body = "Thanks, that worked.\n\n----- Original Message -----\nFrom: <xxx@hotmail.com>\nTo: support\n"
    raw = notice("Bob <bob@comcast.example>", "Re: Test", body)
    assert classify(parse_mail(raw), NO_ENVELOPE, ours=OURS, raw=raw).kind is MailKind.NORMAL


def test_a_huge_notice_is_read_for_its_first_hundred_recipients() -> None:
    """A bounce names the recipients of one mail (SMTP servers take 100 at most): a notice naming
    thousands is read for the first hundred, so its size cannot make reading it quadratic."""
    lines = "\n".join(f"<u{i}@kunde.example>: host mx said: 550 5.1.1 no such user" for i in range(5000))
    raw = notice("MAILER-DAEMON@mx.kunde.example", "Undelivered Mail Returned to Sender", lines + "\n")
    report = read_bounce(parse_mail(raw), NO_ENVELOPE, ours=OURS, raw=raw)
    assert len(report.recipients) == 100 and report.permanent
