"""Where quoted history starts (SPEC §4): the quote headers of a reply body, found line by line.

- attributions: "On … wrote:" in some forty languages, also wrapped over several lines; date-first
  headers of Gmail, Yandex, mail.ru, mutt; in a language we know no word of, an address in brackets
  with a date, a time and a closing colon;
- Outlook ``From:/Sent:`` blocks (their translations, fields wrapped or a blank line apart, or flattened
  onto one line), ``-----Original Message-----`` (translations, any decoration of signs), forward markers;
- the quote containers and attribution lines the HTML named (gateway/mail/quote_html.py).

What a header means for the text around it is the scan's business (gateway/mail/quotes.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from gateway.mail.quote_lines import (
    ATTRIBUTION_END,
    ATTRIBUTION_START,
    CUT,
    INVISIBLE,
    STRIP_BIDI,
    is_blank,
    is_quote,
)


class Kind(Enum):
    ATTRIBUTION = "attribution"  # "On … wrote:": may introduce an inline answer's quote
    BLOCK = "block"  # Outlook header fields, "-----Original Message-----"
    FORWARD = "forward"  # "---------- Forwarded message ---------", "Begin forwarded message:"
    CUT = "cut"  # a quote container the HTML named


@dataclass(frozen=True)
class Header:
    start: int
    end: int  # exclusive
    kind: Kind


_DIGIT_OR_AT = re.compile(r"[\d@]")
# Every attribution pattern below needs an address or one of these verbs: a cheap test before them.
_VERB_HINT = re.compile(
    r"wrote|writes|schrieb|geschrieben|écrit|escribió|scritto|scrisse|escreveu|schreef|skrev|napisa"
    r"|napísal|pisze|napsal|написа|написав|пише|kirjoitti|kirjutas|írta|yazdı|έγραψε|a scris|rakstīja"
    r"|rašė|va escriure|menulis|đã viết|كتب|כתב|写道|寫道|書きました|のメッセージ|のメール|작성|보냄"
)  # matched on lower-cased text: far quicker than IGNORECASE over this many alternatives
_DATE = (
    r"(?:\d{1,4}[./-]\s?\d{1,2}[./-]\s?\d{1,4}"  # 26.06.2014, 2016-10-24, 2013/7/20
    r"|\d{4}\s?年"  # 2016年12月12日
    r"|\d{1,2}\.?\s+\w{3,10}\.?,?\s+\d{4}"  # 23 mar 2017, 20 окт. 2016, 30 November, 2026
    r"|\w{2,3}\.?,\s+\d{1,2}\s+\w{3,10}\.?\s+\d{4})"  # Thu, 26 Jun 2014
)
_TIME = r"\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:\s?[ap]\.?m\.?)?"
# A date first, perhaps after the time or in brackets ("09:14, 30.11.2026", "[30.11.2026 09:14]").
_DATE_FIRST = rf"[\[(]?(?:{_TIME},?\s+)?{_DATE}"
EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
# Headers that name where they start: "On", "Am", "Le" … or a date. Matched on the header's lines joined.
ANCHORED_ATTRIBUTION = re.compile(
    r"(?:"
    r"on\b.+\b(?:wrote|writes)\s*:?"
    r"|am\b.+\bschrieb\b.*:"
    r"|le\b.+\ba\s+écrit\s*:"
    r"|el\b.+\bescribió\s*:"
    r"|il\b.+\b(?:ha\s+scritto|scrisse)\s*:"
    r"|(?:em|no\s+dia|às)\b.+\bescreveu\s*:"
    r"|op\b.+\b(?:schreef|geschreven)\b.*:"
    r"|(?:den|på)\b.+\bskrev\b.*:"
    r"|(?:w\s+dniu|dnia)\b.+\b(?:napisał|napisała|pisze)\S*\s*:"
    r"|dne\b.+\bnapsal\S*\s*:"
    rf"|{_DATE_FIRST}.{{0,200}}?{EMAIL}.{{0,40}}[:：]"  # Gmail, Yandex, mail.ru: a date, an address, a colon
    rf"|{_DATE_FIRST}.{{0,200}}?\bwrote\s*:"  # a date, a name, "wrote:"
    rf"|\d{{4}}/\d{{1,2}}/\d{{1,2}}\s+[^<>]{{1,80}}<{EMAIL}>"  # old Gmail: "2013/7/20 Name <address>"
    r")",
    re.IGNORECASE,
)
# Headers known by their verb alone; the line they start on is found by _extend_up. Searched, not
# matched from the start, so that a long line costs one pass.
# English without "On" ("Jan <jan@x.org> wrote:", "… writes:", "… wrote on 30.11.2026 09:14:", Horde's
# "Quoting Jan <jan@x.org>:"): only with an address.
_WROTE = re.compile(
    r"\b(?:wrote|writes)(?:\s+on\b.{0,80})?\s*:$|^(?:quoting|zitat\s+von|citando|citation|cytuję|citerar)\b",
    re.IGNORECASE,
)
_FOREIGN_VERB = re.compile(
    r".\b(?:schrieb|geschrieben|a\s+écrit|escribió|ha\s+scritto|scrisse|escreveu|schreef|skrev"
    r"|napisał|napisała|napísal|napísala|napsal|napisao|napisala|napisal|написал|написала|написав|написа"
    r"|пише|пишет|kirjoitti|kirjutas|írta|yazdı|έγραψε|a\s+scris|rakstīja|rašė|va\s+escriure|menulis"
    r"|đã\s+viết|كتب|כתב)"
    r"(?:\(a\)|\(а\)|\(ла\))?(?!\w).*[:：]$"
    r"|.(?:写道|寫道|書きました|のメッセージ|のメール|작성|보냄)\s*[:：]$",
    re.IGNORECASE,
)
_EMAIL_RE = re.compile(EMAIL)
_PERSON = re.compile(r"\b(?:i|we|they|he|she|us|our|my|their|wir|ich|nous|nosotros)\b", re.IGNORECASE)
# An attribution in a language we know no word of: an address in brackets, a date and a time, a colon
# at the end ("… 30 בנוב׳ 2026 ב-9:14 מאת Jan <jan@example.il>:"). Prose rarely brackets an address.
_BRACKETED_ADDRESS = re.compile(rf"[<(\[](?:mailto:)?{EMAIL}[>)\]]")
_TIME_RE = re.compile(rf"(?<!\d){_TIME}(?!\d)")
_YEAR_OR_DATE = re.compile(r"(?<!\d)(?:(?:19|20)\d{2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4})(?!\d)")
# A line that can end a quote header: looked at before joining lines, so most lines cost one search.
_HEADER_END = re.compile(r"(?:[:：>]|wrote|-{2,})\s*$", re.IGNORECASE)
# A line that can only be the middle or end of a wrapped header, never its first line.
_CONTINUATION = re.compile(rf"^(?:[a-z<(:：]|mailto:|{EMAIL})")
# Decoration clients put around the words of a marker line: "-----Original Message-----",
# "===== Original Message =====", "***** Forwarded Message *****", "--- Original message: ---".
_DECORATION = "-=_*~#+—–─━═"
_DECOR_LEFT = rf"^\s*[{_DECORATION}<\[(]*\s*"
_DECOR_RIGHT = rf"\s*[:：]?\s*[{_DECORATION}>\])]*\s*$"
_ORIGINAL_MESSAGE = re.compile(
    _DECOR_LEFT + r"(?:original message|original-nachricht|ursprüngliche nachricht|originalnachricht"
    r"|message d'origine|message original|mensaje original|messaggio originale|mensagem original"
    r"|oorspronkelijk bericht|origineel bericht|ursprungligt meddelande|opprinnelig melding"
    r"|oprindelig meddelelse|alkuperäinen viesti|wiadomość oryginalna|oryginalna wiadomość"
    r"|původní zpráva|pôvodná správa|originalna poruka|izvirno sporočilo|mesaj original|mesajul original"
    r"|özgün ileti|orijinal ileti|oprindelig besked|originalt meddelande|původní e-mail|izvorna poruka"
    r"|alkuperäinen sähköposti|eredeti levél|оригинално писмо|pesan asli|tin nhắn gốc|originalus laiškas"
    r"|исходное сообщение|оригинальное сообщение|оригинално съобщение|orijinal mesaj|eredeti üzenet"
    r"|αρχικό μήνυμα|原始邮件|原始郵件|元のメッセージ|원본 메시지)" + _DECOR_RIGHT,
    re.IGNORECASE,
)
_FORWARD = re.compile(
    _DECOR_LEFT + r"(?:forwarded message|forwarded e-?mail|weitergeleitete nachricht|message transféré"
    r"|mensaje reenviado|messaggio inoltrato|mensagem encaminhada|mensagem reencaminhada"
    r"|doorgestuurd bericht|vidarebefordrat meddelande|videresendt melding|videresendt meddelelse"
    r"|välitetty viesti|wiadomość przekazana|przekazana wiadomość|přeposlaná zpráva|preposlaná správa"
    r"|proslijeđena poruka|posredovano sporočilo|mesaj redirecționat|пересылаемое сообщение"
    r"|пересланное сообщение|препратено съобщение|iletilen mesaj|továbbított üzenet|προωθημένο μήνυμα"
    r"|转发的邮件|轉寄的郵件|転送されたメッセージ|전달된 메시지"
    r"|begin forwarded message|anfang der weitergeleiteten nachricht"
    r"|début du message (?:réexpédié|transféré)|inicio del mensaje reenviado|inizio messaggio inoltrato"
    r"|início da mensagem reencaminhada|begin doorgestuurd bericht|vidarebefordrat brev"
    r"|начало переадресованного сообщения|początek przekazanej wiadomości|start på videresendt besked"
    r"|begynnelse på videresendt melding|välitetty viesti alkaa|začátek přeposlané zprávy"
    r"|iletilen mesajın başlangıcı|início da mensagem encaminhada|továbbított levél kezdete"
    r"|αρχή προωθημένου μηνύματος|以下是转发的邮件|开始转发的邮件|轉寄的郵件)" + _DECOR_RIGHT,
    re.IGNORECASE,
)
# A line of signs alone: Outlook's underscores above its header block, and what other clients draw.
SEPARATOR = re.compile(rf"^\s*(?:[{_DECORATION}]\s?){{3,}}$")
# Words between signs ("----- Özgün İleti -----", "==== Nachricht von Jan ===="): a marker in a language
# or wording we do not know; it counts above a header block, and at the very end of the new part.
# A marker line with more on it: the decorated words, then what a flattened rendering put after them.
_MARKER_THEN_TEXT = re.compile(
    rf"^(\s*[{_DECORATION}]{{3,}}\s*[^{_DECORATION}\s][^{_DECORATION}]{{0,40}}?[{_DECORATION}]{{3,}})\s*\S"
)
DECORATED = re.compile(
    rf"^\s*[{_DECORATION}]{{3,}}\s*[^{_DECORATION}\s][^{_DECORATION}]{{0,40}}?[{_DECORATION}]{{3,}}\s*$"
)
_FROM_FIELDS = (
    "from|von|de|de la|da|van|från|fra|od|от|від|lähettäjä|kimden|feladó|από|afzender|remetente|expéditeur"
    "|mittente|absender|avsändare|avsender|afsender|šalje|saatja|nuo|dari|từ|מאת|من|差出人|发件人|寄件者"
    "|寄件人|보낸 사람"
)
_OTHER_FIELDS = (
    "sent|date|to|cc|bcc|subject|reply-to|importance|organization|gesendet|datum|an|betreff|antwort an"
    "|envoyé|à|a|objet|sujet|copie|copie à|cci|répondre à|enviado|enviada|fecha|para|asunto|responder a"
    "|data|inviato|oggetto|risposta|rispondi a|assunto|verzonden|aan|onderwerp|beantwoorden|skickat|till"
    "|kopia|ämne|sendt|dato|til|kopi|emne|lähetetty|päivämäärä|vastaanottaja|kopio|aihe|wysłano|wysłane"
    "|do|dw|temat|odesláno|komu|kopie|předmět|odoslané|predmet|poslano|prima|zadeva|za|trimis|către"
    "|subiect|отправлено|дата|кому|копия|тема|надіслано|изпратено|до|относно|gönderildi|tarih|kime"
    "|bilgi|konu|elküldve|dátum|címzett|másolat|tárgy|saadetud|kellele|teema|išsiųsta|kam|tēma|nosūtīts"
    "|dikirim|kepada|perihal|tanggal|đã gửi|đến|chủ đề|enviat|per a|assumpte|στάλθηκε|ημερομηνία|προς"
    "|κοιν|θέμα|נשלח|אל|נושא|تم الإرسال|إلى|الموضوع|送信日時|日付|宛先|件名|发送时间|日期|收件人|抄送|主题"
    "|傳送時間|收件者|副本|主旨|보낸 날짜|받는 사람|참조|제목"
)
# A label may carry a little word: "Envoyé le :", "Enviado el:", "Enviada em:", "Gesendet am:".
_LABEL_TAIL = r"(?:\s+(?:le|el|em|am|on|à|a|il|la|du|de|at))?"
_FIELD = re.compile(
    rf"^\s*\*{{0,2}}(?:({_FROM_FIELDS})|{_OTHER_FIELDS}){_LABEL_TAIL}\*{{0,2}}\s*[:：]", re.IGNORECASE
)
# A field label inside a line, after a space: an Outlook block flattened onto one line.
_INLINE_FIELD = re.compile(
    rf"\s\*{{0,2}}(?:{_FROM_FIELDS}|{_OTHER_FIELDS}){_LABEL_TAIL}\*{{0,2}}\s*[:：]\s", re.IGNORECASE
)
_DATED_FIELD = re.compile(r"^\s*\*{0,2}(?:sent|date)\*{0,2}\s*:", re.IGNORECASE)
# A field of a label we do not know whose value is a date ("Message du : 12/12/2016 13:20"): part of a
# block only next to fields we know.
_ANY_DATED_FIELD = re.compile(
    rf"^\s*\*{{0,2}}[^\W\d_][\w'’ .-]{{0,24}}?\*{{0,2}}\s*[:：]\s*\*{{0,2}}\s*(?:\w+\.?,?\s+)?{_DATE}"
)
_MAX_HEADER_LINES = 6
MAX_HEADER_CHARS = 400


def find_headers(lines: Sequence[str]) -> dict[int, Header]:
    """Every quote header of the text, by the line it starts on."""
    headers: dict[int, Header] = {}
    free_from = 0  # headers never overlap
    for index in range(len(lines)):
        if index < free_from:
            continue
        header = (
            _marker_header(lines, index)
            or _attribution_ending_at(lines, index, free_from)
            or _field_block(lines, index)
            or _dated_name_header(lines, index)
        )
        if header is not None:
            headers[header.start] = header
            free_from = header.end
    return headers


# Gmail's and others' date-first attribution without a verb, and without an address when the client left
# it out: "2016-03-03 17:21 GMT+01:00 Some One:", "[30.11.2026 09:14] Jan Novák:", "09:14, 30.11.2026,
# Jan:". A date, a time, perhaps a zone, then a name (letters, no digits, no address) and a colon.
_ZONE = r"(?:\s*(?:GMT|UTC)\s?[+-]\d{1,2}(?::?\d{2})?|\s*[+-]\d{4}|\s+(?:GMT|UTC|[A-Z]{2,4}T))"
_DATED_NAME = re.compile(
    rf"[\[(]?(?:{_TIME},?\s+{_DATE}|{_DATE}[\])]?,?\s+(?:(?:at|um|à|às|om|kl\.?|o|v)\s+)?{_TIME}){_ZONE}?[\])]?,?"
    r"\s+(?:(?:от|de|from|von)\s+)?([^\W\d_](?:[^\W\d_]|['’.\- ]){0,60}?)\s*[:：]",
    re.IGNORECASE,
)
_MAX_NAME_WORDS = 5


def is_field_line(line: str) -> bool:
    """A header field line of a quoted or forwarded mail ("From: …", "Betreff: …", "Sujet : …")."""
    return bool(_has_colon(line) and (_FIELD.match(line) or _ANY_DATED_FIELD.match(line)))


def _has_colon(line: str) -> bool:
    """Whether the line holds a colon, ASCII or full-width: every field pattern ends with one, and most
    lines of a body have none. Tested first, since trying the field labels of some forty languages
    case-insensitively at the start of each line was ~4 µs a line (a tenth of reading a reply)."""
    return ":" in line or "：" in line


def _dated_name_header(lines: Sequence[str], index: int) -> Header | None:
    """A date-first attribution that names someone without an address or a verb: only right above a
    ``>`` block (no other sign says it is not the sender's own "30.11.2026 09:14 Ana:" note)."""
    text = lines[index].strip(INVISIBLE)
    if not text.endswith((":", "：")) or not (text[:1].isdigit() or text.startswith(("[", "("))):
        return None
    match = _DATED_NAME.fullmatch(text)
    if match is None or _PERSON.search(match.group(1)):
        return None
    if len(match.group(1).split()) > _MAX_NAME_WORDS:
        return None
    following = next((line for line in lines[index + 1 :] if not is_blank(line)), "")
    return Header(index, index + 1, Kind.ATTRIBUTION) if is_quote(following) else None


def _marker_header(lines: Sequence[str], index: int) -> Header | None:
    line = lines[index]
    if is_quote(line):
        return None
    if CUT in line:
        return Header(index, index + 1, Kind.CUT)
    if ATTRIBUTION_START in line:
        # The HTML said where the attribution ends; it may span a few rendered lines.
        for end in range(index, min(index + _MAX_HEADER_LINES, len(lines))):
            if ATTRIBUTION_END in lines[end]:
                return Header(index, end + 1, Kind.ATTRIBUTION)
        return Header(index, index + 1, Kind.ATTRIBUTION)
    marker = line
    flattened = _MARKER_THEN_TEXT.match(line)  # "-----Original Message----- From: …" on one line
    if flattened is not None:
        marker = flattened.group(1)
    if _FORWARD.match(marker):
        return Header(index, index + 1, Kind.FORWARD)
    if _ORIGINAL_MESSAGE.match(marker) or _is_flattened_field_block(line):
        return Header(index, index + 1, Kind.BLOCK)
    return None


def _is_flattened_field_block(line: str) -> bool:
    """An Outlook block rendered as one line: "From: Jan <jan@x.org> Sent: Monday … To: … Subject: …"."""
    if len(line) > 1000:
        return False
    match = _FIELD.match(line) if _has_colon(line) else None
    if match is None or not match.group(1):
        return False
    inline = len(_INLINE_FIELD.findall(line))
    return inline >= 2 and bool("@" in line or _YEAR_OR_DATE.search(line))


def _attribution_ending_at(lines: Sequence[str], last: int, first_allowed: int) -> Header | None:
    """A quote header ending on line ``last``, over as few lines as it needs (clients wrap them).

    Going up, a header known by its verb that already names a date (a time too, often) is whole: it does not
    reach across a blank line into the paragraph above, whose first words may read like a date
    ("42 the 2026. Thanks …", "3 March 2026 the card failed.") and would make it a date-first header
    swallowing the sender's text; nor into a line right above it that ends a sentence. Without a date
    and a time the lines below are not a whole header ("mailto:Jan <jan@x.org> wrote:" under
    "On 31 Mar 2016 at 11:16 Jan" in rendered HTML)."""
    end_line = lines[last]
    if len(end_line) > MAX_HEADER_CHARS or not may_end_header(end_line.rstrip(INVISIBLE)):
        return None
    if is_quote(end_line) and len(end_line.lstrip("> \t").split()) > 2:
        return None  # a quoted line may only end a wrapped header ("> wrote:"), never be one
    unanchored: int | None = None
    lowest = max(first_allowed, last - _MAX_HEADER_LINES + 1)
    window = " ".join(lines[lowest : last + 1])
    if "@" not in window and not _VERB_HINT.search(window.lower()):
        return None
    complete = False  # the header found so far names a date and a time: nothing above it is needed
    below = lines[last]  # the line under the one looked at
    for first in range(last, lowest - 1, -1):
        line = lines[first]
        if is_blank(line):
            if complete:
                break  # a paragraph break above a whole header: what is above is the sender's
            continue
        if first < last and (is_quote(line) or len(line) > MAX_HEADER_CHARS):
            break
        if complete and _ends_sentence(line, below):
            break  # a sentence right above a whole header is the sender's last line
        below = line
        joined = _joined(lines[first : last + 1])
        if len(joined) > MAX_HEADER_CHARS:
            break
        if not _DIGIT_OR_AT.search(joined):
            continue
        if _reads_as_prose(joined):
            continue
        if ANCHORED_ATTRIBUTION.fullmatch(joined) and not is_quote(line):
            return Header(first, last + 1, Kind.ATTRIBUTION)
        if unanchored is None and is_verb_attribution(joined) and not is_quote(line):
            unanchored = first
            complete = bool(_TIME_RE.search(joined) and _YEAR_OR_DATE.search(joined))
    if unanchored is None:
        return None
    return Header(_extend_up(lines, unanchored, first_allowed), last + 1, Kind.ATTRIBUTION)


def may_end_header(line: str) -> bool:
    """Whether `_HEADER_END` finds a header's end in ``line``, without the search: the pattern is a
    colon, `>`, "wrote" (in any case) or two dashes, then white space to the end, so it matches
    exactly when the line without its trailing white space (`\\s` is what `str.rstrip` strips)
    ends with one of them. No character but W, R, O, T, E lowers to one of those letters, as no
    other matches them ignoring case. Searching each line cost ~15k instructions, the most of
    finding headers (tests/unit/test_quote_headers_colon.py compares both)."""
    end = line.rstrip()
    return end.endswith((":", "：", ">", "--")) or end[-5:].lower() == "wrote"


def _ends_sentence(line: str, below: str) -> bool:
    """Whether ``line`` ends a sentence of its own above the header line ``below``. A client may wrap a
    header inside its date, after an abbreviated month ("Le lun. 30 nov." / "2026 à 09:14, Jan …"):
    the line below then goes on with the year."""
    return line.strip(INVISIBLE).endswith((".", "!", "?")) and not below.strip(INVISIBLE)[:1].isdigit()


def _reads_as_prose(joined: str) -> bool:
    """A header names someone; "On 30.11 at 10:00 we called the bank and they wrote:" is the sender
    telling what happened. Only without an address: with one, it is a header whatever its words."""
    return bool(_PERSON.search(joined)) and not _EMAIL_RE.search(joined)


def is_verb_attribution(joined: str) -> bool:
    if _WROTE.search(joined):
        # "As I wrote on 3 May:" is prose; "Jan Novák wrote on 30.11.2026 09:14:" (Thunderbird) is not.
        named = _EMAIL_RE.search(joined) or (_TIME_RE.search(joined) and _YEAR_OR_DATE.search(joined))
        return bool(named) and joined.endswith(":")
    return bool(_FOREIGN_VERB.search(joined)) or _is_dated_address(joined)


def _is_dated_address(joined: str) -> bool:
    return (
        joined.endswith((":", "："))
        and len(joined) <= 250
        and all(pattern.search(joined) for pattern in (_BRACKETED_ADDRESS, _TIME_RE, _YEAR_OR_DATE))
    )


def _joined(lines: Sequence[str]) -> str:
    parts = [line.strip(INVISIBLE).lstrip("> ").strip() for line in lines if not is_blank(line)]
    joined = " ".join(" ".join(parts).translate(STRIP_BIDI).split())
    return joined.strip("-").strip()  # "---- On … wrote ----" (Zoho), "--- On …" (Yahoo)


def _extend_up(lines: Sequence[str], first: int, first_allowed: int) -> int:
    """Take in the lines a wrapped header began on: its first line found so far may be a continuation
    ("bob@x.org> написал:") or follow a line left open ("… Rafael Silva <")."""
    while first - 1 >= first_allowed:
        above = lines[first - 1]
        if is_blank(above) or is_quote(above):
            break
        current = lines[first].strip(INVISIBLE)
        if not (_CONTINUATION.match(current) or above.rstrip().endswith(("<", ",", "("))):
            break
        first -= 1
    return first


def _field_block(lines: Sequence[str], index: int) -> Header | None:
    """An Outlook-style header block (From:/Sent:/To:/Subject: and translations) starting here, perhaps
    under a separator line. Fields may be a blank line apart, and a long value may wrap onto a line of
    its own ("To: a@x;" / " b@x"): the block goes on while another field follows within two lines."""
    separated = bool(SEPARATOR.match(lines[index]) or DECORATED.match(lines[index]))
    position = index + 1 if separated else index
    if separated:
        while position < len(lines) and position - index <= 2 and is_blank(lines[position]):
            position += 1
    first_field = position
    fields, has_from, has_date, from_has_address = 0, False, False, False
    end = position
    while position < len(lines) and position - first_field < 16:
        line = lines[position]
        colon = _has_colon(line)
        match = _FIELD.match(line) if colon else None
        if match is not None:
            fields += 1
            if match.group(1):
                has_from = True
                from_has_address = from_has_address or "@" in line
            has_date = has_date or bool(_DATED_FIELD.match(line))
        elif colon and _ANY_DATED_FIELD.match(line):
            fields += 1
            has_date = True
        elif not (fields and _field_follows(lines, position)):
            break
        elif not is_blank(line):
            from_has_address = from_has_address or (has_from and "@" in line)
        position += 1
        if match is not None or not is_blank(line):
            end = position
    if not has_from or fields < 2:
        return None
    if fields >= 3 or separated or has_date or from_has_address:
        return Header(index, end, Kind.BLOCK)
    return None


def _field_follows(lines: Sequence[str], position: int) -> bool:
    """Whether a known field starts within the two lines from ``position`` (a blank or a wrapped value
    in between is still the same block)."""
    for ahead in range(position + 1, min(position + 3, len(lines))):
        if _has_colon(lines[ahead]) and _FIELD.match(lines[ahead]):
            return True
        if is_blank(lines[ahead]) and is_blank(lines[position]):
            return False
    return False
