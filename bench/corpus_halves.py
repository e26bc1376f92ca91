"""Split a corpus folder into a tuning half and a checking half by a fixed rule, so that rules written
while looking at one half are measured on mail they were not shown (the other half).

The rule: sort the paths (as strings), then even positions (0, 2, 4 …) are tuning, odd ones checking.
It depends on nothing but the file names, so every report and test splits a folder the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def halves(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """(tuning, checking): the sorted paths at even positions, and those at odd positions."""
    ordered = sorted(paths, key=str)
    return ordered[0::2], ordered[1::2]
