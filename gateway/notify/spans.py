"""How long, as people say it in a notification: "2 d 3 h", "1 h 20 min", "5 min"."""

from __future__ import annotations

from datetime import timedelta


def span_text(span: timedelta) -> str:
    """`span` to the minute, in its two largest units (negative spans count as none)."""
    minutes = max(0, int(span.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"
