"""The fields of a web form's mail (SPEC §13 "Web forms"): `Label: value` lines of its body; pure.

A support page's form mails what the visitor filled in, one field a line: `Title: Cannot pay`,
`Priority: High`, and a Description that may run over many lines. How it is read:
- a label is one of the form's known labels (configured per form, `[[forms]]`), matched
  case-insensitively and with any run of spaces, at the start of a line, before a colon (a space or a
  no-break space may stand before the colon, the label may be in bold, `**Title:**`);
- a field's value is what follows the colon; when nothing does, the next non-empty line (mailers that
  put the value under its label);
- the Description (the one multi-line field) runs until the next known label, so its own lines may
  hold anything, `Error: card declined` included, as long as it is no label of the form; its lines
  are dedented (an HTML table rendered to text indents them);
- the first occurrence of a label is the field; a later one (inside the description it ended) is
  not read again.

Form mailers that send HTML put the fields in a table, a label cell beside its value (Contact Form 7,
Gravity Forms) or a label row above its value row (WPForms, whose labels have no colon). The text
rendering of such a table interleaves a multi-line value with the labels beside it, so `form_fields`
also reads the table row by row (lxml), and keeps that reading unless the text finds more fields.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence

from lxml import etree
from lxml.html import document_fromstring

from gateway.mail.html_text import depth_exceeds

DESCRIPTION = "description"

_SPACES = re.compile(r"[ \t\u00a0\u202f]+")
_LINE = re.compile(r"^\s*\*{0,2}(?P<label>[^:：\n]{1,60}?)\s*\*{0,2}\s*[:：]\s*\*{0,2}(?P<value>.*)$")


def normalise_label(label: str) -> str:
    """A label as compared: lower case, runs of spaces folded, no surrounding spaces."""
    return _SPACES.sub(" ", label).strip().casefold()


def form_fields(
    text: str, html: str | None, labels: Mapping[str, str], *, others: Sequence[str] = ()
) -> dict[str, str]:
    """The fields of a form mail: from its HTML table when that finds as many, else from its text."""
    found = read_form_fields(text, labels, others=others)
    rows = table_text(html, [*labels.values(), *others]) if html else None
    if rows is not None:
        from_table = read_form_fields(rows, labels, others=others)
        if len(from_table) >= len(found):
            return from_table
    return found


_MAX_DEPTH = 200
_MAX_ROWS = 200


def table_text(html: str, labels: Iterable[str]) -> str | None:
    """The rows of the HTML's tables as `Label: value` lines, None when it has no table row.

    A row of two cells or more is a label and its value; a row of one cell that is a label alone
    (WPForms) is a label whose value is the next row."""
    try:
        tree = document_fromstring(html)
    except (etree.ParserError, ValueError):
        return None
    if depth_exceeds(tree, _MAX_DEPTH):
        return None
    known = {normalise_label(label) for label in labels}
    lines: list[str] = []
    for row in tree.iter("tr"):
        if len(lines) > _MAX_ROWS:
            break
        if any(isinstance(inner.tag, str) and inner.tag == "tr" for inner in row.iterdescendants()):
            continue  # a layout row around the form's own rows
        cells = [_cell_text(cell) for cell in row if isinstance(cell.tag, str) and cell.tag in ("td", "th")]
        cells = [cell for cell in cells if cell.strip()]
        if not cells:
            continue
        head = cells[0].strip().rstrip(":：").strip()
        if len(cells) >= 2:
            lines.append(f"{head}: " + "\n".join(cells[1:]))
        elif normalise_label(head) in known:
            lines.append(f"{head}:")
        else:
            lines.append(cells[0])
    return "\n".join(lines) if lines else None


_BLOCKS = frozenset({"br", "p", "div", "li", "tr"})


def _cell_text(cell: etree._Element) -> str:
    """A cell's text, a line per `<br>`, paragraph or block: the layout a form value has. (Rendering
    each cell with html_to_text, as the whole mail is, cost ~50 ms for a form of six fields.)"""
    for element in cell.iter():
        if isinstance(element.tag, str) and element.tag in _BLOCKS:
            element.tail = "\n" + (element.tail or "")
    lines = ("".join(cell.itertext())).split("\n")
    return "\n".join(_SPACES.sub(" ", line).strip() for line in lines).strip("\n")


def read_form_fields(
    text: str, labels: Mapping[str, str], *, others: Sequence[str] = (), multiline: str = DESCRIPTION
) -> dict[str, str]:
    """The fields found in `text`: {field: value} for each field of `labels` ({field: label}) found.

    `others` are labels the form also has whose values are not read (they end a multi-line field);
    `multiline` is the field that runs until the next known label.
    """
    by_label = {normalise_label(label): field for field, label in labels.items()}
    ends = set(by_label) | {normalise_label(label) for label in others}
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    found: dict[str, str] = {}
    index = 0
    while index < len(lines):
        label = _label_of(lines[index], ends)
        if label is None:
            index += 1
            continue
        field = by_label.get(label)
        value = _value_of(lines[index])
        index += 1
        if field == multiline:
            taken: list[str] = []
            while index < len(lines) and _label_of(lines[index], ends) is None:
                taken.append(lines[index])
                index += 1
            body = textwrap.dedent("\n".join(taken)).strip("\n")
            value = f"{value}\n{body}".strip() if value else body.strip()
            value = "\n".join(line.rstrip() for line in value.split("\n"))
        elif not value:
            # The value on the line under its label.
            while index < len(lines) and not lines[index].strip():
                index += 1
            if index < len(lines) and _label_of(lines[index], ends) is None:
                value = lines[index].strip()
                index += 1
        if field is not None and field not in found:
            found[field] = _SPACES.sub(" ", value).strip() if field != multiline else value
    return found


def _label_of(line: str, known: set[str]) -> str | None:
    match = _LINE.match(line)
    if match is None:
        return None
    label = normalise_label(match.group("label"))
    return label if label in known else None


def _value_of(line: str) -> str:
    match = _LINE.match(line)
    return match.group("value").strip().strip("*").strip() if match else ""
