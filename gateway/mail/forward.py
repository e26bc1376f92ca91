"""A forwarded mail read out of the mail that forwards it (SPEC §13 "Staff forwards"); pure.

Staff hand the desk a customer's mail by forwarding it. The clients write a forward in two ways:
- attached: the original whole, as a `message/rfc822` part (Gmail, Outlook and Thunderbird "forward
  as attachment"); it is parsed like any mail, so its From, Subject, body and images are its own;
- inline: the original's text under a marker line and a block of its header fields, in the client's
  language. The markers and field labels below are the ones the clients really write:
    Gmail        "---------- Forwarded message ---------" / "Weitergeleitete Nachricht" / "Message
                 transféré" / "Mensaje reenviado", then From/Von/De, Date, Subject, To, Cc (Gmail
                 keeps several labels in English in other languages, so both are read);
    Outlook      "-----Original Message-----" / "Ursprüngliche Nachricht" / "Message d'origine" /
                 "Mensaje original", or (desktop HTML and the web) a line of underscores, then
                 From/Von/De, Sent/Gesendet/Envoyé/Enviado (el), To/An/À/Para, Cc, Subject/Betreff/
                 Objet/Asunto; old Outlook writes the address as "[mailto:…]";
    Apple Mail   "Begin forwarded message:" / "Anfang der weitergeleiteten Nachricht:" / "Début du
                 message réexpédié :" / "Inicio del mensaje reenviado:", a blank line, then From,
                 Subject, Date, To with the same translations (Datum, Fecha);
    Thunderbird  "-------- Forwarded Message --------" and its translations, then a table:
                 Subject/Betreff/Sujet/Asunto, Date/Datum/Fecha, From/Von/De, To/An/Pour/Para,
                 each label followed by a tab.
  French puts a (no-break) space before the colon ("De : "); every label is read with or without it.
  The header block is the run of "Label: value" lines after the marker; it ends at the last line
  with a label we know, so a body that starts with "Error: card declined" stays the body.

This module reads only the forward; gateway/mail/quotes.py, which trims replies, keeps its own
patterns: the two answer different questions (where does the new text end, and who wrote the mail
that was handed on) and change for different reasons.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.utils import getaddresses

from gateway.domain import Address, ParsedAttachment, ParsedMail
from gateway.errors import NotAMailError
from gateway.mail.parse import parse_mail
from gateway.mail.requester import usable

ATTACHED = "attached"  # the `style` of a forward whose original is a message/rfc822 part

_MESSAGE_TYPES = ("message/rfc822", "message/global")

# --- the marker lines -------------------------------------------------------------------------------

_DASHES = r"[-–—=_*]{3,}"
# Gmail ("---------- Forwarded message ---------") and Thunderbird ("-------- Forwarded Message
# --------") in English, German, French, Spanish, and the other languages their users write in.
_FORWARDED_WORDS = (
    r"forwarded message|forwarded e-?mail|weitergeleitete nachricht|message transf[ée]r[ée]"
    r"|message r[ée]exp[ée]di[ée]|mensaje reenviado|mensaje enviado|messaggio inoltrato"
    r"|mensagem encaminhada|mensagem reencaminhada|doorgestuurd bericht|vidarebefordrat meddelande"
    r"|videresendt melding|videresendt meddelelse|wiadomo[śs][ćc] przekazana|p[řr]eposlan[áa] zpr[áa]va"
)
_ORIGINAL_WORDS = (
    r"original message|urspr[üu]ngliche nachricht|original-nachricht|originalnachricht"
    r"|message d'origine|message d’origine|mensaje original|messaggio originale|mensagem original"
    r"|oorspronkelijk bericht|wiadomo[śs][ćc] oryginalna"
)
_DECORATED_MARKER = re.compile(
    rf"^\s*{_DASHES}\s*(?P<words>{_FORWARDED_WORDS}|{_ORIGINAL_WORDS})\s*[:：]?\s*{_DASHES}\s*$",
    re.IGNORECASE,
)
# Apple Mail (macOS and iOS): a sentence with a colon, no dashes.
_APPLE_MARKER = re.compile(
    r"^\s*(?P<words>begin forwarded message|anfang der weitergeleiteten nachricht"
    r"|d[ée]but du message r[ée]exp[ée]di[ée]|d[ée]but du message transf[ée]r[ée]"
    r"|inicio del mensaje reenviado|comienzo del mensaje reenviado|inizio messaggio inoltrato"
    r"|in[íi]cio da mensagem reencaminhada|begin doorgestuurd bericht)\s*[:：]\s*$",
    re.IGNORECASE,
)
# Outlook's rule above its header block (desktop HTML rendered to text, and the web app).
_RULE = re.compile(r"^\s*(?:_{8,}|-{20,}|─{8,})\s*$")

# --- the header fields ------------------------------------------------------------------------------

_FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "from": ("from", "von", "de", "de la part de", "remitente", "da", "van", "od", "från", "fra"),
    "date": (
        "date", "sent", "datum", "gesendet", "gesendet am", "envoyé", "envoyé le", "date d'envoi",
        "fecha", "enviado", "enviado el", "enviada", "enviada el", "data", "inviato", "verzonden",
    ),
    "to": ("to", "an", "à", "a", "pour", "para", "destinataire", "aan", "till", "til", "do"),
    "cc": ("cc", "kopie", "kopie (cc)", "copie", "copie à", "cc (copie)", "copia", "con copia", "cco"),
    "subject": ("subject", "betreff", "objet", "sujet", "asunto", "oggetto", "assunto", "onderwerp", "temat"),
    "reply-to": ("reply-to", "reply to", "antwort an", "répondre à", "responder a", "rispondi a"),
}  # fmt: skip
_FIELD_OF = {label: field for field, labels in _FIELD_LABELS.items() for label in labels}
# "Label: value", the label perhaps in bold (**From:**, as a rendering of HTML may keep it), a (no-break)
# space before the colon in French, a tab after it in Thunderbird.
_LABELLED = re.compile(
    r"^\s*\*{0,2}(?P<label>[^\W\d_][\w'’ ()-]{0,30}?)\s*\*{0,2}\s*[:：]\*{0,2}(?:\s+|$)(?P<value>.*)$"
)
_MAX_BLOCK_LINES = 16
_SPACES = re.compile(r"[ \t\u00a0\u202f]+")


@dataclass(frozen=True)
class Forward:
    """A forward: how it was written, the forwarder's own text above it, and the original mail.

    `original` is a mail of its own: the forwarded From as its sender (None when it cannot be read,
    and `problem` says why), the forwarded Subject, the forwarded body as its text, and the images
    that came with it as its attachments."""

    style: str  # ATTACHED, or the marker line as the client wrote it (for the ticket's event)
    note: str  # the forwarder's text above the forward, as written
    original: ParsedMail
    problem: str = ""  # why `original.sender` is None
    leftover: tuple[ParsedAttachment, ...] = ()  # the forwarder's own attachments beside an attached original

    @property
    def sender(self) -> Address | None:
        return self.original.sender


def read_forward(mail: ParsedMail) -> Forward | None:
    """The forward `mail` carries, inline or attached, or None when it carries none.

    An inline forward in the text wins over an attached mail: the text is what the forwarder wrote.
    """
    lines = mail.text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    inline = _inline(lines, mail)
    if inline is not None:
        return inline
    return _attached(mail)


# --- attached -------------------------------------------------------------------------------------


def _attached(mail: ParsedMail) -> Forward | None:
    index = next((i for i, a in enumerate(mail.attachments) if a.content_type in _MESSAGE_TYPES), None)
    if index is None:
        return None
    part = mail.attachments[index]
    leftover = mail.attachments[:index] + mail.attachments[index + 1 :]
    try:
        original = parse_mail(part.payload)
    except NotAMailError as exc:  # the part holds no header section
        stub = _original(mail, None, subject="", text="", attachments=())
        return Forward(ATTACHED, mail.text, stub, f"the attached message is not a mail ({exc})", leftover)
    # The From as read from its undecoded value, as any mail's requester is (mail/requester.py).
    sender = next(
        (
            Address(mailbox.address.strip(), mailbox.name)
            for mailboxes in original.mailboxes.get("from", ())
            for mailbox in mailboxes
            if usable(mailbox.address)
        ),
        None,
    )
    problem = ""
    if sender is None:
        said = original.header("from")
        problem = (
            f"the attached message's From names no usable address ({said[:120]!r})"
            if said
            else "the attached message has no From"
        )
    return Forward(ATTACHED, mail.text, _replace_sender(original, sender), problem, leftover)


# --- inline -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    start: int  # the marker line (or the first field line when there is no marker)
    fields_end: int  # exclusive: the line after the last field line
    fields: dict[str, str]
    style: str


def _inline(lines: Sequence[str], mail: ParsedMail) -> Forward | None:
    block = _first_block(lines)
    if block is None:
        return None
    note_lines = list(lines[: block.start])
    while note_lines and (not note_lines[-1].strip() or _RULE.match(note_lines[-1])):
        note_lines.pop()
    body = _unquoted(list(lines[block.fields_end :]))
    sender, problem = _sender(block.fields.get("from"))
    original = _original(
        mail,
        sender,
        subject=_SPACES.sub(" ", block.fields.get("subject", "")).strip(),
        text="\n".join(body).strip("\n"),
        attachments=mail.attachments,
        reply_to=block.fields.get("reply-to"),
    )
    return Forward(block.style, "\n".join(note_lines), original, problem)


def _first_block(lines: Sequence[str]) -> _Block | None:
    """The first forward header block: a marker and its fields, or an Outlook field block alone."""
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        marker = _DECORATED_MARKER.match(line) or _APPLE_MARKER.match(line)
        if marker is not None:
            found = _fields_after(lines, index + 1)
            if found is not None:
                return _Block(index, found[0], found[1], line.strip())
            continue
        if _RULE.match(line) or _field_of(line) == "from":
            # Outlook without a marker: its rule, or From directly, then Sent (or Date) and Subject.
            first = index + 1 if _RULE.match(line) else index
            found = _fields_after(lines, first, blank_lines=0)
            if (
                found is not None
                and {"from", "date", "subject"} <= found[1].keys()
                and _field_of(lines[first]) == "from"
            ):
                return _Block(index, found[0], found[1], "From/Sent block")
    return None


def _fields_after(
    lines: Sequence[str], start: int, *, blank_lines: int = 2
) -> tuple[int, dict[str, str]] | None:
    """The header fields from `start` (after up to `blank_lines` blank lines), and the line after the
    last known one; None when they do not name a From or a Subject."""
    index = start
    skipped = 0
    while index < len(lines) and not lines[index].strip() and skipped < blank_lines:
        index += 1
        skipped += 1
    fields: dict[str, str] = {}
    end = index
    last_field: str | None = None
    for position in range(index, min(len(lines), index + _MAX_BLOCK_LINES)):
        line = lines[position]
        if not line.strip():
            break
        match = _LABELLED.match(line)
        field = _FIELD_OF.get(_label_key(match.group("label"))) if match else None
        if match is None:
            # A long To or Cc wrapped onto the next line (indented, or a list of addresses).
            if last_field in ("to", "cc") and ("@" in line or line[:1].isspace()):
                continue
            break
        if field is not None:
            fields.setdefault(field, match.group("value").strip())
            end = position + 1
        last_field = field
    if "from" not in fields and "subject" not in fields:
        return None
    return end, fields


def _field_of(line: str) -> str | None:
    match = _LABELLED.match(line)
    return _FIELD_OF.get(_label_key(match.group("label"))) if match else None


def _label_key(label: str) -> str:
    return _SPACES.sub(" ", label.replace("’", "'")).strip().lower()


def _unquoted(body: list[str]) -> list[str]:
    """The forwarded body, less the `> ` a client that quotes forwards put on every line."""
    while body and not body[0].strip():
        body.pop(0)
    text_lines = [line for line in body if line.strip()]
    if text_lines and all(line.lstrip().startswith(">") for line in text_lines):
        return [re.sub(r"^\s*> ?", "", line) for line in body]
    return body


# --- the forwarded From -----------------------------------------------------------------------------

_MAILTO = re.compile(r"[\[<(]\s*mailto:\s*([^\]>)\s]+)\s*[\]>)]", re.IGNORECASE)


def _sender(value: str | None) -> tuple[Address | None, str]:
    """The forwarded From as an address, or why it cannot be read."""
    if value is None:
        return None, "the forward's header block has no From line"
    text = _MAILTO.sub(r"<\1>", value.strip())
    text = text.replace("**", "")
    try:
        pairs = getaddresses([text])
    except (TypeError, ValueError, IndexError):
        pairs = []
    for name, address in pairs:
        address = address.strip()
        if usable(address) and address.lower() in text.lower():
            return Address(address, _SPACES.sub(" ", name).strip(" \"'")), ""
    bare = re.search(r"[^\s<>\[\]()\"',;:]+@[^\s<>\[\]()\"',;:]+", text)
    if bare and usable(bare.group(0).rstrip(".")):
        address = bare.group(0).rstrip(".")
        name = text[: bare.start()].strip(" <[(\"'")
        return Address(address, _SPACES.sub(" ", name)), ""
    return None, f"the forwarded From names no address: {value.strip()[:120]!r}"


def _replace_sender(mail: ParsedMail, sender: Address | None) -> ParsedMail:
    return replace(mail, sender=sender, mailboxes={**mail.mailboxes, "from": ((sender,),) if sender else ()})


def _original(
    mail: ParsedMail,
    sender: Address | None,
    *,
    subject: str,
    text: str,
    attachments: tuple[ParsedAttachment, ...],
    reply_to: str | None = None,
) -> ParsedMail:
    """The forwarded mail as a mail of its own, built from what the inline forward says of it."""
    replies = tuple(Address(a, n) for n, a in getaddresses([reply_to]) if usable(a)) if reply_to else ()
    return ParsedMail(
        message_id=None,
        subject=subject,
        sender=sender,
        reply_to=replies,
        to=(),
        cc=(),
        delivered_to=(),
        date=None,
        in_reply_to=(),
        references=(),
        text=text,
        html=None,
        attachments=attachments,
        headers={"from": (sender.address,)} if sender else {},
        content_type="text/plain",
        content_hash=mail.content_hash,
        mailboxes={"from": ((sender,),)} if sender else {},
    )
