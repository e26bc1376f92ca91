"""The new part of a reply (SPEC §4), rule by rule: what is cut, and what must survive."""

from __future__ import annotations

import pytest

from gateway.mail.html_text import html_to_text
from gateway.mail.quotes import REPLY_MARKER, trim_reply


def new_part(text: str, html: str | None = None) -> str:
    return trim_reply(text, html=html).text


# --- quote headers in many languages -----------------------------------------------------------------

HEADERS = {
    "en": "On Mon, Jun 3, 2024 at 10:00 AM Bob Stone <bob@example.com> wrote:",
    "en-apple": "On 3 Jun 2024, at 10:00, Bob Stone <bob@example.com> wrote:",
    "en-no-address": "On 03/06/2024 10:00, Bob Stone wrote:",
    "en-zoho": "---- On Mon, 03 Jun 2024 10:00:00 +0200 Bob Stone <bob@example.com> wrote ----",
    "en-yahoo": "--- On Mon, 6/3/24, bob@example.com <bob@example.com> wrote:",
    "de": "Am 03.06.2024 um 10:00 schrieb Bob Stone <bob@example.com>:",
    "de-gmail": "Bob Stone <bob@example.com> schrieb am Mo., 3. Juni 2024, 10:00:",
    "fr": "Le lun. 3 juin 2024 à 10:00, Bob Stone <bob@example.com> a écrit :",
    "es": "El lun, 3 jun 2024 a las 10:00, Bob Stone (<bob@example.com>) escribió:",
    "it": "Il giorno lun 3 giu 2024 alle ore 10:00 Bob Stone <bob@example.com> ha scritto:",
    "pt": "Em seg., 3 de jun. de 2024 às 10:00, Bob Stone <bob@example.com> escreveu:",
    "nl": "Op ma 3 jun. 2024 om 10:00 schreef Bob Stone <bob@example.com>:",
    "sv": "Den mån 3 juni 2024 kl 10:00 skrev Bob Stone <bob@example.com>:",
    "da": "Den 3. jun. 2024 kl. 10.00 skrev Bob Stone <bob@example.com>:",
    "pl": "pon., 3 cze 2024 o 10:00 Bob Stone <bob@example.com> napisał(a):",
    "pl-dniu": "W dniu 3.06.2024 o 10:00, Bob Stone pisze:",
    "cs": "Dne po 3. 6. 2024 10:00 uživatel Bob Stone <bob@example.com> napsal:",
    "fi": "ma 3. kesäk. 2024 klo 10.00 Bob Stone (bob@example.com) kirjoitti:",
    "tr": "Bob Stone <bob@example.com>, 3 Haz 2024 Pzt, 10:00 tarihinde şunu yazdı:",
    "ru": "пн, 3 июн. 2024 г. в 10:00, Bob Stone <bob@example.com>:",
    "ru-verb": "3 июня 2024 г., в 10:00, Bob Stone <bob@example.com> написал(а):",
    "uk": "пн, 3 черв. 2024 р. о 10:00 Bob Stone <bob@example.com> пише:",
    "ja": "2024年6月3日(月) 10:00 Bob Stone <bob@example.com>:",
    "zh": "在 2024年6月3日，上午10:00，Bob Stone <bob@example.com> 写道：",
    "zh-tw": "Bob Stone <bob@example.com> 於 2024年6月3日 週一 上午10:00寫道：",
    "ko": "2024년 6월 3일 (월) 오전 10:00, Bob Stone <bob@example.com>님이 작성:",
    "yandex": '03.06.2024, 10:00, "Bob Stone" <bob@example.com>:',
    "mail.ru": "Mon, 3 Jun 2024 10:00:00 +0200 от Bob Stone <bob@example.com>:",
}


@pytest.mark.parametrize("header", HEADERS.values(), ids=HEADERS.keys())
def test_a_quote_header_and_the_quote_under_it_are_cut(header: str) -> None:
    reply = f"Thanks, that fixed it.\n\n{header}\n\n> Please try again.\n> Bob\n"
    assert new_part(reply) == "Thanks, that fixed it."


@pytest.mark.parametrize("header", HEADERS.values(), ids=HEADERS.keys())
def test_a_quote_header_cuts_history_that_is_not_marked_with_gt(header: str) -> None:
    reply = f"Thanks.\n\n{header}\n\nPlease try again.\n\nBob\n"
    assert new_part(reply) == "Thanks."


WRAPPED = {
    "gmail-2-lines": "On Mon, Jun 3, 2024 at 10:00 AM Bob Stone <bob@example.com>\nwrote:",
    "gmail-address-wrapped": "On Mon, Jun 3, 2024 at 10:00 AM Bob Stone <\nbob@example.com> wrote:",
    "3-lines": "On Mon, Jun 3, 2024 at 10:00 AM A Long Name\n<a.long.address@example.com>\nwrote:",
    "de-gmail": "Bob Stone <bob@example.com> schrieb am Mo., 3.\nJuni 2024 um 10:00 Uhr:",
    "de-gmail-address-wrapped": "Bob Stone <\nbob@example.com> schrieb am Mo., 3. Juni 2024 um 10:00 Uhr:",
    "nl": 'Op 3 jun. 2024 10:00 schreef "Bob Stone" <bob@example.com> het\nvolgende geschreven:',
    "ru-android": '03.06.2024 10:00 пользователь "bob@example.com" <\nbob@example.com> написал:',
    "date-first": "2024-06-03 10:00 GMT+02:00 Bob Stone <\nbob@example.com>:",
}


@pytest.mark.parametrize("header", WRAPPED.values(), ids=WRAPPED.keys())
def test_a_header_wrapped_over_lines_is_cut_whole(header: str) -> None:
    reply = f"Works now, thank you\n{header}\n\n> Please try again.\n"
    result = trim_reply(reply)
    assert result.text == "Works now, thank you"
    assert header.splitlines()[0] in result.removed


def test_the_text_above_a_wrapped_header_is_not_mistaken_for_its_start() -> None:
    reply = "Danke für die Hilfe\nAm 03.06.2024 um 10:00 schrieb Bob <bob@example.com>:\n> Hallo\n"
    assert new_part(reply) == "Danke für die Hilfe"


# --- Outlook blocks, original-message lines, forwards -------------------------------------------------

OUTLOOK = {
    "en": "From: Bob Stone <bob@example.com>\nSent: Monday, June 3, 2024 10:00\nTo: Support\nSubject: Crash",
    "en-separator": "________________________________\nFrom: Bob Stone\nSent: Monday, June 3, 2024 10:00",
    "en-mailto": "From: bob@example.com [mailto:bob@example.com]\nSent: March-09-12 4:22 PM\nTo: Dan",
    "en-hotmail": "Date: Mon, 3 Jun 2024 10:00:00 +0200\nSubject: Crash\nFrom: bob@example.com\nTo: Ana",
    "bold": "*From:* Bob Stone <bob@example.com>\n*Sent:* Monday\n*To:* Support",
    "de": "Von: Bob Stone <bob@example.com>\nGesendet: Montag, 3. Juni 2024\nAn: Support\nBetreff: Absturz",
    "fr": "De : Bob Stone <bob@example.com>\nEnvoyé : lundi 3 juin 2024 10:00\nÀ : Support\nObjet : Panne",
    "es": "De: Bob Stone <bob@example.com>\nEnviado: lunes, 3 de junio de 2024\nPara: Soporte\nAsunto: Fallo",
    "it": "Da: Bob Stone\nInviato: lunedì 3 giugno 2024 10:00\nA: Supporto\nOggetto: Errore",
    "nl": "Van: Bob Stone <bob@example.com>\nVerzonden: maandag 3 juni 2024\nAan: Support\nOnderwerp: Fout",
    "sv": "Från: Bob Stone <bob@example.com>\nSkickat: den 3 juni 2024 10:00\nTill: Support\nÄmne: Fel",
    "pl": "Od: Bob Stone <bob@example.com>\nWysłano: poniedziałek, 3 czerwca 2024 10:00\nDo: Wsparcie",
    "ru": "От: Bob Stone\nОтправлено: 3 июня 2024 г. 10:00\nКому: Поддержка\nТема: Ошибка",
    "ja": "差出人: Bob Stone <bob@example.com>\n送信日時: 2024年6月3日 10:00\n宛先: Support\n件名: エラー",
    "zh": "发件人: Bob Stone <bob@example.com>\n发送时间: 2024年6月3日 10:00\n收件人: Support\n主题: 错误",
}


@pytest.mark.parametrize("block", OUTLOOK.values(), ids=OUTLOOK.keys())
def test_an_outlook_header_block_and_what_follows_are_cut(block: str) -> None:
    reply = f"Yes, it happens every day.\n\n{block}\n\nDoes it still crash?\n"
    assert new_part(reply) == "Yes, it happens every day."


ORIGINAL = [
    "-----Original Message-----",
    "----- Original Message -----",
    "-------- Original Message --------",
    "-----Ursprüngliche Nachricht-----",
    "-----Message d'origine-----",
    "-----Mensaje original-----",
    "-----Messaggio originale-----",
    "-----Oorspronkelijk bericht-----",
    "-----Исходное сообщение-----",
]


@pytest.mark.parametrize("line", ORIGINAL)
def test_an_original_message_line_and_what_follows_are_cut(line: str) -> None:
    reply = f"Done.\n\n{line}\nBob: does it crash?\n"
    assert new_part(reply) == "Done."


FORWARDS = [
    "---------- Forwarded message ---------",
    "-------- Forwarded Message --------",
    "Begin forwarded message:",
    "---------- Weitergeleitete Nachricht ----------",
    "Début du message réexpédié :",
    "-------- Message transféré --------",
]


@pytest.mark.parametrize("marker", FORWARDS)
def test_a_forward_keeps_what_was_written_above_it(marker: str) -> None:
    reply = (
        f"Please look at this receipt.\n\n{marker}\nFrom: Bank <noreply@bank.example>\n\nPayment failed.\n"
    )
    assert new_part(reply) == "Please look at this receipt."


def test_a_forward_with_nothing_written_above_it_is_kept_whole() -> None:
    # Forwarding a mail without a word is how people hand it to support: that mail is the message.
    reply = (
        "---------- Forwarded message ---------\nFrom: Bank <noreply@bank.example>\n"
        "Date: Mon, Jun 3, 2024\nSubject: Receipt\n\nYour payment of 10 EUR failed.\n"
    )
    assert new_part(reply) == reply.strip()


# --- ticketgate's own marker --------------------------------------------------------------------------


def test_everything_from_our_marker_on_is_cut() -> None:
    reply = f"Yes, please close it.\n\n{REPLY_MARKER}\nSP-42: your ticket was answered\n"
    assert new_part(reply) == "Yes, please close it."


def test_our_marker_quoted_under_a_header_is_cut_with_its_header() -> None:
    reply = (
        "Yes, please close it.\n\nOn Mon, Jun 3, 2024 at 10:00 AM SmilePass Support "
        f"<support@smilepass.example> wrote:\n\n> {REPLY_MARKER}\n> SP-42 was answered\n"
    )
    assert new_part(reply) == "Yes, please close it."


def test_our_marker_is_found_whatever_its_case() -> None:
    assert new_part(f"Thanks\n## {REPLY_MARKER.upper()} ##\nold") == "Thanks"


# --- signatures and sign-offs -------------------------------------------------------------------------


def test_a_signature_after_the_standard_delimiter_is_cut() -> None:
    assert new_part("It works.\n\n-- \nAna Lima\nACME Corp\n+1 555 0100\n") == "It works."


def test_a_delimiter_that_lost_its_trailing_space_still_starts_the_signature() -> None:
    assert new_part("It works.\n\n--\nAna Lima\n") == "It works."


def test_double_dashes_in_prose_and_lists_are_kept() -> None:
    reply = "It crashed -- twice -- today.\nSteps:\n-- open the app\n-- pay\n\nThanks"
    assert new_part(reply) == reply


SIGN_OFFS = [
    "Best regards,\nAna",
    "Best regards, Ana",
    "Thanks,\nAlex",
    "Mit freundlichen Grüßen\nAna Lima",
    "Cordialement,\nAna",
    "Ana Lima\nHead of Finance\nACME Corp",
]


@pytest.mark.parametrize("sign_off", SIGN_OFFS)
def test_sign_offs_and_signatures_without_the_delimiter_are_kept(sign_off: str) -> None:
    reply = f"The invoice is wrong.\n\n{sign_off}"
    assert new_part(reply) == reply


# --- mobile and client boilerplate --------------------------------------------------------------------

BOILERPLATE = [
    "Sent from my iPhone",
    "Sent from my iPad",
    "Sent from my Samsung Galaxy smartphone.",
    "Get Outlook for Android",
    "Get Outlook for iOS<https://aka.ms/o0ukef>",
    "Get [Outlook for Android](https://aka.ms/ghei36)",
    "Sent from Yahoo Mail for iPhone",
    "Sent from Yahoo Mail on Android",
    "Sent from Mail for Windows",
    "Sent from Outlook Mobile<https://aka.ms/blah>",
    "Sent with Airmail",
    "Von meinem iPhone gesendet",
    "Gesendet von meinem iPhone",
    "Envoyé de mon iPhone",
    "Envoyé depuis mon iPad",
    "Enviado desde mi iPhone",
    "Enviado do meu iPhone",
    "Inviato da iPhone",
    "Verzonden vanaf mijn iPhone",
    "Skickat från min iPhone",
    "Sendt fra min iPad",
    "Wysłane z mojego iPhone'a",
    "Отправлено с iPhone",
    "iPhoneから送信",
    "发自我的iPhone",
    "從我的 iPhone 傳送",
    "(Sent from mobile device)",
]


@pytest.mark.parametrize("line", BOILERPLATE)
def test_mobile_and_client_boilerplate_at_the_end_is_cut(line: str) -> None:
    assert new_part(f"Please call me back.\n\n{line}\n") == "Please call me back."


def test_boilerplate_above_the_quote_header_is_cut_too() -> None:
    reply = (
        "Hello\n\nSent from my iPhone\n\nOn Apr 3, 2012, at 4:19 PM, bob <bob@example.com> wrote:\n\n> Hi\n"
    )
    assert new_part(reply) == "Hello"


def test_a_sentence_that_starts_like_boilerplate_is_kept() -> None:
    reply = "The error shows on the payment page.\nSent from the checkout page at 3pm"
    assert new_part(reply) == reply


# --- quotes: trailing, interleaved, all-quote ---------------------------------------------------------


def test_trailing_quoted_lines_are_cut() -> None:
    assert new_part("Done.\n\n> Can you check?\n> Bob\n>\n") == "Done."


def test_a_plain_attribution_left_above_a_trailing_quote_is_cut() -> None:
    assert new_part("Sure.\n\nBob wrote:\n> Can you check?\n") == "Sure."


def test_inline_answers_keep_their_quotes_and_lose_the_attribution_line() -> None:
    """Issue 23: under the sender's opening, the "On … wrote:" line goes; quotes and answers stay."""
    attribution = "On Mon, Jun 3, 2024 at 10:00 AM Bob <bob@example.com> wrote:\n"
    answers = "> Does it crash?\n\nYes, every time.\n\n> Which version?\n\n2.3\n\nBest regards,\nAna"
    assert new_part(f"Hi Bob,\n\n{attribution}{answers}") == f"Hi Bob,\n\n{answers}"


def test_a_quote_followed_by_an_answer_is_kept() -> None:
    reply = "> Does it crash?\nYes, every time.\n> Which version?\n2.3"
    assert new_part(f"{reply}\n\nOn Mon, 3 Jun 2024, Bob <bob@example.com> wrote:\n> old\n") == reply


def test_a_bottom_post_loses_the_header_and_the_quote_above_the_answer() -> None:
    reply = "On Mon, Jun 3, 2024 at 10:00 AM Bob <bob@example.com> wrote:\n> Does it crash?\n\nYes, always."
    assert new_part(reply) == "Yes, always."


def test_a_header_at_the_top_without_quote_marks_leaves_what_follows() -> None:
    reply = "On 8 May 2017 17:34, Bob <bob@example.com> wrote:\n\n    nil && 2.0\n\nIt should be 2.0"
    assert new_part(reply) == "    nil && 2.0\n\nIt should be 2.0"


@pytest.mark.parametrize(
    "reply",
    [
        "> Only a quote.\n> Nothing else.\n",
        "On Mon, Jun 3, 2024 at 10:00 AM Bob <bob@example.com> wrote:\n\n> Does it crash?\n",
        "From: Bob <bob@example.com>\nSent: Monday\nTo: Support\n\n> Does it crash?\n",
        f"{REPLY_MARKER}\nSP-42 was answered\n",
        "\n\nSent from my iPhone\n\n> quoted\n",
    ],
    ids=["quote", "header-and-quote", "outlook-and-quote", "marker", "boilerplate-and-quote"],
)
def test_a_reply_that_is_all_quote_has_an_empty_new_part(reply: str) -> None:
    result = trim_reply(reply)
    assert result.text == ""
    assert result.removed.strip()


# --- what is not a quote header -----------------------------------------------------------------------

PROSE = [
    "On Monday I wrote: nothing works.\nPlease help.",
    "On Monday I wrote:\nnothing works for 3 days.\nPlease help.",
    "As I wrote on 3 May:\nthe export fails.",
    "I tried it 3 times, and this is what I wrote:\n\nthe export fails.",
    "Q: does it work?\nA: no\nFrom: my phone\nThanks",
    "Run this:\n\n    >>> import foo\n    >>> foo.bar()\n\nit fails.",
    "Part one\n\n__________\n\nPart two",
    "I see this in the log at 10:42:\n\nERROR payment refused",
]


@pytest.mark.parametrize("reply", PROSE)
def test_prose_that_looks_a_little_like_a_header_is_kept(reply: str) -> None:
    assert new_part(reply) == reply


# --- line endings and whitespace ----------------------------------------------------------------------


def test_crlf_and_cr_line_endings_are_read_as_lines() -> None:
    crlf = "Hello\r\n\r\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan <m@example.com> wrote:\r\n\r\n> Hi\r\n"
    assert new_part(crlf) == "Hello"
    assert new_part(crlf.replace("\r\n", "\r")) == "Hello"


def test_the_new_part_loses_only_blank_lines_at_its_ends() -> None:
    # The sender's lines stay as written, spaces at their ends too (the crisp corpus keeps them).
    assert new_part("\n\n  Hello  \n\n  there\n\n\n") == "  Hello  \n\n  there"


def test_spaces_a_rendering_of_html_leaves_at_line_ends_are_dropped() -> None:
    assert new_part("", "<div>Hello&nbsp; </div><div>there </div>") == "Hello\nthere"


def test_what_was_cut_is_reported() -> None:
    result = trim_reply("Done.\n\n-- \nAna\n\nOn Mon, 3 Jun 2024, Bob <bob@example.com> wrote:\n> old")
    assert result.text == "Done."
    assert "Ana" in result.removed and "> old" in result.removed


def test_empty_input_gives_an_empty_new_part() -> None:
    assert trim_reply("") == trim_reply("", html=None)
    assert new_part("") == ""
    assert new_part("\n \n") == ""


# --- HTML ---------------------------------------------------------------------------------------------


def test_html_is_read_when_the_text_part_is_empty() -> None:
    html = (
        '<div>Hi. I am fine.</div><div class="gmail_quote"><div class="gmail_attr">On Thu, Jun 26, 2014 '
        "at 2:14 PM, Alexander &lt;a@example.com&gt; wrote:<br></div>"
        "<blockquote>Hello! How are you?</blockquote></div>"
    )
    assert new_part("", html) == "Hi. I am fine."


def test_an_attribution_the_html_names_is_cut_in_any_language() -> None:
    html = (
        '<p>Kiitos</p><div class="moz-cite-prefix">3.6.2024 klo 10.00 Bob Stone kirjoitti jotain:<br></div>'
        '<blockquote type="cite">Hei</blockquote>'
    )
    assert new_part("", html) == "Kiitos"


@pytest.mark.parametrize(
    "container",
    [
        '<div id="divRplyFwdMsg"><b>Lähettäjä:</b> Bob<br><b>Lähetetty:</b> maanantai</div>',
        '<div id="x_divRplyFwdMsg"><b>Lähettäjä:</b> Bob</div>',
        '<span id="OLK_SRC_BODY_SECTION"><div>Lähettäjä: Bob</div></span>',
        '<div class="yahoo_quoted"><div>Bob kirjoitti</div><blockquote>Hei</blockquote></div>',
    ],
    ids=["outlook", "outlook-web", "outlook-mac", "yahoo"],
)
def test_a_quote_container_the_html_names_is_cut_in_any_language(container: str) -> None:
    html = f"<div>Kiitos paljon</div>{container}<div>Hei, toimiiko?</div>"
    assert new_part("", html) == "Kiitos paljon"


def test_inline_answers_in_html_keep_their_quotes_and_lose_the_attribution() -> None:
    html = (
        '<div>Hi Bob,</div><div class="gmail_quote"><div class="gmail_attr">Am Mo., 3. Juni 2024 um 10:00 '
        "schrieb Bob &lt;bob@example.com&gt;:<br></div><blockquote>Does it crash?</blockquote>"
        "<div>Yes, always.</div><blockquote>Version?</blockquote><div>2.3</div></div>"
    )
    assert new_part("", html).splitlines() == [
        "Hi Bob,",
        "> Does it crash?",
        "Yes, always.",
        "> Version?",
        "2.3",
    ]


def test_text_rendered_from_the_html_is_trimmed_as_the_html() -> None:
    # The parser renders HTML-only mail to text; the HTML's own marks still count.
    html = '<div>Kiitos paljon</div><div id="divRplyFwdMsg"><b>Lähettäjä:</b> Bob</div><div>Hei</div>'
    assert new_part(html_to_text(html), html) == "Kiitos paljon"


def test_a_text_part_of_its_own_wins_over_the_html() -> None:
    html = '<div>Other words</div><div id="divRplyFwdMsg">From: Bob</div>'
    assert new_part("The plain text part.", html) == "The plain text part."


@pytest.mark.parametrize(
    "attribution",
    ['<div class="moz-cite-prefix">Le 3/6/2024, Bob a écrit :<br></div>', ""],
    ids=["with-attribution", "bare-quote"],
)
def test_a_quote_container_inside_a_quote_does_not_cut_the_answer_below(attribution: str) -> None:
    html = (
        f"<p>Answer one</p>{attribution}"
        '<blockquote type="cite"><p>Question?</p><div id="divRplyFwdMsg">From: Ana</div></blockquote>'
        "<p>Answer two</p>"
    )
    assert new_part("", html).splitlines()[-1] == "Answer two"


def test_html_too_deep_for_the_parser_still_gives_its_text() -> None:
    html = '<div class="gmail_attr"></div>' + "<div>" * 400 + "deep text" + "</div>" * 400
    assert new_part("", html) == "deep text"


def test_no_private_marks_reach_the_result() -> None:
    html = '<div>Hi<div class="moz-cite-prefix">On x, Bob wrote:</div></div><div id="divRplyFwdMsg">x</div>'
    result = trim_reply("", html=html)
    assert all(not ("\ue000" <= ch <= "\uf8ff") for ch in result.text + result.removed)
