"""What a new ticket's first mail lacks of what helps support answer (SPEC §7 `ticket_created`).

A plain reading of the cleaned text, no I/O: did the writer say what they were trying to do, what
happened, which browser or device they use, and did they attach a screenshot. The acknowledgement
asks only for what is missing, and says thanks for what is there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TRYING = "what you were trying to do"
HAPPENED = "what happened (an error message word for word, if there was one)"
DEVICE = "your browser and device (for example Chrome on Windows, or Safari on an iPhone)"
SCREENSHOT = "a screenshot of the screen"

# Names people write for their browser, system or device, as we would repeat them back.
_DEVICE_NAMES = (
    "Chrome", "Firefox", "Safari", "Edge", "Opera", "Brave", "Vivaldi", "Internet Explorer",
    "Samsung Internet", "Windows", "macOS", "Mac OS", "MacBook", "iMac", "Linux", "Ubuntu",
    "Android", "iOS", "iPadOS", "iPhone", "iPad", "Pixel", "Galaxy", "Chromebook", "ChromeOS",
)  # fmt: skip
_DEVICE = re.compile(r"\b(" + "|".join(re.escape(name) for name in _DEVICE_NAMES) + r")\b", re.IGNORECASE)

_TRYING = re.compile(
    r"\b(?:trying|tried|try(?:ing)? to|wanted? to|want(?:ed)? to|attempt\w*|when I|I was|I am|I'm"
    r"|click\w*|tap\w*|press\w*|go(?:ing)? to|went to|log(?:ging)? ?in|sign(?:ing)? in|pay\w*"
    r"|open\w*|upload\w*|submit\w*|add\w*|set(?:ting)? up|chang\w+|updat\w+|cancel\w*)\b",
    re.IGNORECASE,
)
_HAPPENED = re.compile(
    r"\b(?:error\w*|fail\w*|doesn'?t|does not|didn'?t|did not|can'?t|cannot|couldn'?t|won'?t"
    r"|nothing happens|broken|crash\w*|shows?|showed|says?|said|message|stuck|blank|freez\w*"
    r"|not work\w*|wrong|instead|charged|declined|rejected|missing|lost|disappear\w*)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Hints:
    helps: tuple[str, ...]  # what to ask for, in the order people find natural
    device: str | None  # the browsers and devices named, as written in our words ("Chrome, Windows")
    has_screenshot: bool


def what_helps(text: str, *, has_screenshot: bool) -> Hints:
    named = list(dict.fromkeys(_canonical(match) for match in _DEVICE.findall(text)))
    helps: list[str] = []
    if not _TRYING.search(text):
        helps.append(TRYING)
    if not _HAPPENED.search(text):
        helps.append(HAPPENED)
    if not named:
        helps.append(DEVICE)
    if not has_screenshot:
        helps.append(SCREENSHOT)
    return Hints(helps=tuple(helps), device=", ".join(named) or None, has_screenshot=has_screenshot)


_EACH_DEVICE = tuple((name, re.compile(re.escape(name), re.IGNORECASE)) for name in _DEVICE_NAMES)


def _canonical(found: str) -> str:
    """Our name for what `_DEVICE` found, by the same case-insensitive matching: `re` equates letters
    `lower()` does not ("Wındows" with a dotless ı, "ſafari" with a long s), so comparing lower-cased
    strings found no name for them and the new ticket's planning failed."""
    return next(name for name, pattern in _EACH_DEVICE if pattern.fullmatch(found))
