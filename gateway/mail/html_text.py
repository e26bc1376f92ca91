"""Turn the HTML body of a mail into readable plain text for tickets and quote detection.

Converter chosen: inscriptis (a layout-aware HTML renderer on lxml), measured against html2text and
nh3 + stdlib on talon's HTML replies (Gmail, Outlook 2003-2010, Thunderbird, Yandex...) and the HTML
parts of the mail corpus:

- html2text writes Markdown: ``[text](url)`` links, ``* * *`` for ``<hr>``, ``\\-``/``\\*`` escapes,
  ``**``/``#`` unless every option is turned off, and two trailing spaces on every ``<br>`` line. That is
  noise in a ticket and trips the quote and signature rules that read the text.
- nh3 only sanitises: block layout, lists, tables and whitespace collapsing would be ours to write
  and keep correct (a few hundred lines re-doing what a renderer does).
- inscriptis renders blocks, ``<br>``, lists (``* item``), tables (cells side by side) and entities
  the way a browser lays them out, without markup, and drops ``<script>``/``<style>``/``display:none``.
  Its defaults indent nested ``<div>``/``<blockquote>`` and inline ``padding-left``; we use its strict
  CSS profile without indentation, so that "On ... wrote:" and Outlook's "From:" blocks start their
  lines, and instead mark ``<blockquote>`` text with ``> `` (found through inscriptis' annotations),
  as mail clients do when they turn an HTML reply into plain text; the quote stage keys on that.
  Links keep their text, followed by `` <url>`` when the URL says something the text does not;
  ``<hr>`` becomes a line of underscores, the separator Outlook writes in plain text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from inscriptis.css_profiles import STRICT_CSS_PROFILE
from inscriptis.html_engine import Inscriptis
from inscriptis.html_properties import Display
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_element import HtmlElement
from lxml import etree
from lxml.html import document_fromstring

_QUOTE_LABEL = "quote"

# Strict (browser-default) layout, less the left indentation, which carries no meaning in a ticket.
_CSS = {
    **STRICT_CSS_PROFILE,
    "ul": HtmlElement(display=Display.block, padding_inline=2),
    "ol": HtmlElement(display=Display.block, padding_inline=2),
    "blockquote": HtmlElement(display=Display.block),
}

# Characters lxml refuses ("All strings must be XML compatible"): C0 controls but tab and newlines,
# and lone surrogates that a broken charset decode can leave behind.
_UNPARSEABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
# Inline styles that only indent; inscriptis turns them into leading spaces.
_INDENT_STYLE = re.compile(r"(?:padding|margin)(?:-left|-inline-start)?\s*:[^;]*;?", re.IGNORECASE)
_BLANK_RUN = re.compile(r"\n{3,}")
_RULE = "_" * 32
# Deeper than this, inscriptis' recursive walk may exhaust the stack; such HTML is never a real mail.
_MAX_DEPTH = 200


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML document or fragment; never raises on malformed HTML."""
    cleaned = _XML_DECLARATION.sub("", _UNPARSEABLE.sub("", html), count=1)
    if not cleaned.strip():
        return ""
    try:
        tree = document_fromstring(cleaned)
    except (etree.ParserError, ValueError):
        # lxml gives up on documents with no element at all (only a comment, say).
        return _tidy(_crude_text(cleaned))
    if depth_exceeds(tree, _MAX_DEPTH):
        return _tidy(_crude_text(cleaned))
    _prepare(tree)
    config = ParserConfig(css=_CSS, display_links=False, annotation_rules={"blockquote": [_QUOTE_LABEL]})
    engine = Inscriptis(tree, config)
    text = engine.get_text()
    quotes = [(a.start, a.end) for a in engine.get_annotations() if a.metadata == _QUOTE_LABEL]
    return _tidy(_mark_quotes(text, quotes))


def depth_exceeds(tree: etree._Element, limit: int) -> bool:
    """Whether the element tree nests deeper than `limit`; hostile HTML must not exhaust the stack."""
    # Iterative, so the check itself cannot overflow the stack.
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in node)
    return False


def _prepare(tree: etree._Element) -> None:
    """Drop indenting styles, draw rules, and append the URL to links whose text does not show it."""
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        style = element.get("style")
        if style:
            element.set("style", _INDENT_STYLE.sub("", style))
        if element.tag == "hr":
            # Hotmail and others separate the reply from the quoted mail with <hr>; Outlook's own
            # plain text draws the same separator with this line.
            element.tag = "div"
            element.text = _RULE
        elif element.tag == "a":
            suffix = _link_suffix(element)
            if suffix:
                element.tail = suffix + (element.tail or "")


def _link_suffix(anchor: etree._Element) -> str:
    href = (anchor.get("href") or "").strip()
    if not href.lower().startswith(("http://", "https://")):
        return ""
    label = " ".join(anchor.text_content().split())
    if not label:
        # An image link: the URL alone would only be noise (tracking, banners).
        return ""
    bare = re.sub(r"^https?://", "", href, flags=re.IGNORECASE).rstrip("/")
    if label.rstrip("/") in (href, href.rstrip("/"), bare) or label.rstrip("/").endswith(bare):
        return ""
    return f" <{href}>"


def _mark_quotes(text: str, quotes: list[tuple[int, int]]) -> str:
    """Prefix every line inside a blockquote with one "> " per level of nesting."""
    if not quotes:
        return text
    out: list[str] = []
    position = 0
    for line in text.split("\n"):
        # A line belongs to a quote where its first visible character does.
        first = position + len(line) - len(line.lstrip())
        depth = sum(1 for q_start, q_end in quotes if q_start <= first < q_end)
        stripped = line.strip()
        if depth and stripped:
            out.append("> " * depth + stripped)
        elif depth and out and out[-1].startswith(">"):
            # A blank line between quoted paragraphs stays in the quote; one before it does not.
            out.append(">" * depth)
        else:
            out.append(line)
        position += len(line) + 1
    return "\n".join(out)


def _tidy(text: str) -> str:
    lines = [line.replace("\xa0", " ").rstrip() for line in text.split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip("\n")


class _TextCollector(HTMLParser):
    """Last resort for input lxml cannot build a tree from: text nodes, blocks as new lines."""

    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(re.sub(r"\s+", " ", data))


def _crude_text(html: str) -> str:
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    text = "".join(collector.parts)
    return "\n".join(line.strip() for line in text.split("\n"))
