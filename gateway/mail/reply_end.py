"""The end of a reply's new part (SPEC §4): trailing ``>`` lines and their stray intro, mobile and client
boilerplate ("Sent from my iPhone", "Get Outlook for Android" …, but not a sentence that goes on after
it: "Sent from my iPhone, the upload fails"), a separator left by the quoted mail's header."""

from __future__ import annotations

import re
from collections.abc import Sequence

from gateway.mail.quote_headers import (
    ANCHORED_ATTRIBUTION,
    DECORATED,
    EMAIL,
    MAX_HEADER_CHARS,
    SEPARATOR,
    is_verb_attribution,
)
from gateway.mail.quote_lines import INVISIBLE, is_blank, is_quote

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
_INTRO_LINE = re.compile(rf"(?:.{{0,80}}\bwrote|.*{EMAIL}.*)\s*[:：]\s*", re.IGNORECASE)


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
    text = _MARKDOWN_LINK.sub(r"\1", line.strip(INVISIBLE))
    text = _URL.sub("", text).strip(" \t()<>[]*.!")
    text = " ".join(text.split())
    return len(text) <= 80 and not _sentence_goes_on(text) and bool(_BOILERPLATE.fullmatch(text))


def _is_intro(line: str) -> bool:
    text = " ".join(line.strip(INVISIBLE).split())
    return len(text) <= MAX_HEADER_CHARS and bool(
        _INTRO_LINE.fullmatch(text) or is_verb_attribution(text) or ANCHORED_ATTRIBUTION.fullmatch(text)
    )


# A lone dot that mail add-ons (Streak, Mixmax and the like: "ᐧ") leave under the last line; no one
# ends a message with it.
_TRACKER_MARKS = frozenset("ᐧ·•‧⋅")


def _is_separator(line: str) -> bool:
    """A line of signs alone (3+ of ``- = _ * ~ # +`` …), words between signs, or a tracker's dot."""
    mark = line.strip(INVISIBLE)
    return bool(SEPARATOR.match(line) or DECORATED.match(line)) or (len(mark) == 1 and mark in _TRACKER_MARKS)


def _is_link(line: str) -> bool:
    text = _URL.sub("", line.strip(INVISIBLE)).strip(" \t()<>[]*.!")
    return not text and "://" in line


def trim_end(lines: Sequence[str], start: int, end: int) -> tuple[int, int]:
    """Drop what trails the new part: blank lines, a ``>`` block (and its stray intro), boilerplate,
    a separator line left by the quoted mail's header."""
    while True:
        while end > start and is_blank(lines[end - 1]):
            end -= 1
        if end > start and is_quote(lines[end - 1]):
            while end > start and (is_quote(lines[end - 1]) or is_blank(lines[end - 1])):
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
    while start < end and is_blank(lines[start]):
        start += 1
    return start, end
