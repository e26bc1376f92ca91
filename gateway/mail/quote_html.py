"""Which text reply trimming reads (gateway/mail/quotes.py): the text part, or the HTML part rendered
to text with the clients' quote containers and attribution lines marked.

HTML is used only when the text part is empty or merely the HTML rendered to text: the clients' quote
containers (Outlook ``divRplyFwdMsg``, Yahoo ``yahoo_quoted`` …) and attribution lines (Thunderbird
``moz-cite-prefix``, Gmail ``gmail_attr``), whatever their language, are marked in the tree; the text
rendered by ``html_to_text`` (``> `` for blockquotes, a line of underscores for ``<hr>``) then goes
through the same rules as a text part.
"""

from __future__ import annotations

import re

from lxml import etree
from lxml.html import Element, HtmlElement, document_fromstring, tostring

from gateway.mail.html_text import depth_exceeds, html_to_text
from gateway.mail.quote_lines import ATTRIBUTION_END, ATTRIBUTION_START, CUT, UNMARK


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


def choose_source(text: str, html: str | None) -> str:
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
    if useless or _squash(text) == _squash(marked.translate(UNMARK)):
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
            element.addprevious(_marker_div(CUT))
    for element in tree.xpath(_ATTRIBUTION_XPATH):
        element.text = ATTRIBUTION_START + (element.text or "")
        if len(element):
            element[-1].tail = (element[-1].tail or "") + ATTRIBUTION_END
        else:
            element.text += ATTRIBUTION_END
    return html_to_text(tostring(tree, encoding="unicode"))


def _marker_div(mark: str) -> HtmlElement:
    div = Element("div")
    div.text = mark
    return div
