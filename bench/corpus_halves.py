"""The fixed split of every corpus set into a tuning half and a checking half (issue 11).

Rules are written looking at the tuning half only; the checking half then tells whether they generalise
or were fitted to what was seen. The rule must not depend on anything a rule-writer could tune, so it is
the plainest one: the sorted file list, even positions tuning, odd positions checking.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def halves(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """(tuning, checking): the sorted ``paths`` at even indexes, and at odd indexes."""
    ordered = sorted(paths)
    return ordered[0::2], ordered[1::2]
