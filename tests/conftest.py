"""Shared fixtures: where the real components and the corpus are, and how to miss them.

A component that is absent makes its tests skip with a reason that says how to enable them;
under CI (CI=true) a missing component fails the run instead, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def missing_component(reason: str) -> None:
    """Skip locally, fail under CI: a component the tests need is not there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared real-world mail corpus (../shared/corpus, or $TICKETGATE_CORPUS)."""
    path = Path(os.environ.get("TICKETGATE_CORPUS", PROJECT_ROOT.parent / "shared" / "corpus"))
    if not path.is_dir():
        missing_component(f"corpus not found at {path}: set TICKETGATE_CORPUS or check out ../shared")
    return path
