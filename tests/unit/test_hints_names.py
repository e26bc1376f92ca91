"""The acknowledgement's device names: whatever the case-insensitive search finds has a name of ours,
including spellings `re` equates that lower-casing does not (a dotless ı from a Turkish keyboard)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.notify.hints import _DEVICE_NAMES, what_helps

# Every letter `re.IGNORECASE` treats as the same as an ASCII letter of a name, beyond its cases.
EQUIVALENTS = {"i": "ıİ", "s": "ſ", "k": "K"}


@st.composite
def spelled(draw: st.DrawFn) -> tuple[str, str]:
    """A device name with each letter in any case or any of its equivalents."""
    name = draw(st.sampled_from(_DEVICE_NAMES))
    letters = [
        draw(st.sampled_from([char.lower(), char.upper(), *EQUIVALENTS.get(char.lower(), "")]))
        for char in name
    ]
    return name, "".join(letters)


@given(spelled())
def test_any_spelling_the_search_finds_is_named_as_we_write_it(case: tuple[str, str]) -> None:
    name, written = case
    hints = what_helps(f"It fails on {written} since Monday.", has_screenshot=False)
    assert hints.device is not None and name in hints.device.split(", ")


def test_windows_with_a_dotless_i_is_windows() -> None:
    assert what_helps("I use Wındows 11", has_screenshot=True).device == "Windows"
