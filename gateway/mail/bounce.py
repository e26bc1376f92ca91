"""Read what a bounce says: who failed, how (status, permanence, the remote server's words), which of
our mails it was (Message-ID, VERP detail). SPEC §7 "Bounces".

RFC 3464 `message/delivery-status` fields are trusted first, wherever the parser put them (an
attachment or the text). Without them, flufl.bounce (Mailman's seventeen bounce detectors, kept up
for twenty years) reads the failed addresses when it is given the raw mail; where it finds none, the
notices of Postfix, Exim, qmail, Sendmail, Exchange / Office 365, Gmail, Lotus Notes, MDaemon and
gateways, in English and the usual other languages, are read from their wording.
"""

from __future__ import annotations

import dataclasses
import email
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message

from flufl.bounce import all_failures

from gateway.addresses import GatewayAddresses, bare
from gateway.domain import Envelope, ParsedMail
from gateway.mail.media_type import media_type
from gateway.mail.returned_message import RETURNED_PARTS, returned_headers
from gateway.mail.signs import RECIPIENT_LIST_HEADING

log = logging.getLogger(__name__)
# flufl.bounce logs every detector it runs at INFO and a detector's exception with its traceback;
# we catch those exceptions (the mail is read by our own rules then), so its log is not the operator's.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

# A diagnostic is kept for staff to read on the ticket, not for a novel.
_DIAGNOSTIC_LIMIT = 500
# flufl.bounce reads this much of a bounce: the notice and its report come first, and a returned
# message of many megabytes would only cost its regular expressions time.
_LIBRARY_WINDOW = 512 * 1024
# How much of the text our own wording rules read: a notice says what failed at its top.
_NOTICE_WINDOW = 64 * 1024
# A bounce names the recipients of one mail: SMTP servers take 100 at most (RFC 5321), we send to one.
_MAX_RECIPIENTS = 100


@dataclass(frozen=True)
class BounceReport:
    recipients: tuple[str, ...]  # the failed recipients (the address we sent to, when the DSN names it)
    status: str | None  # enhanced status code, e.g. "5.1.1", when known
    permanent: bool  # 5.x.x (or a clearly permanent non-standard bounce)
    diagnostic: str | None  # the remote server's words, one line
    original_message_id: str | None  # Message-ID of the mail that bounced, without angle brackets
    verp_detail: str | None  # "+detail" of our address it came back to, e.g. "bounce-17.ab12cd"


@dataclass(frozen=True)
class _Failure:
    address: str
    action: str | None  # RFC 3464 Action, lower case; None for non-standard bounces
    status: str | None
    diagnostic: str | None
    says_permanent: bool = False  # the notice says "permanent error" in words
    says_delayed: bool = False  # the notice says it is only a delay warning
    verdict: bool | None = None  # permanence as flufl.bounce's detector decided it

    @property
    def permanent(self) -> bool:
        if self.verdict is not None:
            return self.verdict
        if self.status is not None:
            return self.status.startswith("5")
        code = _basic_code(self.diagnostic or "")
        if code is not None:
            return code.startswith("5")
        if self.action is not None:
            # Without any code, "failed" means the reporting MTA gave up for good.
            return self.action in _FAILED_ACTIONS
        # A notice without a DSN and without a code: a failure unless it says it is only a delay
        # (a delay warning always says so: "delayed", "not yet delivered", "will keep trying").
        return self.says_permanent or not self.says_delayed


def read_bounce(
    mail: ParsedMail, envelope: Envelope, *, ours: GatewayAddresses, raw: bytes | None = None
) -> BounceReport:
    """What the bounce `mail` reports; fields it does not say are None (or empty).

    With the `raw` bytes, flufl.bounce reads the failed addresses of a bounce without RFC 3464
    fields; our own wording rules read them where it finds none (or without `raw`).
    """
    failures = _dsn_failures(mail, raw) or _library_failures(mail, raw) or _text_failures(mail)
    failures = _without(failures, ours=ours, bouncer=mail.sender.address if mail.sender else "")
    permanent = [failure for failure in failures if failure.permanent]
    # The report speaks for the recipients it lists: when some failed for good, those alone,
    # so a delayed recipient in the same notice is never marked undeliverable.
    chosen = permanent or failures
    first = chosen[0] if chosen else None
    return BounceReport(
        recipients=tuple(failure.address for failure in chosen),
        status=first.status if first else None,
        permanent=bool(permanent),
        diagnostic=first.diagnostic if first else None,
        original_message_id=_original_message_id(mail),
        verp_detail=_verp_detail(mail, envelope, ours=ours),
    )


# --- RFC 3464 delivery-status fields ----------------------------------------------------------

_DSN_PARTS = frozenset({"message/delivery-status", "message/global-delivery-status"})
_RECIPIENT_FIELD = re.compile(r"^(?:final|original)-recipient\s*:", re.IGNORECASE | re.MULTILINE)
# Success and forwarding notices are DSNs too; they report no failure.
_NOT_FAILED = frozenset({"delivered", "relayed", "expanded"})
# RFC 3464 says "failed"; some MTAs (NTMail) write "failure".
_FAILED_ACTIONS = frozenset({"failed", "failure"})


def _dsn_failures(mail: ParsedMail, raw: bytes | None = None) -> list[_Failure]:
    sources = [_decode(a.payload) for a in mail.attachments if a.content_type.lower() in _DSN_PARTS]
    # Parsers that do not keep message/delivery-status as a part leave its fields in the text.
    sources.append(mail.text)
    # A gateway may wrap the whole report in a message of its own, where the parser does not look.
    if raw is not None:
        sources.extend(_nested_dsn_parts(raw))
    for source in sources:
        if _RECIPIENT_FIELD.search(source):
            failures = [f for f in map(_failure_from_fields, _field_blocks(source)) if f is not None]
            if failures:
                return failures
    return []


def _nested_dsn_parts(raw: bytes) -> Iterator[str]:
    """The delivery-status parts anywhere in the raw mail, each as its header-style blocks' text."""
    for part in _message(raw).walk():
        if media_type(part) not in _DSN_PARTS:
            continue
        blocks = part.get_payload()
        if isinstance(blocks, list):
            yield "\n\n".join(
                "\n".join(f"{name}: {value}" for name, value in block.items()) for block in blocks
            )
        elif isinstance(blocks, str):
            yield blocks


def _field_blocks(text: str) -> Iterator[dict[str, str]]:
    """The header-style blocks of a delivery-status body, each as lower-case field -> unfolded value."""
    fields: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
        elif line[0] in " \t" and last is not None:
            fields[last] += " " + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            last = name.strip().lower()
            fields.setdefault(last, value.strip())
    if fields:
        yield fields


def _failure_from_fields(fields: dict[str, str]) -> _Failure | None:
    address = _typed_address(fields.get("original-recipient")) or _typed_address(
        fields.get("final-recipient")
    )
    if address is None:
        return None
    action = fields.get("action", "").strip().lower() or None
    if action in _NOT_FAILED:
        return None
    code = fields.get("diagnostic-code", "")
    # "smtp; 550 5.1.1 …": the words follow the diagnostic type.
    diagnostic = _one_line(code.partition(";")[2] if ";" in code else code)
    status_field = fields.get("status", "")
    status = _enhanced_code(status_field) or _enhanced_code(diagnostic or "")
    # "Status: 553 Exceeded maximum inbound message size": a basic code where the enhanced one belongs.
    if diagnostic is None and status is None and _basic_code(status_field):
        diagnostic = _one_line(status_field)
    return _Failure(address=address, action=action, status=status, diagnostic=diagnostic)


def _typed_address(value: str | None) -> str | None:
    """The address of an RFC 3464 address field ("rfc822; ana@example.com"), or None."""
    if not value:
        return None
    address = bare(value.partition(";")[2] if ";" in value else value)
    return address if "@" in address else None


# --- Non-standard bounces, read from their wording ---------------------------------------------

# Where a bounce's own words end and the returned message begins.
_RETURNED_MESSAGE = re.compile(
    r"""^[ \t]*(?:
        -+\s*This\s+is\s+a\s+copy\s+of\s+the\s+message              # Exim
      | -+\s*Below\s+this\s+line\s+is\s+a\s+copy\s+of\s+the\s+message  # qmail
      | Original\s+message\s+headers:                              # Exchange
      | Urspr[üu]ngliche\s+Nachrichtenkopfzeilen:                   # Exchange, German
      | En-t[êe]tes\s+(?:du\s+)?message\s+d'origine\s*:             # Exchange, French
      | Encabezados\s+del\s+mensaje\s+original:                     # Exchange, Spanish
      | Intestazioni\s+(?:del\s+)?messaggio\s+originale:            # Exchange, Italian
      | Cabe[çc]alhos\s+da\s+mensagem\s+original:                   # Exchange, Portuguese
      | -+\s*(?:Original|Returned|Undelivered)\s+message             # Gmail, Sendmail, others
      | -+\s*Returned\s+Mail\s*-+                                  # gateways
      | -+\s*Message\s+header\s+follows
      | (?:Received|Return-Path|DKIM-Signature|Message-ID):\s      # a bare returned header block
    )""",
    re.IGNORECASE | re.MULTILINE | re.VERBOSE,
)

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDRESS = rf"[^\s<>()\"',;:@]+@{_LABEL}(?:\.{_LABEL})+"

# Phrases that name a failed recipient in the sentence itself.
_NAMED_RECIPIENT = re.compile(
    rf"""^[ \t]*<({_ADDRESS})>                               # Postfix, qmail, Sendmail, Yahoo: "<ana@x>: …"
      | Your\s+message\s+to\s+<?({_ADDRESS})>?\s+couldn'?t\s+be\s+delivered   # Office 365
      | wasn'?t\s+delivered\s+to\s+<?({_ADDRESS})>?          # Gmail
      | problem\s+delivering\s+your\s+message\s+to\s+<?({_ADDRESS})>?       # Gmail
      | was\s+not\s+delivered\s+to:?\s+<?({_ADDRESS})>?      # Lotus Notes and others
      | (?:could\s+not|cannot|couldn'?t)\s+be\s+delivered\s+to:?\s+<?({_ADDRESS})>?   # gateways
      | wurde\s+nicht\s+zugestellt\s+an:?\s+<?({_ADDRESS})>?  # Lotus Notes, German
      | ^[ \t]*(?:<<<\s*)?5\d\d[ -](?:5\.\d{{1,3}}\.\d{{1,3}}[ \t]+)?<({_ADDRESS})>  # SMTP refusal
    """,
    re.IGNORECASE | re.MULTILINE | re.VERBOSE,
)

# A recipient standing at the start of its line under a heading: bare, in <> or quotes, or after a
# list mark (MDaemon's "> ana@x", a "* ana@x" bullet), maybe with a colon or "on <date>" after it.
_LISTED_RECIPIENT = re.compile(
    rf"""^[ \t]*(?:[>*•-][ \t]*)?['"<]?({_ADDRESS})['">]?:?(?:[ \t]|$)""", re.MULTILINE
)

# The remote server's words, in each MTA's framing; the first that matches is kept.
_DIAGNOSTICS = tuple(
    re.compile(pattern, re.IGNORECASE | re.DOTALL | re.MULTILINE)
    for pattern in (
        r"Remote\s+Server\s+returned\s+'([^']+)'",  # Exchange, Office 365
        r"#(\d{3}[ -]\d\.\d{1,3}\.\d{1,3}[^#]*)##",  # Exchange diagnostic line
        r"The\s+response\s+from\s+the\s+remote\s+server\s+was:\s*\n(.+?)(?:\n\s*\n|\Z)",  # Gmail
        r"(?:Remote\s+host\s+)?said:\s*(.+?)(?:\(in\s+reply\s+to|\n\s*\n|Giving\s+up|\Z)",  # Postfix, qmail
        r"SMTP\s+error\s+from\s+remote\s+mail\s+server\s+after\s+[^\n]*\n(.+?)(?:\n\s*\n|\Z)",  # Exim
        r"\(reason:\s*(.+?)\)\s*$",  # Sendmail
        r"^[ \t]*(?:<<<\s*)?([45]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b[^\n]*)",  # any SMTP reply line
        r"because:\s*\n\s*(.+?)(?:\n\s*\n|\Z)",  # Lotus Notes
        r"weil:\s*\n\s*(.+?)(?:\n\s*\n|\Z)",  # Lotus Notes, German
        r"[\[(]\s*SMTP\s+Error\s+Code\s+([45]\d\d)\s*[\])]",  # gateways: "[SMTP Error Code 550]"
    )
)

_PERMANENT_WORDS = re.compile(
    r"permanent\s+error|failed\s+permanently|permanent(?:ly)?\s+fatal|has\s+been\s+permanently\s+rejected"
    r"|PERMANENT\s+fatal\s+delivery\s+errors|I'?ve\s+given\s+up|dauerhaft|permanente?\b",
    re.IGNORECASE,
)
# What a delay warning says of itself; a failure notice never says it (it says "not been delivered").
_DELAY_WORDS = re.compile(
    r"\bdelayed\b|\bdelay(?:ed)?\s+(?:warning|notice|notification)|not\s+yet\s+been\s+delivered"
    r"|will\s+(?:continue|keep)\s+(?:trying|to\s+try|attempting)|will\s+(?:be\s+)?retr(?:y|ied)"
    r"|still\s+(?:trying|being\s+retried)|THIS\s+IS\s+A\s+WARNING|warning\s+message\s+only"
    r"|could\s+not\s+send\s+message\s+for\s+past|no\s+action\s+is\s+required\s+on\s+your\s+part"
    r"|verz[öo]gert|retard[ée]e?|retrasad[oa]|ritardat[oa]|atrasad[oa]|vertraagd",
    re.IGNORECASE,
)


def notice_recipients(text: str) -> tuple[str, ...]:
    """The failed recipients a non-standard notice names in its own words (not in the returned
    message it carries), in order; () when it names none."""
    notice = _RETURNED_MESSAGE.split(text[:_NOTICE_WINDOW], maxsplit=1)[0]
    addresses = [
        next(group for group in match.groups() if group) for match in _NAMED_RECIPIENT.finditer(notice)
    ]
    if heading := RECIPIENT_LIST_HEADING.search(notice):
        addresses.extend(_LISTED_RECIPIENT.findall(notice, heading.end()))
    return tuple(dict.fromkeys(addresses))


def _text_failures(mail: ParsedMail) -> list[_Failure]:
    addresses = notice_recipients(mail.text)[:_MAX_RECIPIENTS]
    if not addresses:
        return []
    notice = _RETURNED_MESSAGE.split(mail.text[:_NOTICE_WINDOW], maxsplit=1)[0]
    template = _failure_from_notice("", notice)
    return [dataclasses.replace(template, address=address) for address in addresses]


def _failure_from_notice(address: str, notice: str, *, verdict: bool | None = None) -> _Failure:
    """A failure with what the notice says as a whole (its diagnostic, code and words)."""
    diagnostic = _diagnostic(notice)
    says_permanent = _PERMANENT_WORDS.search(notice) is not None
    says_delayed = _DELAY_WORDS.search(notice) is not None
    if verdict and says_delayed and not says_permanent:
        # flufl.bounce's MTA detectors take every recipient they read as failed; a notice that
        # calls itself a delay warning knows better.
        verdict = False
    return _Failure(
        address,
        action=None,
        status=_enhanced_code(diagnostic or "") or _enhanced_code(notice),
        diagnostic=diagnostic,
        says_permanent=says_permanent,
        says_delayed=says_delayed,
        verdict=verdict,
    )


def _library_failures(mail: ParsedMail, raw: bytes | None) -> list[_Failure]:
    """The failures flufl.bounce reads from the raw bounce, with the notice's own diagnostic."""
    if raw is None:
        return []
    try:
        temporary, permanent = all_failures(_message(raw))
    except Exception as exc:  # a detector that trips over a malformed mail: our own rules read it
        log.debug("flufl.bounce could not read this bounce: %r", exc)
        return []
    notice = _RETURNED_MESSAGE.split(mail.text[:_NOTICE_WINDOW], maxsplit=1)[0]
    found: list[_Failure] = []
    for addresses, verdict in ((permanent, True), (temporary, False)):
        if not addresses:
            continue
        template = _failure_from_notice("", notice, verdict=verdict)
        for value in sorted(addresses)[:_MAX_RECIPIENTS]:
            address = bare(value.decode("ascii", "replace"))
            if "@" in address and " " not in address:
                found.append(dataclasses.replace(template, address=address))
    return found


def library_failed_addresses(raw: bytes) -> tuple[str, ...]:
    """Every address flufl.bounce reads as failed (for good or delayed) from a raw mail; () when none."""
    try:
        temporary, permanent = all_failures(_message(raw))
    except Exception:  # a detector that trips over a malformed mail has read nothing
        return ()
    addresses = (bare(value.decode("ascii", "replace")) for value in sorted(permanent | temporary))
    return tuple(address for address in addresses if "@" in address and " " not in address)


def _message(raw: bytes) -> Message:
    return email.message_from_bytes(raw[:_LIBRARY_WINDOW])


def _diagnostic(notice: str) -> str | None:
    for pattern in _DIAGNOSTICS:
        if match := pattern.search(notice):
            return _one_line(match.group(1))
    return None


# --- Codes and small helpers --------------------------------------------------------------------

# An enhanced status code (RFC 3463) standing alone: "5.1.1", "#5.1.10", "550-5.1.1", but not the
# inside of an IP address or of a version number such as "v2.2.12".
_ENHANCED = re.compile(r"(?<![\w.])([245]\.\d{1,3}\.\d{1,3})(?!\w|\.\d)")
# A basic SMTP reply code at the start of a reply: "550 ", "550-", "#550 ".
_BASIC = re.compile(r"(?<![\w.])([45]\d\d)(?=[ -]|$)")


def _enhanced_code(text: str) -> str | None:
    match = _ENHANCED.search(text)
    return match.group(1) if match else None


def _basic_code(text: str) -> str | None:
    match = _BASIC.search(text)
    return match.group(1) if match else None


def _one_line(text: str | None) -> str | None:
    if text is None:
        return None
    line = " ".join(text.split())
    if not line:
        return None
    return line if len(line) <= _DIAGNOSTIC_LIMIT else line[: _DIAGNOSTIC_LIMIT - 1] + "…"


def _decode(payload: bytes) -> str:
    return payload.decode("utf-8", errors="replace")


def _without(failures: Iterable[_Failure], *, ours: GatewayAddresses, bouncer: str) -> list[_Failure]:
    """Failures with duplicates, our own addresses and the bouncing daemon itself left out."""
    seen: set[str] = set()
    kept: list[_Failure] = []
    for failure in failures:
        key = failure.address.lower()
        if key in seen or key == bouncer.lower() or ours.is_ours(failure.address):
            continue
        seen.add(key)
        kept.append(failure)
    return kept


# --- Which of our mails bounced -----------------------------------------------------------------

_TEXT_MESSAGE_ID = re.compile(
    r"^[ \t>]*Message-ID:[ \t]*(?:\r?\n[ \t]+)?<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE
)


def _original_message_id(mail: ParsedMail) -> str | None:
    for attachment in mail.attachments:
        if attachment.content_type.lower() in RETURNED_PARTS:
            found = _message_id_of(attachment.payload)
            if found:
                return found
    # Exim, qmail and Exchange return the message (or its headers) inline in the text.
    match = _TEXT_MESSAGE_ID.search(mail.text)
    if match:
        return match.group(1)
    # Gmail and Exchange set In-Reply-To on the bounce to the mail that bounced.
    if mail.in_reply_to:
        return mail.in_reply_to[0]
    return None


def returned_message_ids(raw: bytes, *, own: str | None) -> tuple[str, ...]:
    """Every Message-ID the bounce carries of the mail it returns, in order: the headers of each
    returned message or header part (at any depth: a gateway may wrap the whole DSN in another
    message), then Message-ID lines quoted in its text. The bounce's `own` id is left out.

    Non-VERP bounces are matched to our notification by these, so all are given, not only the first:
    a wrapped DSN's first returned "message" is the DSN itself.
    """
    found: list[str] = []
    for part in _message(raw).walk():
        content_type = media_type(part)
        if content_type in RETURNED_PARTS:
            inner = part.get_payload()
            if isinstance(inner, list):
                found.extend(_ids_in(str(message.get("message-id", ""))) for message in inner[:1])
            elif isinstance(inner, str):
                found.append(_message_id_of(_part_bytes(part)) or "")
        elif content_type == "text/plain":
            text = _part_bytes(part)[:_NOTICE_WINDOW].decode("utf-8", "replace")
            found.extend(match.group(1) for match in _TEXT_MESSAGE_ID.finditer(text))
    own_key = (own or "").lower()
    unique = dict.fromkeys(mid for mid in found if mid and mid.lower() != own_key)
    return tuple(unique)


def _ids_in(value: str) -> str:
    """The first id of a Message-ID header value, without angle brackets ("" when none)."""
    words = value.split()
    return bare(words[0]) if words else ""


def _part_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    text = part.get_payload()
    return text.encode("utf-8", "replace") if isinstance(text, str) else b""


def _message_id_of(payload: bytes) -> str | None:
    """The Message-ID of a returned message or header block, whether or not the part's own
    MIME headers were kept in front of it."""
    headers = returned_headers(_decode(payload), "message-id")
    if headers is None:
        return None
    return bare(str(headers["message-id"]).split()[0]) or None


def _verp_detail(mail: ParsedMail, envelope: Envelope, *, ours: GatewayAddresses) -> str | None:
    """The `+detail` of the address of ours that the bounce came back to; a VERP "bounce-…" one first."""
    candidates = [
        *envelope.rcpt_tos,
        *mail.delivered_to,
        *(address.address for address in mail.to),
        *(address.address for address in mail.cc),
    ]
    details = [match.detail for match in map(ours.match, candidates) if match is not None and match.detail]
    for detail in details:
        if detail.lower().startswith("bounce-"):
            return detail
    return details[0] if details else None
