"""The validating table reader: typed accessors that record every problem instead of stopping.

A `Table` is one TOML table being read; each accessor (`integer`, `seconds`, `address_list`, …)
records the key as known and any problem under its dotted key (`smtp.listen`, `imap[0].tls`), and
`finish` calls every key nobody asked for unknown, with the nearest known one as "did you mean".
All problems of one config end up in one `Problems`, raised together as `ConfigErrors`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from gateway.config.validators import E, address_problem, enum_member
from gateway.errors import ConfigError

T = TypeVar("T")


class ConfigErrors(ConfigError):
    """Every problem found in one configuration; `errors` lists them in the order found."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        if not errors:
            raise ValueError("ConfigErrors needs at least one error")
        super().__init__(errors[0].key, errors[0].problem)
        self.errors: tuple[ConfigError, ...] = tuple(errors)

    def __str__(self) -> str:
        return "\n".join(f"{error.key}: {error.problem}" for error in self.errors)


class Problems:
    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def add(self, key: str, problem: str) -> None:
        self.errors.append(ConfigError(key, problem))


class Table:
    """One TOML table being read. Each accessor remembers the key it was asked for, so `finish`
    can call every other key unknown and suggest the nearest known one."""

    def __init__(self, data: Mapping[str, Any], path: str, problems: Problems) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        self._known: list[str] = []

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, name: str, text: str) -> None:
        self.problems.add(self.key(name), text)

    def has(self, name: str) -> bool:
        return name in self.data

    def _typed(self, name: str, check: Callable[[Any], bool], expected: str) -> Any:
        """The value; None when it is absent, or has the wrong type (a problem is recorded)."""
        self._known.append(name)
        if name not in self.data:
            return None
        value = self.data[name]
        if not check(value):
            self.problem(name, f"expected {expected}, got {describe(value)}")
            return None
        return value

    def optional_text(self, name: str, *, empty_allowed: bool = False) -> str | None:
        """The string, stripped; None when absent. An empty one is a problem unless `empty_allowed`
        (then it is "": `control.socket = ""` turns the socket off)."""
        value = self._typed(name, _is_str, "a string")
        if value is None:
            return None
        if not value.strip():
            if empty_allowed:
                return ""
            self.problem(name, "must not be empty")
            return None
        return str(value).strip()

    def text(self, name: str, default: str) -> str:
        value = self.optional_text(name)
        return default if value is None else value

    def required_text(self, name: str, what: str) -> str:
        if not self.has(name):
            self._known.append(name)
            self.problem(name, f"required — {what}")
            return ""
        return self.optional_text(name) or ""

    def integer(self, name: str, default: int, *, minimum: int = 1) -> int:
        value = self._typed(name, _is_int, "an integer")
        if value is None:
            return default
        if value < minimum:
            self.problem(name, f"must be {minimum} or more, got {value}")
            return default
        return int(value)

    def seconds(self, name: str, default: float) -> float:
        value = self._typed(name, _is_number, "a number of seconds")
        if value is None:
            return default
        if not math.isfinite(value) or value <= 0:
            self.problem(name, f"must be a number of seconds above 0, got {value}")
            return default
        return float(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self._typed(name, lambda v: isinstance(v, bool), "true or false")
        return default if value is None else bool(value)

    def text_list(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if isinstance(self.data.get(name), str):
            self._known.append(name)
            value = self.data[name]
            self.problem(name, f"expected an array of strings, got a string: write [{_toml_str(value)}]")
            return default
        value = self._typed(name, lambda v: isinstance(v, list), "an array of strings")
        if value is None:
            return default
        items: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.problem(f"{name}[{index}]", f"expected a string, got {describe(item)}")
            elif not item.strip():
                self.problem(f"{name}[{index}]", "must not be empty")
            else:
                items.append(item.strip())
        return tuple(items)

    def choice(self, name: str, enum: type[E], default: E) -> E:
        chosen = self.optional_choice(name, enum)
        return default if chosen is None else chosen

    def optional_choice(self, name: str, enum: type[E]) -> E | None:
        value = self.optional_text(name)
        if value is None:
            return None
        member = enum_member(enum, value)
        if member is None:
            self.problem(name, f"expected one of {one_of(m.value for m in enum)}, got {value!r}")
        return member

    def address(self, name: str) -> str | None:
        value = self.optional_text(name)
        if value is None:
            return None
        problem = address_problem(value)
        if problem:
            self.problem(name, problem)
            return None
        return value

    def address_list(self, name: str, default: tuple[str, ...], *, wildcard: bool = False) -> tuple[str, ...]:
        good: list[str] = []
        for index, value in enumerate(self.text_list(name, default)):
            problem = address_problem(value, wildcard_domain=wildcard)
            if problem:
                self.problem(f"{name}[{index}]", problem)
            elif value.lower() not in (seen.lower() for seen in good):
                good.append(value)
        return tuple(good)

    def table(self, name: str) -> Table:
        value = self._typed(name, lambda v: isinstance(v, dict), f"a table [{self.key(name)}]")
        return Table(value or {}, self.key(name), self.problems)

    def tables(self, name: str) -> list[Table]:
        key = self.key(name)
        value = self._typed(
            name,
            lambda v: isinstance(v, list) and all(isinstance(item, dict) for item in v),
            f"an array of tables (write [[{key}]] for each)",
        )
        return [Table(item, f"{key}[{index}]", self.problems) for index, item in enumerate(value or [])]

    def finish(self) -> None:
        """Report every key nobody asked for: most often a typo."""
        known = list(dict.fromkeys(self._known))
        for name in self.data:
            if name in known:
                continue
            close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
            if close:
                hint = f"did you mean {close[0]!r}?"
            else:
                hint = f"expected one of {', '.join(known)}" if known else "this table takes no keys"
            self.problem(name, f"unknown key; {hint}")


def finished(table: Table, read: Callable[[Table], T]) -> T:
    value = read(table)
    table.finish()
    return value


def has_problem_under(t: Table, name: str) -> bool:
    key = t.key(name)
    return any(error.key == key or error.key.startswith(f"{key}[") for error in t.problems.errors)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def one_of(values: Iterable[str]) -> str:
    return ", ".join(values)


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def describe(value: Any) -> str:
    """A TOML value as a user would name it: "an integer (42)", "a string ('x')", "a table"."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__} ({value})"
