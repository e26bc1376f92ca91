"""The plain-text part of every notification reads well at 72 columns with realistic SmilePass data
(tests/tools/template_samples.py): no line longer, except where one word alone (an address, a URL)
is longer than the room left. Every template in templates/ has sample data, so the browser
rendering script (tests/tools/render_templates.py) and this test cover each of them."""

from __future__ import annotations

import pytest

from gateway.notify.render import Renderer
from tests.tools.render_templates import strip_styles, template_names
from tests.tools.template_samples import SAMPLES, sample_for

WIDTH = 72


def test_every_template_has_sample_data() -> None:
    names = template_names()
    assert len(names) >= 7
    missing = [name for name in names if name not in SAMPLES]
    assert not missing, f"add sample data to tests/tools/template_samples.py SAMPLES for: {missing}"


@pytest.mark.parametrize("template", [name for name in template_names() if name in SAMPLES])
def test_plain_text_wraps_at_72_columns(template: str) -> None:
    text = Renderer().render(template, sample_for(template)).text
    # The wrapping never breaks a word, so only a line of one word alone may be longer.
    too_long = [line for line in text.splitlines() if len(line) > WIDTH and len(line.split()) > 1]
    assert not too_long, "\n".join(too_long)


def test_a_long_title_is_wrapped_not_left_running() -> None:
    context = sample_for("status_changed") | {"title": "Refund " * 30}
    lines = Renderer().render("status_changed", context).text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    assert sum("Refund" in line for line in lines) >= 3


def test_style_elements_are_what_is_stripped() -> None:
    html = '<html><head><style>p { color: red }</style><link rel="stylesheet" href="x.css"></head>'
    assert (
        strip_styles(html + '<p style="color: red">x</p>') == '<html><head></head><p style="color: red">x</p>'
    )
