"""The wording that gives automated mail away: bounce subjects and MTA phrases, auto-reply subjects.

Shared by the classification rules and the bounce reader, so both agree on what a bounce says.
Every pattern is anchored or specific on purpose: a person who writes about a bounce or an
absence must still get a ticket.
"""

from __future__ import annotations

import re

# How much of a body is searched for an MTA's wording: bounce notices say who they are at the top,
# and a long body is a person's, not a daemon's.
BODY_WINDOW = 4000

# Subjects that MTAs give their bounces and delay warnings, anchored at the start so that a
# person's "Fwd: Undelivered Mail Returned to Sender" or "Re: Undeliverable: …" does not match.
_BOUNCE_SUBJECT = re.compile(
    r"""^\s*(?:
        undeliver(?:able|ed)\b                        # Exchange "Undeliverable:", Postfix "Undelivered Mail…"
      | (?:mail\s+)?delivery\s+status\s+notification  # Gmail, Exchange, Sendmail DSN subjects
      | mail\s+delivery\s+(?:failed|failure)   # Exim "Mail delivery failed: returning message…"
      | delivery\s+(?:failure|has\s+failed|notification:\s*delivery\s+has\s+failed|delayed|failed)
      | failure\s+notice\b                            # qmail, Yahoo
      | returned\s+mail\b                             # Sendmail "Returned mail: see transcript…"
      | mail\s+system\s+error\b                       # "Mail System Error - Returned Mail"
      | warning:\s+could\s+not\s+send\s+message       # Sendmail delay warning
      | delayed\s+mail\b                              # Postfix delay warning
      | warning:\s+message\s+\S+\s+delayed             # Exim delay warning
      | (?:mail|message)\s+delivery\s+(?:delayed|deferred) | message\s+status\s*-\s*undeliverable
      | (?:message|mail|delivery)\s+(?:delayed|deferred)\b | delay(?:ed)?\s+(?:notification|warning)\b
      | (?:message|mail)\s+(?:not\s+delivered|could\s+not\s+be\s+delivered|delivery\s+failure)
      | non-?deliver(?:y|able)\b
      | unzustellbar\b                                # Exchange, German
      | non\s+remis\b                                 # Exchange, French
      | no\s+se\s+puede\s+entregar\b                  # Exchange, Spanish
      | non\s+recapitabile\b                          # Exchange, Italian
      | onbestelbaar\b                                # Exchange, Dutch
      | não\s+é\s+possível\s+entregar\b               # Exchange, Portuguese
      | olevererbart\b                                # Exchange, Swedish
      | (?:permanent|fatal|temporary)\s+delivery\s+(?:failure|error)   # MDaemon and gateways
      | delivery\s+(?:report|notification)\s*[:(-]?\s*(?:failure|failed|delay|undeliverable)   # Lotus Notes
      | (?:failed|failure\s+of)\s+(?:mail|delivery)\b   # NTMail "Failed mail: …"
      | bounced\s+mail\b | mail\s+returned\b | returned\s+message\b
      | nicht\s+zustellbar\b | unzustellbare?\b | zustellungsfehler\b | zustellung\s+fehlgeschlagen
      | [üu]bermittlungsstatusbenachrichtigung        # German DSN subject
      | (?:notification|avis|rapport)\s+de\s+non[-\s]remise
      | [ée]chec\s+de\s+(?:la\s+)?(?:remise|distribution)
      | notification\s+d'[ée]tat\s+de\s+(?:la\s+)?(?:remise|distribution)
      | no\s+se\s+(?:pudo|puede|ha\s+podido)\s+entregar | imposible\s+entregar | error\s+en\s+la\s+entrega
      | notificaci[óo]n\s+de\s+estado\s+de\s+(?:la\s+)?entrega | mensaje\s+no\s+entregado
      | impossibile\s+recapitare | mancato\s+recapito | recapito\s+non\s+riuscito
      | notifica\s+(?:dello\s+)?stato\s+(?:di\s+)?(?:consegna|recapito) | messaggio\s+non\s+recapitato
      | n[ãa]o\s+(?:foi\s+)?poss[íi]vel\s+entregar | falha\s+(?:na|de)\s+entrega
      | mensagem\s+n[ãa]o\s+entregue
      | notifica[çc][ãa]o\s+de\s+status\s+de\s+entrega
    )""",
    re.IGNORECASE | re.VERBOSE,
)

# Looser bounce words, for mail whose sender is already a daemon or the null sender.
_BOUNCE_WORDS = re.compile(
    r"undeliver|undelivered|returned\s+mail|returned\s+to\s+sender|delivery\s+status|"
    r"delivery\s+(?:failure|failed|has\s+failed|delayed|problem)|failure\s+notice|"
    r"could\s+not\s+(?:be\s+)?deliver|couldn'?t\s+be\s+delivered|wasn'?t\s+delivered|not\s+delivered|"
    r"non-?delivery|could\s+not\s+send\s+message|delayed\s+mail|mail\s+system\s+error|"
    r"address\s+not\s+found|user\s+unknown|mailbox\s+(?:full|unavailable)|unzustellbar|non\s+remis|"
    # delay warnings describe themselves so
    r"not\s+yet\s+been\s+delivered|still\s+being\s+retried|will\s+(?:continue|keep)\s+(?:trying|to\s+try)|"
    r"(?:has|have)\s+been\s+delayed|delivery\s+(?:is\s+)?deferred",
    re.IGNORECASE,
)

# The same pattern for the window folded to lower case (see bounce_words): it is all lower case.
_BOUNCE_WORDS_FOLDED = re.compile(_BOUNCE_WORDS.pattern)

# A word each branch of _BOUNCE_WORDS contains whatever it matched (casefolded): a window with none
# of them cannot match (see _may_contain). Kept beside the pattern; a unit test checks each branch.
_BOUNCE_WORD_LITERALS = (
    "deliver",  # undeliver(ed), delivery …, (could not|couldn't|wasn't|not) … deliver(ed), non-delivery
    "returned",  # returned mail, returned to sender
    "notice",  # failure notice
    "message",  # could not send message
    "delayed",  # delayed mail, has/have been delayed
    "error",  # mail system error
    "found",  # address not found
    "unknown",  # user unknown
    "mailbox",  # mailbox full/unavailable
    "unzustellbar",
    "remis",  # non remis
    "retried",  # still being retried
    "try",  # will continue/keep trying / to try
)

# What each MTA writes at the top of a non-standard bounce (or next to its DSN), with its name.
_MTA_SIGNATURES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("Postfix", r"This is the mail system at host"),
        ("Postfix", r"I'm sorry to have to inform you that your message could not\s+be delivered"),
        ("qmail", r"Hi\.\s+This is the qmail-send program"),
        ("Exim", r"This message was created automatically by mail delivery software"),
        ("Exim", r"A message that you sent could not be delivered to one or more of\s+its\s+recipients"),
        ("Exchange", r"Delivery has failed to these recipients or groups"),
        ("Exchange", r"Your message did not reach some or all of the intended recipients"),
        ("Exchange", r"The following recipient\(s\) cannot be reached"),
        ("Office 365", r"Your message to \S+ couldn'?t be delivered"),
        ("Office 365", r"Your message couldn'?t be delivered"),
        ("Gmail", r"\bAddress not found\b[\s*]*Your message wasn'?t delivered to"),
        ("Gmail", r"Your message wasn'?t delivered to \S+ because"),
        ("Gmail", r"Delivery to the following recipients? failed permanently"),
        ("Gmail", r"There was a (?:temporary )?problem delivering your message to"),
        ("Sendmail", r"-+\s*The following addresses had permanent fatal errors\s*-+"),
        ("Sendmail", r"-+\s*Transcript of session follows\s*-+"),
        ("Sendmail", r"THIS IS A WARNING (?:MESSAGE )?ONLY"),
        ("Yahoo", r"Sorry, we were unable to deliver your message to the following address"),
        ("Lotus Notes", r"Your message\s+Subject:.*\s+was not delivered to"),
    )
)
# A piece of each signature above that any match of it contains (casefolded; see _may_contain).
_MTA_SIGNATURE_LITERALS = (
    "this is the mail system at host",
    "inform you that your message could not",
    "this is the qmail-send program",
    "created automatically by mail delivery software",
    "could not be delivered to one or more of",
    "delivery has failed to these recipients",
    "did not reach some or all of the intended",
    "cannot be reached",
    "t be delivered",  # Office 365: couldn't / couldnt be delivered
    "address not found",
    "t delivered to",  # Gmail: wasn't / wasnt delivered to
    "failed permanently",
    "problem delivering your message to",
    "permanent fatal errors",
    "transcript of session follows",
    "this is a warning",
    "unable to deliver your message to the following address",
    "was not delivered to",
)

# Headings after which a notice lists its failed recipients, one at the start of each line, in
# the wording of MTAs, gateways and Exchange/Lotus in the usual languages. The bounce reader reads
# the addresses under them; the failure-notice rule takes any of them as a notice's own words.
RECIPIENT_LIST_HEADING = re.compile(
    r"""following\s+address(?:\(es\)|es)?\s+failed
      | failed\s+permanently:
      | Delivery\s+has\s+failed\s+to\s+these\s+recipients\s+or\s+groups
      | following\s+recipient\(s\)\s+cannot\s+be\s+reached
      | following\s+recipients?(?:\(s\))?\s+(?:failed|could\s+not\s+be\s+reached)
      | to\s+the\s+following\s+recipients?(?:\(s\))?\s+(?:failed|has\s+failed|was\s+unsuccessful)
      | could\s+not\s+be\s+delivered\s+to\s+the\s+following\s+(?:recipients?|addresses|address)
      | (?:unable|not\s+able)\s+to\s+deliver\s+(?:your|the)\s+message\s+to\s+the\s+following
      | did\s+not\s+reach\s+the\s+following\s+recipient                # old Exchange
      | did\s+not\s+receive\s+a\s+copy\s+of\s+your\s+message           # MDaemon
      | -+\s*Failed\s+Recipients\s*-+ | ^\s*Failed\s+Recipients?:       # gateways
      | had\s+permanent\s+fatal\s+errors
      | address(?:\(es\)|es)?\s+concerned                    # Exim delay warning
      | has\s+not\s+yet\s+been\s+delivered\s+is:
      | Die\s+(?:Zustellung|[ÜU]bermittlung)\s+an\s+(?:die\s+)?folgenden?\s+Empf[äa]nger\S*  # German
      | folgenden?\s+Empf[äa]nger\S*\s+nicht\s+erreicht | wurde\s+nicht\s+zugestellt\s+an
      | La\s+remise\s+aux\s+destinataires                                 # Exchange, French
      | n'a\s+pas\s+atteint\s+les\s+destinataires\s+suivants | n'a\s+pas\s+[ée]t[ée]\s+remis\s+[àa]
      | Error\s+en\s+la\s+entrega\s+a                                     # Exchange, Spanish
      | no\s+lleg[óo]\s+a\s+los\s+siguientes\s+destinatarios | no\s+se\s+(?:ha\s+)?entreg[óo]\s+a
      | Recapito\s+non\s+riuscito\s+(?:ai|per\s+i)\s+seguenti                # Exchange, Italian
      | non\s+ha\s+raggiunto\s+i\s+seguenti\s+destinatari | non\s+[èe]\s+stato\s+(?:recapitato|consegnato)\s+a
      | (?:Falha\s+na\s+entrega|A\s+entrega\s+falhou)\s+(?:a|para)\s+(?:estes|os\s+seguintes)   # Portuguese
      | n[ãa]o\s+atingiu\s+os\s+seguintes\s+destinat[áa]rios | n[ãa]o\s+foi\s+entregue\s+a
      | bezorging\s+is\s+mislukt\s+voor                                   # Exchange, Dutch
    """,
    re.IGNORECASE | re.VERBOSE | re.MULTILINE,
)

# Sentences only a delivery-failure notice writes, in the usual languages (without a list).
_FAILURE_STATEMENTS = re.compile(
    r"""your\s+message\s+(?:could\s+not|cannot|couldn'?t)\s+be\s+delivered
      | (?:message|mail)\s+(?:was|has)\s+not\s+been\s+delivered | was\s+not\s+delivered\s+to
      | (?:PERMANENT\s+)?fatal\s+delivery\s+errors
      | message\s+(?:was\s+)?(?:undeliverable|returned\s+as\s+undeliverable)
      | could\s+not\s+deliver\s+(?:your|the)\s+message | unable\s+to\s+deliver\s+(?:your|the)\s+message
      | your\s+message\s+did\s+not\s+reach
      | konnte\s+nicht\s+zugestellt\s+werden | ist\s+unzustellbar | Zustellung\s+(?:ist\s+)?fehlgeschlagen
      | hat\s+einige\s+oder\s+alle\s+Empf[äa]nger\s+nicht\s+erreicht
      | n'a\s+pas\s+pu\s+[êe]tre\s+(?:remis|distribu[ée]) | n'est\s+pas\s+parvenu
      | no\s+(?:se\s+)?(?:pudo|ha\s+podido)\s+(?:ser\s+)?entregar | no\s+lleg[óo]\s+a
      | non\s+(?:[èe]\s+stato\s+possibile\s+recapitare|pu[òo]\s+essere\s+recapitato)
      | impossibile\s+recapitare
      | n[ãa]o\s+p[ôo]de\s+ser\s+entregue | n[ãa]o\s+foi\s+poss[íi]vel\s+entregar
      | kon\s+niet\s+worden\s+(?:bezorgd|afgeleverd)
    """,
    re.IGNORECASE | re.VERBOSE,
)


# Names that mail systems sign their notices with, in a From display name or local part: "Mail
# Delivery System", "Mail Delivery Subsystem", MDaemon, "E-Mail Gateway", "SMTP Service" …
_MAIL_SYSTEM_NAME = re.compile(
    r"""mail[\s._-]*delivery | delivery[\s._-]*(?:system|subsystem|service|notification)
      | \bmdaemon\b | mail[\s._-]*(?:system|administrator|router|gateway|service|daemon)\b
      | (?:e-?mail|smtp)[\s._-]*(?:gateway|service|server|relay)\b | \bpostoffice\b
    """,
    re.IGNORECASE | re.VERBOSE,
)


def mail_system_name(display_name: str, address: str) -> str | None:
    """The mail-system name a sender signs with (display name or local part), or None."""
    local = address.rpartition("@")[0]
    match = _MAIL_SYSTEM_NAME.search(display_name) or _MAIL_SYSTEM_NAME.search(local)
    return match.group(0) if match else None


def failure_statement(text: str) -> str | None:
    """A delivery-failure notice's own sentence or recipient-list heading at the top of a body, or None."""
    window = text[:BODY_WINDOW]
    match = RECIPIENT_LIST_HEADING.search(window) or _FAILURE_STATEMENTS.search(window)
    return " ".join(match.group(0).split()) if match else None


# Out-of-office and automatic-reply wording, in the usual languages and clients.
_AUTO_REPLY_WORDS = r"""(?:
        out\s+of\s+(?:the\s+)?office(?:\s+auto[-\s]?reply)? | away\s+from\s+(?:the\s+)?office
      | automatic\s+reply\b | auto(?:matic)?[-\s]?(?:reply|response|responder)\b | autoreply\b
      | on\s+vacation\b | vacation\s+(?:reply|message|notice|response)\b | absence\s+notice\b
      | abwesenheitsnotiz\b | abwesenheitsnachricht\b | abwesenheit\b | automatische\s+antwort\b
      | abwesend\b | au(?:ss|ß)er\s+haus\b | nicht\s+im\s+b[üu]ro\b
      | r[ée]ponse\s+automatique\b | absente?\s+du\s+bureau\b | absence\s+du\s+bureau\b
      | message\s+d'absence\b | r[ée]ponse\s+d'absence\b
      | respuesta\s+autom[áa]tica\b | fuera\s+de\s+(?:la\s+)?oficina\b | resposta\s+autom[àáa]tica\b
      | risposta\s+automatica\b | fuori\s+(?:sede|ufficio)\b | fora\s+do\s+escrit[óo]rio\b
      | automatisch\s+antwoord\b | afwezig(?:heid)?\b | niet\s+aanwezig\b | buiten\s+kantoor\b
      | autosvar\b | automatiskt?\s+svar\b | fr[åa]nvaro(?:meddelande)?\b | frav[æa]r(?:ende)?\b
      | ikke\s+til\s+stede\b | ikkje\s+til\s+stades\b
      | automaattinen\s+vastaus\b | poissa(?:\s+toimistolta)?\b | lomalla\b
      | autoodpowied[źz]\b | odpowied[źz]\s+automatyczna\b | automatyczna\s+odpowied[źz]\b
      | nieobecno[śs][ćc]\b
      | automatick[áa]\s+odpov[ěe][ďd]\b | mimo\s+kancel[áa][řr]\b | nep[řr][íi]tomnost\b
      | automatikus\s+v[áa]lasz\b | h[áa]zon\s+k[íi]v[üu]l\b | r[ăa]spuns\s+automat\b
      | automaatne\s+vastus\b | samodejni\s+odgovor\b | automatski\s+odgovor\b
      | otomatik\s+yan[ıi]t\b | ofis\s+d[ıi][şs][ıi]nda\b
      | αυτόματη\s+απάντηση | εκτός\s+γραφείου
      | автоматический\s+ответ | автоответ | автовідповідь | автоматична\s+відповідь
      | автоматичен\s+отговор | нет\s+на\s+месте | вне\s+офиса
      | תשובה\s+אוטומטית | رد\s+تلقائي | trả\s+lời\s+tự\s+động | balasan\s+otomatis
      | 自动回复 | 自動回覆 | 自動回复 | 自动答复 | 自動應答 | 自動応答 | 自動返信 | 不在(?:通知|のお知らせ)?
      | 자동\s*회신 | 자동\s*응답 | 부재\s*중
    )"""
# Any subject that starts with that wording, for mail that also carries an automated-mail header:
# with one, a subject such as "Out of office until Monday" is evidence enough.
# Lotus Notes writes "AUTO: Ana is out of the office".
_AUTO_REPLY_SUBJECT = re.compile(rf"^\s*(?:{_AUTO_REPLY_WORDS}|auto\s*:)", re.IGNORECASE | re.VERBOSE)
# The shapes auto-responders give their subjects, which a person writing does not: the wording and
# a colon before the original subject ("Automatic reply: Card declined", "AUTO: Ana is out"), the
# wording bracketed at the start ("[Out of Office] Card declined"), or the wording alone
# ("Abwesenheitsnotiz", "Out of Office AutoReply"). "Out of office next week, who takes my ticket?"
# has none of them: a person wrote it, and it gets a ticket.
_AUTO_REPLY_SUBJECT_ALONE = re.compile(
    rf"""^\s*(?:
        {_AUTO_REPLY_WORDS}\s*[:：]
      | [\[(]\s*{_AUTO_REPLY_WORDS}\s*[\])]
      | {_AUTO_REPLY_WORDS}[\s.!]*$
      | (?-i:AUTO)\s*:                             # Lotus Notes, in capitals ("Auto: …" may be a car)
    )""",
    re.IGNORECASE | re.VERBOSE,
)


def bounce_subject(subject: str) -> str | None:
    """The bounce wording a subject starts with, or None."""
    match = _BOUNCE_SUBJECT.match(subject)
    return match.group(0).strip() if match else None


def bounce_words(text: str) -> str | None:
    """Any bounce word in a subject or the top of a body, or None (for daemon and null senders only).

    Searched in the window folded as `_may_contain` folds it, with the same pattern taken case by
    case: every character of the pattern is a lower-case ASCII letter, white space or punctuation,
    and a character of the window matches one of them ignoring case exactly when its folded form
    equals it. Folding keeps each character one character, so the match's place in the window is
    its place in the folded window. The case-insensitive search of the alternation tried each
    branch at each character: ~1 ms for a 1 KB body that holds one of the words ("error"), a tenth
    of that folded (tests/unit/test_signs_prefilter.py compares both ways).
    """
    window = text[:BODY_WINDOW]
    folded = _folded(window)
    if not any(literal in folded for literal in _BOUNCE_WORD_LITERALS):
        return None
    match = _BOUNCE_WORDS_FOLDED.search(folded)
    return window[match.start() : match.end()] if match else None


def mta_signature(text: str) -> str | None:
    """Which MTA's bounce wording the top of a body carries, e.g. "Postfix", or None."""
    window = text[:BODY_WINDOW]
    if not _may_contain(window, _MTA_SIGNATURE_LITERALS):
        return None
    for name, pattern in _MTA_SIGNATURES:
        if pattern.search(window):
            return name
    return None


def _may_contain(window: str, literals: tuple[str, ...]) -> bool:
    """False when no match is possible: the window holds none of the words every match contains.

    Every mail is asked for bounce wording (library_bounce's cheap sign), and a case-insensitive
    search of a long alternation tries each branch at each character: ~0.3–0.6 ms for a 1 KB body
    here, against a few µs for these substring tests. The window is lowered the way a
    case-insensitive `re` match compares, character by character: the four non-ASCII characters it
    takes for an ASCII letter become that letter first (str.casefold would not do: it turns "İ"
    into two characters), so the test never says no where the pattern would match
    (tests/unit/test_signs_prefilter.py)."""
    folded = _folded(window)
    return any(literal in folded for literal in literals)


def _folded(window: str) -> str:
    """`window` lowered as a case-insensitive `re` match compares, one character for one (see
    `_may_contain`); ASCII text has none of the four equivalents to replace first."""
    return window.lower() if window.isascii() else window.translate(_ASCII_EQUIVALENTS).lower()


# The characters outside ASCII that `re.IGNORECASE` matches to an ASCII letter (the whole list, for
# Python 3.11's tables; a unit test scans every code point): dotted and dotless I, long s, Kelvin.
_ASCII_EQUIVALENTS = {0x130: "i", 0x131: "i", 0x17F: "s", 0x212A: "k"}


def auto_reply_subject(subject: str) -> str | None:
    """The out-of-office / automatic-reply wording a subject starts with, or None."""
    match = _AUTO_REPLY_SUBJECT.match(subject)
    return match.group(0).strip() if match else None


def auto_reply_subject_alone(subject: str) -> str | None:
    """The auto-responder's subject shape ("Automatic reply: …", "[Out of Office] …"), or None."""
    match = _AUTO_REPLY_SUBJECT_ALONE.match(subject)
    return match.group(0).strip() if match else None


def bounce_like(subject: str, text: str) -> str | None:
    """Why a subject or body looks like a bounce (loose test), or None."""
    if signature := mta_signature(text):
        return f"{signature} bounce wording in the body"
    if words := bounce_words(subject):
        return f"subject says {words!r}"
    if words := bounce_words(text):
        return f"body says {words!r}"
    return None
