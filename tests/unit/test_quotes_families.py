"""Reply trimming on the families that real mail from outside our corpus got wrong (issue 11).

Every example here is written for this file, one family per block: the rules must catch the family, not
a sample of it. Each block also holds the look-alikes that must stay.
"""

from __future__ import annotations

import pytest

from gateway.mail.quotes import trim_reply

NEW = "Thanks, the refund arrived this morning.\n\nKind regards,\nMaria"


def new_part(text: str) -> str:
    return trim_reply(text).text


def reply_over(header: str, *, quoted: bool = True) -> str:
    history = "> Could you confirm the refund?\n> Jan" if quoted else "Could you confirm the refund?\nJan"
    return f"{NEW}\n\n{header}\n\n{history}\n"


# --- attributions that start with a date, span lines, or are in other languages ------------------------

DATE_FIRST = {
    "cz-dotted": "30.11.2026 09:14, Jan Novák <jan@example.cz>:",
    "iso-gmt": "2026-11-30 9:14 GMT+01:00 Jan <jan@example.org>:",
    "slashed": "2026/11/30 9:14 Jan Horák <jan@example.org>:",
    "us-slashed-wrote": "11/30/2026 9:14 AM, Jan Horák <jan@example.org> wrote:",
    "weekday": "Mon, 30 Nov 2026 09:14:00 +0100, Jan <jan@example.org>:",
    "no-on-wrote": "30 Nov 2026, at 09:14, Jan Novák <jan@example.cz> wrote:",
    "dated-no-address": "30.11.2026 09:14, Jan Novák wrote:",
    "time-first": "09:14, 30 November 2026, Jan Novák <jan@example.cz>:",
    "bracketed-date": "[30.11.2026 09:14] Jan Novák <jan@example.cz>:",
    "mutt": "* Jan Novák <jan@example.cz> [2026-11-30 09:14 +0100]:",
    "wrote-on": "Jan Novák <jan@example.cz> wrote on 30.11.2026 09:14:",
    "writes": "Jan Novák <jan@example.cz> writes:",
    "thunderbird-wrote-on": "Jan Novák wrote on 30.11.2026 09:14:",
    "horde": "Quoting Jan Novák <jan@example.cz>:",
    "horde-de": "Zitat von Jan Novák <jan@example.cz>:",
}

LANGUAGES = {
    "de": "Am Mo., 30. Nov. 2026 um 09:14 Uhr schrieb Jan Novák <jan@example.cz>:",
    "de-no-address": "Am 30.11.2026 um 09:14 schrieb Jan Novák:",
    "fr": "Le lun. 30 nov. 2026 à 09:14, Jan <jan@example.fr> a écrit :",
    "fr-date": "Le 30/11/2026 à 09:14, Jan Novák a écrit :",
    "es": "El lun, 30 nov 2026 a las 9:14, Jan (<jan@example.es>) escribió:",
    "it": "Il giorno lun 30 nov 2026 alle ore 09:14 Jan <jan@example.it> ha scritto:",
    "it-short": "Il 30/11/2026 09:14, Jan Novák ha scritto:",
    "pt": "Em seg., 30 de nov. de 2026 às 09:14, Jan <jan@example.pt> escreveu:",
    "nl": "Op ma 30 nov. 2026 om 09:14 schreef Jan <jan@example.nl>:",
    "nl-het-volgende": "Jan Novák <jan@example.nl> schreef op 30 november 2026 09:14:",
    "sv": "Den mån 30 nov. 2026 kl 09:14 skrev Jan <jan@example.se>:",
    "da": "Den 30. nov. 2026 kl. 09.14 skrev Jan Novák <jan@example.dk>:",
    "no": "man. 30. nov. 2026 kl. 09:14 skrev Jan <jan@example.no>:",
    "pl": "pon., 30 lis 2026 o 09:14 Jan <jan@example.pl> napisał(a):",
    "pl-dniu": "W dniu 30.11.2026 o 09:14, Jan Nowak pisze:",
    "cs": "po 30. 11. 2026 v 9:14 odesílatel Jan Novák <jan@example.cz> napsal:",
    "cs-dne": "Dne 30. 11. 2026 v 9:14 Jan Novák napsal(a):",
    "sk": "Dňa 30. 11. 2026 o 9:14 Ján Novák napísal(a):",
    "ru": "пн, 30 нояб. 2026 г. в 09:14, Ян <jan@example.ru>:",
    "ru-verb": "30 ноября 2026 г., в 09:14, Ян Новак <jan@example.ru> написал(а):",
    "ru-v": "В понедельник, 30 ноября 2026 г. в 09:14, Ян <jan@example.ru> написал:",
    "uk": "пн, 30 лист. 2026 р. о 09:14 Ян <jan@example.ua> пише:",
    "bg": "На 30.11.2026 в 09:14, Ян <jan@example.bg> написа:",
    "ja": "2026年11月30日(月) 9:14 Jan <jan@example.jp>:",
    "ja-verb": "2026/11/30 9:14、Jan <jan@example.jp> のメール:",
    "zh": "在 2026年11月30日，上午9:14，Jan <jan@example.cn> 写道：",
    "zh-tw": "Jan <jan@example.tw> 於 2026年11月30日 週一 上午9:14寫道：",
    "ko": "2026년 11월 30일 (월) 오전 9:14, Jan <jan@example.kr>님이 작성:",
    "tr": "Jan <jan@example.com.tr>, 30 Kas 2026 Pzt, 09:14 tarihinde şunu yazdı:",
    "fi": "ma 30. marrask. 2026 klo 9.14 Jan (jan@example.fi) kirjoitti:",
    "hu": "Jan <jan@example.hu> ezt írta (időpont: 2026. nov. 30., H, 9:14):",
    "ro": "Pe luni, 30 noiembrie 2026, 09:14:00 EET, Jan <jan@example.ro> a scris:",
    "hr": "pon, 30. stu 2026. u 09:14 Jan <jan@example.hr> je napisao:",
    "sl": "V pon., 30. nov. 2026 ob 09:14 je Jan <jan@example.si> napisal:",
    "lt": "2026-11-30, pr, 09:14 Jan <jan@example.lt> rašė:",
    "lv": "pirmd., 2026. g. 30. nov., plkst. 09:14 — lietotājs Jan (<jan@example.lv>) rakstīja:",
    "et": "E, 30. nov 2026 kell 09:14 Jan <jan@example.ee> kirjutas:",
    "el": "Στις Δευ 30 Νοε 2026 στις 9:14 π.μ., ο/η Jan <jan@example.gr> έγραψε:",
    "ca": "El dl., 30 de nov. 2026 a les 9:14, Jan (<jan@example.cat>) va escriure:",
    "id": "Pada tanggal Sen, 30 Nov 2026 09.14, Jan <jan@example.id> menulis:",
    "vi": "Vào Th 2, 30 thg 11, 2026 vào lúc 09:14 Jan <jan@example.vn> đã viết:",
    "he": "‫ב-יום ב׳, 30 בנוב׳ 2026 ב-9:14 מאת ‪Jan‬‏ <‪jan@example.il‬‏>:‬",
    "ar": "في الاثنين، 30 نوفمبر 2026 في 9:14 ص، كتب Jan <jan@example.sa>:",
}


@pytest.mark.parametrize("header", [*DATE_FIRST.values(), *LANGUAGES.values()],
                         ids=[*DATE_FIRST.keys(), *LANGUAGES.keys()])  # fmt: skip
@pytest.mark.parametrize("quoted", [True, False], ids=["gt", "plain"])
def test_an_attribution_of_any_shape_and_language_cuts_the_history(header: str, quoted: bool) -> None:
    result = trim_reply(reply_over(header, quoted=quoted))
    assert result.text == NEW
    assert header.split()[1] in result.removed


WRAPPED = {
    "two-lines-date-first": "30.11.2026 09:14, Jan Novák <\njan@example.cz>:",
    "two-lines-fr": "Le lun. 30 nov. 2026 à 09:14, Jan Novák <jan@example.fr> a\nécrit :",
    "two-lines-es": "El lun, 30 nov 2026 a las 9:14, Jan Novák (<jan@example.es>)\nescribió:",
    "three-lines-gmail": "On Mon, Nov 30, 2026 at 9:14 AM Jan Novák, Billing\n<jan.novak@example.cz>\nwrote:",
    "three-lines-de": "Am Mo., 30. Nov. 2026 um 09:14 Uhr schrieb Jan Novák\n<jan.novak@example.de>\n:",
    "three-lines-pt": "Em seg., 30 de nov. de 2026 às 09:14, Jan Novák <\njan@example.pt>\nescreveu:",
}


@pytest.mark.parametrize("header", WRAPPED.values(), ids=WRAPPED.keys())
def test_an_attribution_wrapped_over_two_or_three_lines_is_cut_whole(header: str) -> None:
    result = trim_reply(reply_over(header))
    assert result.text == NEW
    assert header.splitlines()[0] in result.removed


ATTRIBUTION_LOOK_ALIKES = [
    "On Monday we tried the refund again and it failed.\nCan you check?",
    "On 30.11.2026 we paid twice.\nAt 09:14 the second charge arrived:\n\n  EUR 40.00",
    "30.11.2026 09:14: the payment failed again.\nPlease help.",
    "Le 30 novembre, nous avons écrit :\nrien ne marche.",
    "My colleague Jan <jan@example.cz> wrote the ticket, not me.",
    "Our admin wrote: the server is fine.\nIs it?",
    "At 09:14 on 30.11.2026 I sent this to <billing@example.org>, no answer.",
    "See https://example.org/wrote:here for details.",
    "On 30.11.2026 at 10:00 we called the bank and they wrote:\n\nthe payment is pending.\n\nWhat now?",
    "Hello,\n\nOn 30/11/2026 I wrote:\nplease refund order 42.\n\nStill waiting.",
]


@pytest.mark.parametrize("reply", ATTRIBUTION_LOOK_ALIKES)
def test_sentences_that_start_like_an_attribution_are_kept(reply: str) -> None:
    assert new_part(reply) == reply


# --- separator lines and Outlook blocks ----------------------------------------------------------------

SEPARATED = {
    "underscores": "________________________________\nFrom: Jan Novák <jan@example.cz>\nSent: Monday",
    "nbsp-fr": "De\u00a0: Jan <jan@example.fr>\nEnvoyé\u00a0: lundi 30 novembre 2026\nÀ\u00a0: Support",
    "qq": "------------------ 原始邮件 ------------------\n发件人: Jan <jan@example.cn>",
    "stars": "*From:* Jan Novák <jan@example.cz>\n*Sent:* Monday, November 30, 2026 9:14 AM\n*To:* Support",
    "bold-md": "**From:** Jan Novák <jan@example.cz>\n**Date:** 30 Nov 2026\n**Subject:** Refund",
    "equals-original": "===== Original Message =====\nJan wrote the text below.",
    "stars-original": "***** Original Message *****",
    "underscore-original": "____ Original Message ____",
    "dashes-original": "-----Original Message-----",
    "spaced-original": "----- Original Message -----",
    "de-original": "----- Ursprüngliche Nachricht -----",
    "es-original": "-----Mensaje original-----",
    "bare-original": "Original Message",
    "original-with-colon": "--- Original message: ---",
    "equals-short": "====\n\nFrom: Jan <jan@example.cz>\nDate: 30.11.2026\nTo: support@example.org",
    "tildes": "~~~~~~~~~~~~~~~~~~\nFrom: Jan <jan@example.cz>\nDate: 30.11.2026",
    "unknown-words": "----- Özgün İleti -----\nKimden: Jan <jan@example.com.tr>\nTarih: 30.11.2026",
    "unknown-words-2": "=== Nachricht von Jan ===\nVon: Jan <jan@example.de>\nDatum: 30.11.2026",
    "flattened-original": "-----Original Message----- From: Jan <jan@example.cz> Sent: Monday To: Support",
    "flattened-block": "From: Jan <jan@example.cz> Sent: 30 Nov 2026 9:14 To: Support Subject: Refund",
    "flattened-de": "Von: Jan <jan@example.de> Gesendet: Montag, 30.11.2026 09:14 An: Support Betreff: Geld",
    "html-rule": "\u2014" * 20 + "\nFrom: Jan <jan@example.cz>\nSent: Monday",
}


@pytest.mark.parametrize("separator", SEPARATED.values(), ids=SEPARATED.keys())
def test_a_decorated_separator_cuts_what_follows(separator: str) -> None:
    assert new_part(f"{NEW}\n\n{separator}\n\nCould you confirm the refund?\n") == NEW


OUTLOOK = {
    "de": (
        "Von: Jan Novák <jan@example.de>",
        "Gesendet: Montag, 30. November 2026 09:14",
        "An: Support",
        "Betreff: Erstattung",
    ),
    "fr": (
        "De : Jan <jan@example.fr>",
        "Envoyé : lundi 30 novembre 2026 09:14",
        "À : Support",
        "Objet : Remboursement",
    ),
    "fr-envoye-le": (
        "De : Jan<mailto:jan@example.fr>",
        "Envoyé le :lundi 30 novembre 2026 09:14",
        "À : support@example.org",
        "Objet :Remboursement",
    ),
    "fr-sujet": (
        "Message du : 30/11/2026 09:14",
        "De : Jan <jan@example.fr>",
        "A : support@example.org",
        "Copie à : ",
        "Sujet : Remboursement",
    ),
    "es": (
        "De: Jan <jan@example.es>",
        "Enviado: lunes, 30 de noviembre de 2026 9:14",
        "Para: Soporte",
        "Asunto: Reembolso",
    ),
    "es-cc": (
        "De: Jan",
        "Enviado el: lunes, 30 de noviembre de 2026 9:14",
        "Para: Soporte",
        "CC: Ana",
        "Asunto: Reembolso",
    ),
    "pt": (
        "De: Jan <jan@example.pt>",
        "Enviada em: segunda-feira, 30 de novembro de 2026 09:14",
        "Para: Suporte",
        "Assunto: Reembolso",
    ),
    "it": (
        "Da: Jan <jan@example.it>",
        "Inviato: lunedì 30 novembre 2026 09:14",
        "A: Supporto",
        "Oggetto: Rimborso",
    ),
    "nl": (
        "Van: Jan <jan@example.nl>",
        "Verzonden: maandag 30 november 2026 09:14",
        "Aan: Support",
        "Onderwerp: Terugbetaling",
    ),
    "pl": (
        "Od: Jan <jan@example.pl>",
        "Wysłano: poniedziałek, 30 listopada 2026 09:14",
        "Do: Wsparcie",
        "Temat: Zwrot",
    ),
    "cs": (
        "Od: Jan <jan@example.cz>",
        "Odesláno: pondělí 30. listopadu 2026 9:14",
        "Komu: Podpora",
        "Předmět: Vrácení",
    ),
    "sv": (
        "Från: Jan <jan@example.se>",
        "Skickat: den 30 november 2026 09:14",
        "Till: Support",
        "Ämne: Återbetalning",
    ),
    "da": (
        "Fra: Jan <jan@example.dk>",
        "Sendt: 30. november 2026 09:14",
        "Til: Support",
        "Emne: Refusion",
    ),
    "fi": (
        "Lähettäjä: Jan <jan@example.fi>",
        "Lähetetty: maanantai 30. marraskuuta 2026 9.14",
        "Vastaanottaja: Tuki",
        "Aihe: Hyvitys",
    ),
    "hu": (
        "Feladó: Jan <jan@example.hu>",
        "Elküldve: 2026. november 30. 9:14",
        "Címzett: Support",
        "Tárgy: Visszatérítés",
    ),
    "tr": (
        "Kimden: Jan <jan@example.com.tr>",
        "Gönderildi: 30 Kasım 2026 Pazartesi 09:14",
        "Kime: Destek",
        "Konu: İade",
    ),
    "ro": (
        "De la: Jan <jan@example.ro>",
        "Trimis: luni, 30 noiembrie 2026 09:14",
        "Către: Suport",
        "Subiect: Rambursare",
    ),
    "ru": (
        "От: Ян <jan@example.ru>",
        "Отправлено: 30 ноября 2026 г. 9:14",
        "Кому: Поддержка",
        "Тема: Возврат",
    ),
    "wrapped-to": (
        "From: Jan <jan@example.cz>",
        "Sent: Monday, November 30, 2026 9:14 AM",
        "To: support@example.org; ana@example.org;",
        " bob@example.org",
        "Cc: Ana",
        "Subject: Refund",
    ),
    "wrapped-from": (
        "From: Jan Novák from the Accounts Department of Example",
        "<jan@example.cz>",
        "Sent: Monday, November 30, 2026 9:14 AM",
        "To: Support",
        "Subject: Refund",
    ),
    "label-alone": (
        "From:",
        "Jan Novák <jan@example.cz>",
        "Sent:",
        "Monday, November 30, 2026 9:14 AM",
        "To:",
        "support@example.org",
    ),
    "tabbed": (
        "From:\tJan Novák <jan@example.cz>",
        "Sent:\tMonday, November 30, 2026 9:14 AM",
        "To:\tsupport@example.org",
    ),
    "blank-between": (
        "From: Jan <jan@example.cz>",
        "",
        "Sent: Monday, November 30, 2026 9:14 AM",
        "",
        "To: Support",
        "",
        "Subject: Refund",
    ),
}


@pytest.mark.parametrize("block", OUTLOOK.values(), ids=OUTLOOK.keys())
def test_an_outlook_block_in_any_language_cuts_what_follows(block: tuple[str, ...]) -> None:
    header = "\n".join(block)
    result = trim_reply(f"{NEW}\n\n{header}\n\nCould you confirm the refund?\nJan\n")
    assert result.text == NEW
    assert block[0] in result.removed


FIELD_LOOK_ALIKES = [
    "From: my phone, a Pixel 7.\nTo: whoever reads this: it fails.",
    "From: my account to: the shop, date: yesterday.\nStill missing.",
    "I got this from: the billing page.\nSent: twice, as far as I can see.",
    "De: nada.\nGracias",
    "Subject: the refund\nDate: yesterday\nIt still did not arrive.",
    "Part one\n\n=====\n\nPart two",
    "=== Summary ===\nThe refund arrived.\n=== Next steps ===\nClose the ticket.",
    "De\u00a0: nous.\nÀ\u00a0: vous.\nMerci",
]


@pytest.mark.parametrize("reply", FIELD_LOOK_ALIKES)
def test_prose_with_field_words_and_lines_of_signs_is_kept(reply: str) -> None:
    assert new_part(reply) == reply


# --- forwarded mail inside a reply ---------------------------------------------------------------------

FORWARDS = [
    "---------- Forwarded message ---------\nFrom: Bank <noreply@bank.example>\nDate: Mon, Nov 30, 2026",
    "-------- Forwarded Message --------\nSubject: Receipt\nDate: Mon, 30 Nov 2026 09:14:00 +0100",
    "===== Forwarded message =====\nFrom: Bank <noreply@bank.example>",
    "***** Forwarded Message *****",
    "Begin forwarded message:\n\nFrom: Bank <noreply@bank.example>\nSubject: Receipt",
    "----- Weitergeleitete Nachricht -----\nVon: Bank <noreply@bank.example>\nDatum: 30.11.2026",
    "-------- Message transféré --------\nSujet : Reçu\nDate : Mon, 30 Nov 2026 09:14:00 +0100",
    "---------- Mensaje reenviado ---------\nDe: Bank <noreply@bank.example>\nFecha: 30 nov 2026",
    "---------- Messaggio inoltrato ----------\nDa: Bank <noreply@bank.example>\nData: 30 nov 2026",
    "Forwarded message:\nFrom: Bank <noreply@bank.example>",
    "Inicio del mensaje reenviado:\n\nDe: Bank <noreply@bank.example>",
    "Início da mensagem encaminhada:\n\nDe: Bank <noreply@bank.example>",
    "Start på videresendt besked:\n\nFra: Bank <noreply@bank.example>",
    "Začátek přeposlané zprávy:\n\nOd: Bank <noreply@bank.example>",
    "________________________________\nFrom: Bank <noreply@bank.example>\nSent: Monday, November 30, 2026",
]


@pytest.mark.parametrize("forward", FORWARDS)
def test_what_was_written_above_a_forwarded_message_is_the_new_part(forward: str) -> None:
    reply = f"{NEW}\n\n{forward}\n\nYour payment of 40 EUR failed.\n\n-- \nBank\n"
    assert new_part(reply) == NEW


def test_a_forward_under_an_answer_and_a_quote_leaves_only_the_answer() -> None:
    reply = (
        f"{NEW}\n\nOn Mon, Nov 30, 2026 at 9:14 AM Jan <jan@example.cz> wrote:\n> Please see below.\n>\n"
        "> ---------- Forwarded message ---------\n> From: Bank <noreply@bank.example>\n> Payment failed.\n"
    )
    assert new_part(reply) == NEW


# --- signatures and client boilerplate in other languages ----------------------------------------------

BOILERPLATE = [
    "Von meinem iPhone gesendet",
    "Von meinem Samsung Galaxy Smartphone gesendet.",
    "Envoyé de mon iPhone",
    "Envoyé de mon appareil Galaxy",
    "Enviado desde mi iPhone",
    "Enviado desde mi smartphone Samsung Galaxy.",
    "Inviato da iPhone",
    "Inviato dal mio dispositivo Galaxy",
    "Verzonden vanaf mijn iPhone",
    "Verstuurd vanaf mijn iPad",
    "Skickat från min iPhone",
    "Sendt fra min iPhone",
    "Wysłane z iPhone'a",
    "Wysłane z mojego smartfona Galaxy",
    "Odesláno z iPhonu",
    "Lähetetty iPhonesta",
    "Отправлено с iPhone",
    "Отправлено из мобильной Почты Mail.ru",
    "Надіслано з iPhone",
    "iPhone'umdan gönderildi",
    "Get Outlook for iOS",
    "Get Outlook for Android<https://aka.ms/ghei36>",
    "Sent from Mail for Windows",
    "Sent from Mail<https://go.microsoft.com/fwlink/?LinkId=550986> for Windows 10",
    "Sent from my Galaxy",
    "Sent from my Samsung Galaxy S23 Ultra 5G",
    "Sent from my Verizon, Samsung Galaxy smartphone",
    "Sent from Yahoo Mail on Android",
    "Sent from Yahoo Mail for iPhone",
    "Sent from my Huawei phone",
    "Sent from Proton Mail mobile",
    "Sent from my iPhone. Please excuse typos.",
    "Sent from my phone, please excuse the brevity",
    "Sent from my Android device, sorry for any typos.",
    "Envoyé de mon iPhone, désolé pour les fautes",
    "Az iPhone-omról küldve",
    "Trimis de pe iPhone-ul meu",
    "Poslano s mog iPhonea",
    "Στάλθηκε από το iPhone μου",
    "Dikirim dari iPhone saya",
    "Dihantar dari iPhone saya",
    "أُرسلت من الـ iPhone الخاص بي",
    "Được gửi từ iPhone của tôi",
    "Enviat des del meu iPhone",
    "Odoslané z iPhonu",
    "Išsiųsta iš iPhone",
    "Изпратено от моя iPhone",
    "Get BlueMail for Android",
    "Get Outlook for iOS\n<https://aka.ms/o0ukef>",
    "Sent from my BlackBerry® smartphone",
    "Sent from Outlook for iOS",
    "Envoyé à partir de Outlook pour Android",
    "Obtenir Outlook pour iOS",
    "Scarica Outlook per Android",
    "Outlook voor iOS downloaden",
    "Pobierz aplikację Outlook dla systemu Android",
]


@pytest.mark.parametrize("line", BOILERPLATE)
def test_client_boilerplate_at_the_end_is_cut_in_any_language(line: str) -> None:
    result = trim_reply(f"{NEW}\n\n{line}\n")
    assert result.text == NEW
    assert line.split()[0] in result.removed


@pytest.mark.parametrize("line", BOILERPLATE[:6])
def test_boilerplate_between_the_answer_and_the_history_is_cut(line: str) -> None:
    reply = f"{NEW}\n\n{line}\n\nAm 30.11.2026 um 09:14 schrieb Jan <jan@example.de>:\n\n> Hallo\n"
    assert new_part(reply) == NEW


@pytest.mark.parametrize("delimiter", ["-- ", "--", "-- \u00a0"])
def test_a_signature_after_the_delimiter_goes_with_its_quote(delimiter: str) -> None:
    signature = "Maria Lima\nSupport Lead, Example"
    reply = f"{NEW}\n{delimiter}\n{signature}\n\nLe 30/11/2026, Jan a écrit :\n> Bonjour\n"
    assert new_part(reply) == NEW


BOILERPLATE_LOOK_ALIKES = [
    "The photo was sent from my iPhone, so it may be small.\nThanks",
    "I tried again.\nSent from my iPhone, the upload fails every time.",
    "Sent from my iPhone to your address at 09:14, still no answer.",
    "Steps:\n-- open the app\n-- pay\n\nit fails here.\nMaria",
    "It crashed -- twice --\nagain today.",
    "First the card.\n—\nThen the bank transfer, which failed too.\nMaria",
]


@pytest.mark.parametrize("reply", BOILERPLATE_LOOK_ALIKES)
def test_prose_that_mentions_a_device_or_uses_dashes_is_kept(reply: str) -> None:
    assert new_part(reply) == reply


# --- quotes a client re-wrapped ------------------------------------------------------------------------

REWRAPPED = (
    "Il 30/11/2026 09:14, Jan Novák <jan@example.it>\nha scritto:\n"
    "> Buongiorno, abbiamo ricevuto la sua richiesta di rimborso per l'ordine numero\n"
    "4711 del mese scorso.\n"
    ">\n"
    "> Per completare la pratica ci serve una copia della fattura e il numero del co\n"
    "nto corrente.\n"
    ">\n"
)


def test_the_ends_of_long_quoted_lines_a_client_rewrapped_stay_in_the_quote() -> None:
    fragment = REWRAPPED.replace("4711 del mese scorso.", "entro la fine del mese.")
    assert new_part(f"{NEW}\n\n{fragment}\n-- \nMaria\n") == NEW


def test_an_inline_answer_under_a_long_quoted_line_is_kept() -> None:
    quote = "> Could you please tell us which version of the app you are using right now?"
    reply = f"Hi Jan,\n\n{quote}\nVersion 2.3 on Android.\n> And the phone?\nPixel 7.\n\nMaria"
    assert new_part(reply) == reply


def test_a_lower_case_answer_under_a_short_quoted_line_is_kept() -> None:
    reply = "Hi Jan,\n\n> Which app?\nthe web one.\n> And the browser?\nfirefox.\n\nMaria"
    assert new_part(reply) == reply


# --- inline answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [DATE_FIRST["cz-dotted"], LANGUAGES["fr"], LANGUAGES["zh"]])
def test_inline_answers_lose_their_header_in_any_language(header: str) -> None:
    answers = "> Did the refund arrive?\n\nYes, this morning.\n\n> And the invoice?\n\nNot yet.\n\nMaria"
    assert new_part(f"Hi Jan,\n\n{header}\n{answers}") == f"Hi Jan,\n\n{answers}"


# --- other help desks' reply markers -------------------------------------------------------------------

DESK_MARKERS = [
    "##- Please type your reply above this line -##",
    "--- Reply above this line ---",
    "> Please write your answer ABOVE THIS LINE",
    "-- Bitte oberhalb dieser Zeile antworten --",
    "Répondez au-dessus de cette ligne",
]


@pytest.mark.parametrize("marker", DESK_MARKERS)
def test_another_help_desks_reply_marker_cuts_what_follows(marker: str) -> None:
    assert new_part(f"{NEW}\n\n{marker}\n\nYour request 4711 was updated.\n") == NEW


def test_a_proton_mail_quote_container_is_cut_in_any_language() -> None:
    html = (
        "<div>Merci, le remboursement est arrivé.</div>"
        '<div class="protonmail_quote">------- Original Message -------<br>'
        "Le lundi 30 novembre 2026, Jan a écrit :<blockquote>Bonjour</blockquote></div>"
    )
    assert trim_reply("", html=html).text == "Merci, le remboursement est arrivé."
