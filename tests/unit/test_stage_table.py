"""The stage table is the whole truth about the stages: every file under pipeline/stages/ is one
stage, named in STAGES as its file and its function are, and each stage takes the value the one
before it gives (the typed values of pipeline/stage_values.py), so no stage has to assert on what
an earlier one set."""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

import gateway.pipeline.stages
from gateway.pipeline.processor import STAGES
from gateway.pipeline.stage_values import Decision
from gateway.store.inbox import ClaimedItem

STAGES_DIR = Path(gateway.pipeline.stages.__file__).parent


def test_every_file_under_stages_is_one_stage_of_the_table_and_named_as_it() -> None:
    files = sorted(p.stem for p in STAGES_DIR.glob("*.py") if p.stem != "__init__")
    names = [name for name, _ in STAGES]
    assert sorted(names) == files
    for name, stage in STAGES:
        assert stage.__name__ == name
        assert stage.__module__ == f"gateway.pipeline.stages.{name}"


def chain_problems(stages: Sequence[tuple[str, Callable[..., Any]]]) -> list[str]:
    """Where a stage does not take what the stage before it gives, read from their annotations."""
    problems: list[str] = []
    current: type = ClaimedItem
    for index, (name, stage) in enumerate(stages):
        hints = typing.get_type_hints(stage)
        taken = hints[next(iter(hints))]
        bound = taken.__bound__ if isinstance(taken, TypeVar) else taken
        if not issubclass(current, bound):
            problems.append(f"{name} takes {bound.__name__}, but gets {current.__name__}")
        given = [t for t in typing.get_args(hints["return"]) or (hints["return"],) if t is not Decision]
        if index == len(stages) - 1:
            if given:
                problems.append(f"{name} is the last stage and must always decide")
            continue
        if len(given) != 1:
            problems.append(f"{name} must give one value to the next stage, gives {given}")
            continue
        if given[0] is not taken or not isinstance(taken, TypeVar):  # a TypeVar passes the value on
            current = given[0]
    return problems


def test_each_stage_takes_what_the_stage_before_it_gives() -> None:
    assert chain_problems(STAGES) == []


@pytest.mark.parametrize("moved", ["check_flood", "add_reply", "thread_mail"])
def test_a_stage_moved_before_the_value_it_needs_is_caught(moved: str) -> None:
    """The check above can fail: a stage that needs who wrote the mail cannot run before thread_mail."""
    table = list(STAGES)
    entry = next(e for e in table if e[0] == moved)
    table.remove(entry)
    table.insert(1, entry)  # right after parse_mail
    assert chain_problems(table) != []
