"""Read what a bounce says: who failed, how (status, permanence, the remote server's words), which of
our mails it was (Message-ID, VERP detail). SPEC §7 "Bounces".

RFC 3464 `message/delivery-status` fields are trusted first, wherever the parser put them (an
attachment or the text); the non-standard notices of Postfix, Exim, qmail, Sendmail, Exchange /
Office 365 and Gmail are read from their wording when no such fields exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.parser import HeaderParser

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.pipeline.rules import bare

# A diagnostic is kept for staff to read on the ticket, not for a novel.
_DIAGNOSTIC_LIMIT = 500


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

    @property
    def permanent(self) -> bool:
        if self.status is not None:
            return self.status.startswith("5")
        code = _basic_code(self.diagnostic or "")
        if code is not None:
            return code.startswith("5")
        # Without any code, "failed" means the reporting MTA gave up for good, and qmail and Exim
        # say so in words.
        return self.action == "failed" or self.says_permanent


def read_bounce(mail: ParsedMail, envelope: Envelope, *, ours: GatewayAddresses) -> BounceReport:
    """What the bounce `mail` reports; fields it does not say are None (or empty)."""
    failures = _dsn_failures(mail) or _text_failures(mail)
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


def _dsn_failures(mail: ParsedMail) -> list[_Failure]:
    sources = [_decode(a.payload) for a in mail.attachments if a.content_type.lower() in _DSN_PARTS]
    # Parsers that do not keep message/delivery-status as a part leave its fields in the text.
    sources.append(mail.text)
    for source in sources:
        if _RECIPIENT_FIELD.search(source):
            failures = [f for f in map(_failure_from_fields, _field_blocks(source)) if f is not None]
            if failures:
                return failures
    return []


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
    status = _enhanced_code(fields.get("status", "")) or _enhanced_code(diagnostic or "")
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
      | -+\s*(?:Original|Returned|Undelivered)\s+message             # Gmail, Sendmail, others
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
    """,
    re.IGNORECASE | re.MULTILINE | re.VERBOSE,
)

# Headings after which each failed recipient stands at the start of its own line.
_RECIPIENT_LIST_HEADING = re.compile(
    r"""following\s+address(?:\(es\)|es)?\s+failed
      | failed\s+permanently:
      | Delivery\s+has\s+failed\s+to\s+these\s+recipients\s+or\s+groups
      | following\s+recipient\(s\)\s+cannot\s+be\s+reached
      | could\s+not\s+be\s+delivered\s+to\s+the\s+following\s+recipients?
      | had\s+permanent\s+fatal\s+errors
      | address(?:\(es\)|es)?\s+concerned                    # Exim delay warning
      | has\s+not\s+yet\s+been\s+delivered\s+is:
    """,
    re.IGNORECASE | re.VERBOSE,
)
_LISTED_RECIPIENT = re.compile(rf"""^[ \t]*['"<]?({_ADDRESS})['">]?(?:[ \t]|$)""", re.MULTILINE)

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
    )
)

_PERMANENT_WORDS = re.compile(
    r"permanent\s+error|failed\s+permanently|permanent\s+fatal\s+errors|has\s+been\s+permanently\s+rejected",
    re.IGNORECASE,
)


def _text_failures(mail: ParsedMail) -> list[_Failure]:
    notice = _RETURNED_MESSAGE.split(mail.text, maxsplit=1)[0]
    addresses = [
        next(group for group in match.groups() if group) for match in _NAMED_RECIPIENT.finditer(notice)
    ]
    if heading := _RECIPIENT_LIST_HEADING.search(notice):
        addresses.extend(_LISTED_RECIPIENT.findall(notice, heading.end()))
    if not addresses:
        return []
    diagnostic = _diagnostic(notice)
    status = _enhanced_code(diagnostic or "") or _enhanced_code(notice)
    says_permanent = _PERMANENT_WORDS.search(notice) is not None
    return [
        _Failure(a, action=None, status=status, diagnostic=diagnostic, says_permanent=says_permanent)
        for a in addresses
    ]


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

_RETURNED_PARTS = frozenset(
    {
        "message/rfc822",
        "message/rfc822-headers",
        "text/rfc822-headers",
        "message/global",
        "message/global-headers",
    }
)
_TEXT_MESSAGE_ID = re.compile(
    r"^[ \t>]*Message-ID:[ \t]*(?:\r?\n[ \t]+)?<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE
)


def _original_message_id(mail: ParsedMail) -> str | None:
    for attachment in mail.attachments:
        if attachment.content_type.lower() in _RETURNED_PARTS:
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


def _message_id_of(payload: bytes) -> str | None:
    """The Message-ID of a returned message or header block, whether or not the part's own
    MIME headers were kept in front of it."""
    text = _decode(payload)
    # Twice: the returned message itself, or the part's own headers and then the message.
    for _ in range(2):
        headers = HeaderParser().parsestr(text, headersonly=True)
        value = headers.get("message-id")
        if value and str(value).split():
            return bare(str(value).split()[0]) or None
        inner = headers.get_payload()
        if not isinstance(inner, str) or not headers.get_content_type().startswith(
            ("message/", "text/rfc822")
        ):
            return None
        text = inner
    return None


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
