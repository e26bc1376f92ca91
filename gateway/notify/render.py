"""Renders notification templates (the only Jinja2 import): a plain-text and an HTML part per event.

Templates are looked up in the deployment's override folder first, then in the built-in ones (the
project's top-level `templates/` folder, installed as the package `ticketgate_templates`), so a
deployment replaces any one template by dropping a file of the same name there. HTML is
autoescaped; any undefined variable is an error (StrictUndefined), never a blank left silently in a
customer's mail.
"""

from __future__ import annotations

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

    def render(self, template: str, context: Mapping[str, Any]) -> Rendered:
        """Both parts of `template` (`<name>.txt.j2`, `<name>.html.j2`) with `context`."""
        try:
            text = self._env.get_template(f"{template}.txt.j2").render(context)
            html = self._env.get_template(f"{template}.html.j2").render(context)
        except jinja2.TemplateError as exc:
            raise RenderError(f"template {template}: {type(exc).__name__}: {exc}") from exc
        return Rendered(text=text, html=html)
