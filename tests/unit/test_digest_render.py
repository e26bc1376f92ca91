"""The `digest` template and the spans the scheduler's mails show: 72-column text, escaped HTML,
inline styles only, long sections cut with a count."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gateway.notify.render import Renderer
from gateway.notify.spans import span_text


def row(ref: str, title: str, when: str = "3 h") -> dict[str, Any]:
    return {
        "ref": ref,
        "priority": "Urgent",
        "tier": "Pro",
        "title": title,
        "category": "Billing & Payments",
        "status": "Open",
        "assignee": "",
        "when": when,
    }


def context() -> dict[str, Any]:
    long_title = "Checkout <b>fails</b> " + "and then some more words " * 6
    return {
        "marker": "-- reply above this line --",
        "desk": "SmilePass Support",
        "day": "2026-12-02",
        "timezone": "Europe/Oslo",
        "open_count": 1,
        "sections": [
            {"title": "New since yesterday", "when_label": "age", "count": 30, "more": 28,
             "rows": [row("SP-41", long_title, "16 h 33 min"), row("SP-1234567", long_title)]},
            {"title": "First responses overdue", "when_label": "late by", "count": 0, "more": 0, "rows": []},
        ],
    }  # fmt: skip


def test_the_digest_text_fits_72_columns_and_counts_what_it_leaves_out() -> None:
    text = Renderer().render("digest", context()).text
    assert all(len(line) <= 72 for line in text.splitlines()), text
    assert "Daily digest for 2026-12-02 (Europe/Oslo): 1 open ticket." in text
    assert "SP-41     Urgent   16 h 33 min  Checkout <b>fails</b> and then some m..." in text
    assert "SP-1234567 Urgent   3 h          Checkout <b>fails</b> and then some ..." in text
    assert "... and 28 more" in text
    assert "First responses overdue (0)" in text and "(none)" in text


def test_the_digest_html_escapes_titles_and_styles_inline() -> None:
    html = Renderer().render("digest", context()).html
    assert "<b>fails</b>" not in html and "&lt;b&gt;fails&lt;/b&gt;" in html
    assert "<style" not in html and "<table" in html and 'style="' in html
    assert "… and 28 more" in html


def test_spans_read_as_people_say_them() -> None:
    assert span_text(timedelta(seconds=59)) == "0 min"
    assert span_text(timedelta(minutes=80)) == "1 h 20 min"
    assert span_text(timedelta(hours=2)) == "2 h"
    assert span_text(timedelta(days=2, hours=3, minutes=59)) == "2 d 3 h"
    assert span_text(timedelta(days=1)) == "1 d"
    assert span_text(timedelta(minutes=-5)) == "0 min"
