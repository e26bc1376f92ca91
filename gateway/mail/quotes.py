"""The new part of a reply (SPEC §4): what the sender wrote, less quoted history, signature and boilerplate.

Measured against mail-parser-reply and email-reply-parser on the shared corpus (bench/trimming_rate.py):
both fall far short (under two thirds of the corpus), drop sign-offs such as "Thanks,\\nAlex" that SPEC §4
keeps, and know few of the languages mail arrives in; this module is our own. It reads the body as lines:

- quoted history starts at a quote header ("On … wrote:" in some forty languages, also wrapped over
  several lines; date-first headers of Gmail, Yandex, mail.ru, mutt; in a language we know no word of,
  an address in brackets with a date, a time and a closing colon), an Outlook ``From:/Sent:`` block (its
  translations, fields wrapped or a blank line apart, or flattened onto one line),
  ``-----Original Message-----`` (translations, any decoration of signs), a forward marker, ticketgate's
  own ``REPLY_MARKER`` or another desk's "reply above this line"; that header and everything after go;
- the rules are written for families of mail, not for samples: each family has tests built from our own
  examples (tests/unit/test_quotes_families.py), and the corpus is split into a tuning half, looked at
  while writing rules, and a checking half, only counted (bench/corpus_halves.py, README);
- a header followed by a ``>`` block and then new text is an inline answer and stays, except at the very
  top of the mail, where it is a bottom-post: the header and that first quote go, the answer stays;
- a header with nothing above it that is not followed by ``>`` lines (Gmail's unquoted bottom-post) is
  dropped and what follows is read as the message; a forward with nothing above it is kept whole
  (forwarding is how people hand us a mail: for a forward the new text is what was written above it);
- then the end is cleaned: trailing ``>`` lines, a signature after a ``-- `` line, and mobile/client
  boilerplate ("Sent from my iPhone", "Get Outlook for Android", "Von meinem iPhone gesendet" …, but not
  a sentence that goes on after it: "Sent from my iPhone, the upload fails").

HTML is trimmed only when the text part is empty or merely the HTML rendered to text: the clients' quote
containers (Outlook ``divRplyFwdMsg``, Yahoo ``yahoo_quoted`` …) and attribution lines (Thunderbird
``moz-cite-prefix``, Gmail ``gmail_attr``), whatever their language, are marked in the tree; the text
rendered by ``html_to_text`` (``> `` for blockquotes, a line of underscores for ``<hr>``) then goes
through the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from lxml import etree
from lxml.html import Element, HtmlElement, document_fromstring, tostring

from gateway.domain import REPLY_MARKER
from gateway.mail.html_text import depth_exceeds, html_to_text


@dataclass(frozen=True)
class TrimmedReply:
    """The new part of a reply, and what was cut from it."""

    text: str  # the new part, stripped of leading/trailing blank lines
    removed: str  # what was cut (quote, signature, boilerplate), for debugging


def trim_reply(text: str, *, html: str | None = None) -> TrimmedReply:
    """The new part of a reply body; ``html`` is used when ``text`` is empty or only rendered from it."""
    source = _choose_source(text, html)
    lines = _split_lines(source)
    cut = _find_marker(lines)
    scan = _Scan(_rewrapped_quotes(lines[:cut]))
    start, end = scan.new_part(0)
    # The sender's lines stay as written; the spaces a rendering of HTML leaves at line ends are noise.
    rendered = source is not text
    return TrimmedReply(
        text=_output(lines[start:end], rendered=rendered),
        removed=_output([*lines[:start], *lines[end:]], rendered=rendered),
    )


# --- HTML ----------------------------------------------------------------------------------------------

# Private-use characters mark what the HTML said about the text; they never reach the result.
_CUT = "\ue000"  # quoted history starts here, whatever follows
_ATTRIBUTION_START = "\ue001"  # an attribution line ("On … wrote:") in any language
_ATTRIBUTION_END = "\ue002"
_MARKS = _CUT + _ATTRIBUTION_START + _ATTRIBUTION_END
_UNMARK = str.maketrans("", "", _MARKS)


def _has_class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


# Containers in which clients put the quoted mail (Outlook desktop and web, Outlook for Mac, Yahoo, Proton).
_CUT_XPATH = (
    "//*[contains(@id, 'divRplyFwdMsg') or contains(@id, 'appendonsend') or @id = 'OLK_SRC_BODY_SECTION'"
    f" or @id = 'mail-editor-reference-message-container' or {_has_class('yahoo_quoted')}"
    f" or {_has_class('protonmail_quote')}]"
)
_ATTRIBUTION_XPATH = f"//*[{_has_class('moz-cite-prefix')} or {_has_class('gmail_attr')}]"
# A cheap look before parsing: the marks only matter when one of these is there.
_HTML_HINTS = ("divrplyfwdmsg", "appendonsend", "olk_src_body_section", "mail-editor-reference",
               "yahoo_quoted", "protonmail_quote", "moz-cite-prefix", "gmail_attr")  # fmt: skip
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_NOT_SPACE = re.compile(r"\s+")
# libxml2 stops building the tree at 256 levels, silently; past this depth, no marks.
_MAX_HTML_DEPTH = 200


def _choose_source(text: str, html: str | None) -> str:
    if html is None or not html.strip():
        return text
    useless = not any(ch.isalnum() for ch in text)
    if not any(hint in html.lower() for hint in _HTML_HINTS):
        return html_to_text(html) if useless else text
    marked = _marked_html_text(html)
    if marked is None:
        return text if not useless else html_to_text(html)
    # The text part is only the HTML rendered (the parser does that for HTML-only mail): the marked
    # rendering says the same and knows more.
    if useless or _squash(text) == _squash(marked.translate(_UNMARK)):
        return marked
    return text


def _squash(text: str) -> str:
    return _NOT_SPACE.sub("", text)


def _marked_html_text(html: str) -> str | None:
    try:
        tree = document_fromstring(_XML_DECLARATION.sub("", html, count=1))
    except (etree.ParserError, ValueError):
        return None
    if depth_exceeds(tree, _MAX_HTML_DEPTH):
        return None  # lxml cut it short; html_to_text has its own way with such HTML
    for element in tree.xpath(_CUT_XPATH):
        if element.getparent() is not None:
            element.addprevious(_marker_div(_CUT))
    for element in tree.xpath(_ATTRIBUTION_XPATH):
        element.text = _ATTRIBUTION_START + (element.text or "")
        if len(element):
            element[-1].tail = (element[-1].tail or "") + _ATTRIBUTION_END
        else:
            element.text += _ATTRIBUTION_END
    return html_to_text(tostring(tree, encoding="unicode"))


def _marker_div(mark: str) -> HtmlElement:
    div = Element("div")
    div.text = mark
    return div


# --- lines ---------------------------------------------------------------------------------------------

# Bidi controls (Hebrew and Arabic clients wrap names and addresses in them) count as space too.
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_INVISIBLE = " \t\xa0\u200b\u200c\u200d\ufeff" + _BIDI + _ATTRIBUTION_END
_STRIP_BIDI = str.maketrans("", "", _BIDI)
# Where the HTML layout left a mark inside a line: a cut stands alone, an attribution starts a line.
_MARK_SPLIT = re.compile(f"[ \t]*(?={_CUT}|{_ATTRIBUTION_START})|(?<={_CUT}|{_ATTRIBUTION_END})[ \t]*")


def _split_lines(text: str) -> list[str]:
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        # Marks inside a quote belong to the quoted mail; they stay where they are and count for nothing.
        if any(mark in line for mark in _MARKS) and not _is_quote(line):
            lines.extend(part for part in _MARK_SPLIT.split(line) if part)
        else:
            lines.append(line)
    return lines


def _output(lines: Sequence[str], *, rendered: bool) -> str:
    # A line that held only a mark is the HTML's, not the sender's.
    kept = [
        line.translate(_UNMARK).rstrip() if rendered else line.translate(_UNMARK)
        for line in lines
        if not (any(mark in line for mark in _MARKS) and not line.strip(_MARKS + " \t"))
    ]
    return "\n".join(kept).strip("\n")  # blank lines at the ends go, the first line's indent stays


def _is_blank(line: str) -> bool:
    return not line.strip(_INVISIBLE)


def _is_quote(line: str) -> bool:
    return line.lstrip(_INVISIBLE).startswith(">")


# Other help desks' markers ("##- Please type your reply above this line -##"): the same meaning.
_ABOVE_THIS_LINE = re.compile(
    r"\b(?:reply|respond|write|type|answer)\b.{0,40}\babove\s+this\s+line\b"
    r"|\b(?:oberhalb|über)\s+dieser\s+zeile\b|\bau-dessus\s+de\s+cette\s+ligne\b"
    r"|\bencima\s+de\s+esta\s+línea\b|\bsopra\s+questa\s+riga\b|\bboven\s+deze\s+regel\b"
    r"|\bacima\s+desta\s+linha\b",
    re.IGNORECASE,
)


def _find_marker(lines: Sequence[str]) -> int:
    """Index of the line with ticketgate's reply marker, or another desk's (quoted or not), or the end."""
    marker = REPLY_MARKER.casefold()
    for index, line in enumerate(lines):
        if marker in line.casefold() or (len(line) <= 100 and _ABOVE_THIS_LINE.search(line)):
            return index
    return len(lines)


# A client that re-wraps a quote at its own width leaves the end of a long quoted line on a line of its own,
# without ">" ("> … pharetra d" / "ignissim odio?" / "> …"): a short fragment that goes on in lower case,
# right above more quote, whose first word would not have fitted on the quoted line above it at the
# narrowest width clients wrap at (68–80 columns; 72 and 76 are the common ones). It is quote, not an
# inline answer. The test is on the first word, not on the quoted line's length alone: a word-wrapping
# client at 72 columns leaves quoted lines as short as 72 minus the longest word (a length floor of 65
# missed 1 in 7 such quotes at 72 columns and most at 70, in the generated mails of
# tests/unit/test_quotes_properties.py).
_NARROWEST_WRAP = 66
_MAX_FRAGMENT = 40


def _rewrapped_quotes(lines: Sequence[str]) -> list[str]:
    """``lines`` with such fragments marked as quote; the indexes stay, the output is read from ``lines``."""
    scan = list(lines)
    for index in range(1, len(lines) - 1):
        above, line, below = lines[index - 1], lines[index], lines[index + 1]
        text = line.strip(_INVISIBLE)
        words = text.split()
        if (
            text[:1].islower()
            and len(text) <= _MAX_FRAGMENT
            and not _is_quote(line)
            and _is_quote(above)
            and _is_quote(below)
            and len(above.strip(_INVISIBLE)) + 1 + len(words[0]) > _NARROWEST_WRAP
        ):
            scan[index] = "> " + line
    return scan


def _is_signature_delimiter(line: str) -> bool:
    # "-- " by the standard; many clients and editors drop the trailing space, so "--" alone counts too.
    # "--" inside prose ("yes -- tomorrow") or a "-- item" list is not a delimiter.
    # A dash alone ("—", "–", as macOS may turn a typed "--") is not one: people draw section breaks with it.
    return line.strip(_INVISIBLE) == "--"


# --- quote headers -------------------------------------------------------------------------------------


class _Kind(Enum):
    ATTRIBUTION = "attribution"  # "On … wrote:": may introduce an inline answer's quote
    BLOCK = "block"  # Outlook header fields, "-----Original Message-----"
    FORWARD = "forward"  # "---------- Forwarded message ---------", "Begin forwarded message:"
    CUT = "cut"  # a quote container the HTML named


@dataclass(frozen=True)
class _Header:
    start: int
    end: int  # exclusive
    kind: _Kind


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
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
# Headers that name where they start: "On", "Am", "Le" … or a date. Matched on the header's lines joined.
_ANCHORED_ATTRIBUTION = re.compile(
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
    rf"|{_DATE_FIRST}.{{0,200}}?{_EMAIL}.{{0,40}}[:：]"  # Gmail, Yandex, mail.ru: a date, an address, a colon
    rf"|{_DATE_FIRST}.{{0,200}}?\bwrote\s*:"  # a date, a name, "wrote:"
    rf"|\d{{4}}/\d{{1,2}}/\d{{1,2}}\s+[^<>]{{1,80}}<{_EMAIL}>"  # old Gmail: "2013/7/20 Name <address>"
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
_EMAIL_RE = re.compile(_EMAIL)
_PERSON = re.compile(r"\b(?:i|we|they|he|she|us|our|my|their|wir|ich|nous|nosotros)\b", re.IGNORECASE)
# An attribution in a language we know no word of: an address in brackets, a date and a time, a colon
# at the end ("… 30 בנוב׳ 2026 ב-9:14 מאת Jan <jan@example.il>:"). Prose rarely brackets an address.
_BRACKETED_ADDRESS = re.compile(rf"[<(\[](?:mailto:)?{_EMAIL}[>)\]]")
_TIME_RE = re.compile(rf"(?<!\d){_TIME}(?!\d)")
_YEAR_OR_DATE = re.compile(r"(?<!\d)(?:(?:19|20)\d{2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4})(?!\d)")
# A line that can end a quote header: looked at before joining lines, so most lines cost one search.
_HEADER_END = re.compile(r"(?:[:：>]|wrote|-{2,})\s*$", re.IGNORECASE)
# A line that can only be the middle or end of a wrapped header, never its first line.
_CONTINUATION = re.compile(rf"^(?:[a-z<(:：]|mailto:|{_EMAIL})")
# Decoration clients put around the words of a marker line: "-----Original Message-----",
# "===== Original Message =====", "***** Forwarded Message *****", "--- Original message: ---".
_DECORATION = "-=_*~#—–─━═"
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
_SEPARATOR = re.compile(rf"^\s*(?:[{_DECORATION}]\s?){{3,}}$")
# Words between signs ("----- Özgün İleti -----", "==== Nachricht von Jan ===="): a marker in a language
# or wording we do not know; it counts above a header block, and at the very end of the new part.
# A marker line with more on it: the decorated words, then what a flattened rendering put after them.
_MARKER_THEN_TEXT = re.compile(
    rf"^(\s*[{_DECORATION}]{{3,}}\s*[^{_DECORATION}\s][^{_DECORATION}]{{0,40}}?[{_DECORATION}]{{3,}})\s*\S"
)
_DECORATED = re.compile(
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
_MAX_HEADER_CHARS = 400


def _find_headers(lines: Sequence[str]) -> dict[int, _Header]:
    """Every quote header of the text, by the line it starts on."""
    headers: dict[int, _Header] = {}
    free_from = 0  # headers never overlap
    for index in range(len(lines)):
        if index < free_from:
            continue
        header = (
            _marker_header(lines, index)
            or _attribution_ending_at(lines, index, free_from)
            or _field_block(lines, index)
        )
        if header is not None:
            headers[header.start] = header
            free_from = header.end
    return headers


def _marker_header(lines: Sequence[str], index: int) -> _Header | None:
    line = lines[index]
    if _is_quote(line):
        return None
    if _CUT in line:
        return _Header(index, index + 1, _Kind.CUT)
    if _ATTRIBUTION_START in line:
        # The HTML said where the attribution ends; it may span a few rendered lines.
        for end in range(index, min(index + _MAX_HEADER_LINES, len(lines))):
            if _ATTRIBUTION_END in lines[end]:
                return _Header(index, end + 1, _Kind.ATTRIBUTION)
        return _Header(index, index + 1, _Kind.ATTRIBUTION)
    marker = line
    flattened = _MARKER_THEN_TEXT.match(line)  # "-----Original Message----- From: …" on one line
    if flattened is not None:
        marker = flattened.group(1)
    if _FORWARD.match(marker):
        return _Header(index, index + 1, _Kind.FORWARD)
    if _ORIGINAL_MESSAGE.match(marker) or _is_flattened_field_block(line):
        return _Header(index, index + 1, _Kind.BLOCK)
    return None


def _is_flattened_field_block(line: str) -> bool:
    """An Outlook block rendered as one line: "From: Jan <jan@x.org> Sent: Monday … To: … Subject: …"."""
    if len(line) > 1000:
        return False
    match = _FIELD.match(line)
    if match is None or not match.group(1):
        return False
    inline = len(_INLINE_FIELD.findall(line))
    return inline >= 2 and bool("@" in line or _YEAR_OR_DATE.search(line))


def _attribution_ending_at(lines: Sequence[str], last: int, first_allowed: int) -> _Header | None:
    """A quote header ending on line ``last``, over as few lines as it needs (clients wrap them)."""
    end_line = lines[last]
    if len(end_line) > _MAX_HEADER_CHARS or not _HEADER_END.search(end_line.rstrip(_INVISIBLE)):
        return None
    if _is_quote(end_line) and len(end_line.lstrip("> \t").split()) > 2:
        return None  # a quoted line may only end a wrapped header ("> wrote:"), never be one
    unanchored: int | None = None
    lowest = max(first_allowed, last - _MAX_HEADER_LINES + 1)
    window = " ".join(lines[lowest : last + 1])
    if "@" not in window and not _VERB_HINT.search(window.lower()):
        return None
    for first in range(last, lowest - 1, -1):
        line = lines[first]
        if _is_blank(line):
            continue
        if first < last and (_is_quote(line) or len(line) > _MAX_HEADER_CHARS):
            break
        joined = _joined(lines[first : last + 1])
        if len(joined) > _MAX_HEADER_CHARS:
            break
        if not _DIGIT_OR_AT.search(joined):
            continue
        if _reads_as_prose(joined):
            continue
        if _ANCHORED_ATTRIBUTION.fullmatch(joined) and not _is_quote(line):
            return _Header(first, last + 1, _Kind.ATTRIBUTION)
        if unanchored is None and _is_verb_attribution(joined) and not _is_quote(line):
            unanchored = first
    if unanchored is None:
        return None
    return _Header(_extend_up(lines, unanchored, first_allowed), last + 1, _Kind.ATTRIBUTION)


def _reads_as_prose(joined: str) -> bool:
    """A header names someone; "On 30.11 at 10:00 we called the bank and they wrote:" is the sender
    telling what happened. Only without an address: with one, it is a header whatever its words."""
    return bool(_PERSON.search(joined)) and not _EMAIL_RE.search(joined)


def _is_verb_attribution(joined: str) -> bool:
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
    parts = [line.strip(_INVISIBLE).lstrip("> ").strip() for line in lines if not _is_blank(line)]
    joined = " ".join(" ".join(parts).translate(_STRIP_BIDI).split())
    return joined.strip("-").strip()  # "---- On … wrote ----" (Zoho), "--- On …" (Yahoo)


def _extend_up(lines: Sequence[str], first: int, first_allowed: int) -> int:
    """Take in the lines a wrapped header began on: its first line found so far may be a continuation
    ("bob@x.org> написал:") or follow a line left open ("… Rafael Silva <")."""
    while first - 1 >= first_allowed:
        above = lines[first - 1]
        if _is_blank(above) or _is_quote(above):
            break
        current = lines[first].strip(_INVISIBLE)
        if not (_CONTINUATION.match(current) or above.rstrip().endswith(("<", ",", "("))):
            break
        first -= 1
    return first


def _field_block(lines: Sequence[str], index: int) -> _Header | None:
    """An Outlook-style header block (From:/Sent:/To:/Subject: and translations) starting here, perhaps
    under a separator line. Fields may be a blank line apart, and a long value may wrap onto a line of
    its own ("To: a@x;" / " b@x"): the block goes on while another field follows within two lines."""
    separated = bool(_SEPARATOR.match(lines[index]) or _DECORATED.match(lines[index]))
    position = index + 1 if separated else index
    if separated:
        while position < len(lines) and position - index <= 2 and _is_blank(lines[position]):
            position += 1
    first_field = position
    fields, has_from, has_date, from_has_address = 0, False, False, False
    end = position
    while position < len(lines) and position - first_field < 16:
        line = lines[position]
        match = _FIELD.match(line)
        if match is not None:
            fields += 1
            if match.group(1):
                has_from = True
                from_has_address = from_has_address or "@" in line
            has_date = has_date or bool(_DATED_FIELD.match(line))
        elif _ANY_DATED_FIELD.match(line):
            fields += 1
            has_date = True
        elif not (fields and _field_follows(lines, position)):
            break
        elif not _is_blank(line):
            from_has_address = from_has_address or (has_from and "@" in line)
        position += 1
        if match is not None or not _is_blank(line):
            end = position
    if not has_from or fields < 2:
        return None
    if fields >= 3 or separated or has_date or from_has_address:
        return _Header(index, end, _Kind.BLOCK)
    return None


def _field_follows(lines: Sequence[str], position: int) -> bool:
    """Whether a known field starts within the two lines from ``position`` (a blank or a wrapped value
    in between is still the same block)."""
    for ahead in range(position + 1, min(position + 3, len(lines))):
        if _FIELD.match(lines[ahead]):
            return True
        if _is_blank(lines[ahead]) and _is_blank(lines[position]):
            return False
    return False


# --- the scan ------------------------------------------------------------------------------------------


class _Scan:
    """Finds the new part of ``lines``: reads top-down to the first header that starts quoted history."""

    def __init__(self, lines: Sequence[str]) -> None:
        self._lines = lines
        self._headers = _find_headers(lines)
        self._memo: dict[int, tuple[int, int]] = {}
        # A header's decision needs the new part of the lines after it; working out those suffixes
        # last-first keeps the recursion one level deep, however many headers a mail has.
        for position in sorted(self._suffixes_needed(), reverse=True):
            self.new_part(position)

    def _suffixes_needed(self) -> set[int]:
        needed = set()
        for header in self._headers.values():
            needed.add(header.end)
            quote = self._quote_after(header)
            if quote is not None:
                needed.add(quote)
        return needed

    def _quote_after(self, header: _Header) -> int | None:
        """Where the ``>`` block right after an attribution header ends, if there is one."""
        if header.kind is not _Kind.ATTRIBUTION:
            return None
        lines = self._lines
        position = header.end
        while position < len(lines) and _is_blank(lines[position]):
            position += 1
        if position == len(lines) or not _is_quote(lines[position]):
            return None
        end = position
        while position < len(lines) and (_is_quote(lines[position]) or _is_blank(lines[position])):
            if _is_quote(lines[position]):
                end = position + 1
            position += 1
        return end

    def new_part(self, begin: int) -> tuple[int, int]:
        """The [start, end) range of the new part of ``lines[begin:]``."""
        if begin not in self._memo:
            start, end = self._read(begin)
            self._memo[begin] = _trim_end(self._lines, start, end)
        return self._memo[begin]

    def _read(self, begin: int) -> tuple[int, int]:
        lines = self._lines
        seen = False  # anything above the current line but blanks
        for index in range(begin, len(lines)):
            header = self._headers.get(index)
            if header is None:
                line = lines[index]
                if _is_blank(line):
                    continue
                if not _is_quote(line) and _is_signature_delimiter(line):
                    return begin, index
                seen = True
                continue
            if header.kind is _Kind.CUT:
                return begin, index
            if header.kind is _Kind.FORWARD:
                return (begin, index) if seen else (begin, len(lines))
            quote_end = self._quote_after(header)
            if quote_end is not None:
                rest_start, rest_end = self.new_part(quote_end)
                if rest_start == rest_end:
                    return begin, index  # header, quote, nothing new after: history
                if seen or any(_is_quote(line) for line in lines[rest_start:rest_end]):
                    return begin, rest_end  # an inline answer: kept as written
                return rest_start, rest_end  # a bottom-post: the header and the quote go
            if seen:
                return begin, index
            return self.new_part(header.end)  # a header at the very top: the message follows it
        return begin, len(lines)


# --- the end of the new part ---------------------------------------------------------------------------

_URL = re.compile(r"\(?<?https?://\S+>?\)?")
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_APPS = (
    r"my|mail|mailbox|outlook|yahoo|windows|gmail|aol|icloud|samsung|iphone|ipad|ipod|android|blackberry"
    r"|mobile|proton\s?mail|spark|airmail|newton|bluemail|edison|zoho|tutanota|k-9|fairemail|typeapp|nine"
    r"|thunderbird|apple|a\s+(?:mobile|phone|cell|smartphone|tablet)|my\s+\w+"
)
# "Get Outlook for iOS" as the other languages write it: the verb may come first or last.
_GET_VERBS = (
    r"get|download|obtenir|obtenez|télécharger|téléchargez|obtener|obtén|descargar|descarga|obter|obtenha"
    r"|baixe|baixar|scarica|ottieni|downloaden|hol|holen|herunterladen|pobierz|hämta|skaffa|hent|få|lataa"
    r"|hanki|stáhnout|stáhněte|získejte|скачать|скачайте|получить|завантажити|indir|edinin|letöltése"
    r"|töltse|descărcați|obțineți"
)
_BOILERPLATE = re.compile(
    r"(?:"
    rf"sent\s+from\s+(?:{_APPS})\b.{{0,60}}"
    r"|sent\s+(?:via|with|using|by|on)\s+\S+(?:\s+\S+){0,3}"
    r"|(?:get|download)\s+outlook\s+for\s+(?:ios|android)\S*"
    rf"|(?=.*\b(?:{_GET_VERBS})\b).{{0,40}}\boutlook\b.{{0,30}}\b(?:ios|android)\b.{{0,20}}"
    r"|from\s+my\s+(?:iphone|ipad|ipod|android|mobile|phone|smartphone|blackberry|samsung|galaxy)\b.{0,30}"
    r"|\S+\s+from\s+(?:my\s+)?(?:mobile|phone)"
    r"|von\s+meine[mr]\s+.{1,40}\s+gesendet"
    r"|gesendet\s+(?:von|mit|über|vom)\s+.{1,60}"
    r"|diese\s+nachricht\s+wurde\s+von\s+meinem\s+.{1,80}\s+gesendet"
    r"|envoyé\s+(?:de|depuis|à\s+partir\s+de|avec|du)\s+.{1,60}"
    r"|(?:obtenez|télécharger|téléchargez|obtener|descargar|descarga|obter|obtenha|baixe|scarica"
    r"|download|hol\s+dir)\s+(?:el\s+|o\s+)?outlook\s+(?:pour|para|per|voor|für)\s+(?:ios|android)\S*"
    r"|enviado\s+(?:desde|do|de|con|com|pelo|a\s+partir\s+do)\s+.{1,60}"
    r"|inviato\s+(?:da|dal|dalla|con)\s+.{1,60}"
    r"|(?:verzonden|verstuurd)\s+(?:vanaf|van|met|via)\s+.{1,60}"
    r"|(?:skickat|skickades)\s+från\s+.{1,60}"
    r"|sendt\s+fra\s+.{1,60}"
    r"|lähetetty\s+.{1,60}"
    r"|wysłan[eoy]\s+(?:z|ze|przy\s+użyciu)\s+.{1,60}"
    r"|odesláno\s+z\s+.{1,60}"
    r"|отправлено\s+(?:с|из|со)\s+.{1,60}"
    r"|надіслано\s+(?:з|із)\s+.{1,60}"
    r"|.{1,40}(?:'?(?:dan|den|tan|ten))\s+gönderildi"
    r"|.{0,40}から送信"
    r"|(?:发自|来自|寄自)我的.{1,40}|從我的.{1,40}傳送|发送自.{1,40}"
    r"|.{0,40}에서\s+보냄"
    r"|(?:az\s+)?\S{1,30}(?:ról|ről)\s+küldve|trimis\s+de\s+pe\s+.{1,60}|poslan[oa]\s+(?:s|sa|z|iz)\s+.{1,60}"
    r"|poslato\s+sa\s+.{1,60}|στάλθηκε\s+από\s+.{1,60}|(?:dikirim|dihantar)\s+dari\s+.{1,60}|(?:được\s+)?gửi\s+từ\s+.{1,60}"
    r"|נשלח\s+מ.{1,60}|(?:أرسلت|أُرسلت|مرسل)\s+من\s+.{1,60}|enviat\s+des\s+del?\s+.{1,60}|odoslané\s+z\s+.{1,60}"
    r"|išsiųsta\s+iš\s+.{1,60}|saadetud\s+.{1,60}|nosūtīts\s+no\s+.{1,60}|изпратено\s+от\s+.{1,60}"
    r"|ส่งจาก.{1,40}"
    r"|(?:get|download)\s+\S+(?:\s+\S+)?\s+for\s+(?:ios|android|iphone|ipad|windows|mac)\S*"
    r")",
    re.IGNORECASE,
)
# What introduces a trailing quote without being a header we know: "Ana wrote:", or an attribution in a
# language we do not know, "Ana Lima <ana@x.org>, 12:40:" (only with an address: "As the log said at
# 10:42:" is the sender's own sentence).
_INTRO_LINE = re.compile(rf"(?:.{{0,80}}\bwrote|.*{_EMAIL}.*)\s*[:：]\s*", re.IGNORECASE)


# Boilerplate names a device or an app, perhaps "Verizon, Samsung Galaxy" or ", an AT&T … smartphone";
# a comma followed by a lower-case word is a sentence going on ("Sent from my iPhone, the upload fails").
_AFTER_COMMA = re.compile(r",\s+(\w+)")


# …except the apology many add: "Sent from my phone, please excuse typos", "…, sorry for the brevity".
_APOLOGY = re.compile(
    r"[,.;:\-–—]\s*(?:please\s+|pls\s+|so\s+)?(?:excuse|pardon|forgive|sorry|apologies|bitte|désolé"
    r"|excusez|disculpa|disculpe|scusa|scusate)\b.*$",
    re.IGNORECASE,
)


def _sentence_goes_on(text: str) -> bool:
    text = _APOLOGY.sub("", text)
    return any(word.islower() and word not in ("a", "an") for word in _AFTER_COMMA.findall(text))


def _is_boilerplate(line: str) -> bool:
    text = _MARKDOWN_LINK.sub(r"\1", line.strip(_INVISIBLE))
    text = _URL.sub("", text).strip(" \t()<>[]*.!")
    text = " ".join(text.split())
    return len(text) <= 80 and not _sentence_goes_on(text) and bool(_BOILERPLATE.fullmatch(text))


def _is_intro(line: str) -> bool:
    text = " ".join(line.strip(_INVISIBLE).split())
    return len(text) <= _MAX_HEADER_CHARS and bool(
        _INTRO_LINE.fullmatch(text) or _is_verb_attribution(text) or _ANCHORED_ATTRIBUTION.fullmatch(text)
    )


def _is_separator(line: str) -> bool:
    return bool(_SEPARATOR.match(line) or _DECORATED.match(line))


def _is_link(line: str) -> bool:
    text = _URL.sub("", line.strip(_INVISIBLE)).strip(" \t()<>[]*.!")
    return not text and "://" in line


def _trim_end(lines: Sequence[str], start: int, end: int) -> tuple[int, int]:
    """Drop what trails the new part: blank lines, a ``>`` block (and its stray intro), boilerplate,
    a separator line left by the quoted mail's header."""
    while True:
        while end > start and _is_blank(lines[end - 1]):
            end -= 1
        if end > start and _is_quote(lines[end - 1]):
            while end > start and (_is_quote(lines[end - 1]) or _is_blank(lines[end - 1])):
                end -= 1
            if end > start and _is_intro(lines[end - 1]):
                end -= 1
            continue
        if end > start and (_is_boilerplate(lines[end - 1]) or _is_separator(lines[end - 1])):
            end -= 1
            continue
        if end - 1 > start and _is_link(lines[end - 1]) and _is_boilerplate(lines[end - 2]):
            end -= 2  # "Get Outlook for iOS" with its link on a line of its own
            continue
        break
    while start < end and _is_blank(lines[start]):
        start += 1
    return start, end
