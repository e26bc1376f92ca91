"""Renders notification templates (the only Jinja2 import): a plain-text and an HTML part per event.

Templates are looked up in the deployment's override folder first, then in the built-in ones (the
project's top-level `templates/` folder, installed as the package `ticketgate_templates`), so a
deployment replaces any one template by dropping a file of the same name there. HTML is
autoescaped; any undefined variable is an error (StrictUndefined), never a blank left silently in a
customer's mail.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from gateway.errors import TicketgateError


class RenderError(TicketgateError):
    """A template is missing, broken, or uses a variable it was not given."""


@dataclass(frozen=True)
class Rendered:
    text: str
    html: str


class Renderer:
    """Built once (daemon, CLI) and passed in; holds the template environment."""

    def __init__(self, override_dir: str | Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if override_dir is not None:
            loaders.append(jinja2.FileSystemLoader(str(override_dir)))
        loaders.append(jinja2.PackageLoader("ticketgate_templates", "."))
        self._env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["wordwrap"] = wordwrap

    def render(self, template: str, context: Mapping[str, Any]) -> Rendered:
        """Both parts of `template` (`<name>.txt.j2`, `<name>.html.j2`) with `context`."""
        try:
            text = self._env.get_template(f"{template}.txt.j2").render(context)
            html = self._env.get_template(f"{template}.html.j2").render(context)
        except jinja2.TemplateError as exc:
            raise RenderError(f"template {template}: {type(exc).__name__}: {exc}") from exc
        return Rendered(text=text, html=html)


@jinja2.pass_environment
def wordwrap(
    environment: jinja2.Environment,
    s: str,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    """Jinja2's `wordwrap` filter, giving the same text, without `textwrap` for a line it would
    give back unchanged.

    Jinja2 wraps each line (`str.splitlines`) on its own with `textwrap.wrap`, which splits the
    line into chunks and puts them together again even when the line fits. A line no longer than
    `width` that does not end in whitespace comes out of it as it went in (`textwrap` only drops
    whitespace at the ends of the lines it makes, and keeps a first line's leading whitespace);
    an empty line gives nothing either way. Most lines of a notification fit: wrapping them cost
    ~2 % of processing a mail (docs/performance/instructions-and-suite.md).
    tests/unit/test_render_wordwrap.py holds this to Jinja2's own filter.
    """
    if wrapstring is None:
        wrapstring = environment.newline_sequence
    if width <= 0:  # textwrap refuses it: Jinja2's own filter raises the same error
        return jinja2.filters.do_wordwrap(  # type: ignore[no-any-return]
            environment, s, width, break_long_words, wrapstring, break_on_hyphens
        )
    lines = []
    for line in s.splitlines():
        if len(line) <= width and not line[-1:].isspace():
            lines.append(line)
        else:
            wrapped = textwrap.wrap(
                line,
                width=width,
                expand_tabs=False,
                replace_whitespace=False,
                break_long_words=break_long_words,
                break_on_hyphens=break_on_hyphens,
            )
            lines.append(wrapstring.join(wrapped))
    return wrapstring.join(lines)
