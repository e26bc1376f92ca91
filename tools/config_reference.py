"""Write docs/admin/config-reference.md from the code that reads the config, so the page cannot drift.

The keys, their types and their defaults are not copied from anywhere: the config loader is run
once on a config with every section empty (and one empty `[[imap]]` and `[[customers]]` table),
while every accessor of `gateway.config.reader.Table` records the key it was asked for, the kind
of value it reads and the default it falls back to. Only the sentence saying what a key means is
written by hand, in `config_descriptions.py` beside this file; a key the code reads without a
description there is shown as undescribed, and a description of a key the code no longer reads is
an error. `tests/test_docs.py` fails when the committed page differs from what this writes.

    python tools/config_reference.py          # rewrite the page
    python tools/config_reference.py --check  # exit 1 when the page is out of date
"""

from __future__ import annotations

import enum
import functools
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from config_descriptions import DESCRIPTIONS, SECTIONS  # noqa: E402

from gateway.config import loading  # noqa: E402
from gateway.config.reader import ConfigErrors, Table  # noqa: E402

PAGE = ROOT / "docs" / "admin" / "config-reference.md"
ACCESSORS = (
    "integer", "seconds", "boolean", "text", "optional_text", "required_text", "text_list",
    "address_list", "address", "choice", "optional_choice", "table", "tables", "has",
)  # fmt: skip


@dataclass(frozen=True)
class Key:
    """One key as the loader reads it."""

    path: str  # dotted, with `[]` for an array of tables: `imap[].host`
    accessor: str
    default: Any
    options: tuple[str, ...] = ()
    minimum: int | None = None


@contextmanager
def recording() -> Iterator[list[Key]]:
    """Every key the loader reads, in the order it reads them; only the outermost accessor of a
    nested call counts (`text` calls `optional_text`)."""
    found: list[Key] = []
    depth = [0]
    originals = {name: getattr(Table, name) for name in ACCESSORS}

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def recorded(self: Table, key: str, *args: Any, **kwargs: Any) -> Any:
            if depth[0] == 0:
                found.append(_key(self, name, key, args, kwargs))
            depth[0] += 1
            try:
                return original(self, key, *args, **kwargs)
            finally:
                depth[0] -= 1

        return recorded

    for name, original in originals.items():
        setattr(Table, name, wrap(name, original))
    try:
        yield found
    finally:
        for name, original in originals.items():
            setattr(Table, name, original)


def _key(table: Table, accessor: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Key:
    path = re.sub(r"\[\d+\]", "[]", table.key(name))
    default: Any = None
    options: tuple[str, ...] = ()
    if accessor in ("choice", "optional_choice"):
        enum_type = args[0]
        options = tuple(str(member.value) for member in enum_type)
        default = args[1] if len(args) > 1 else None
    elif accessor == "has":
        return Key(path, accessor, None)
    elif accessor in ("integer", "seconds", "boolean", "text", "text_list", "address_list"):
        default = args[0] if args else kwargs.get("default")
    return Key(path, accessor, default, options, kwargs.get("minimum", 1 if accessor == "integer" else None))


def _run(data: dict[str, Any]) -> list[Key]:
    # The required keys are missing, so this raises: expected, the keys were read all the same.
    with recording() as found, suppress(ConfigErrors):
        loading.settings_from_mapping(data, environ={})
    return found


def read_keys() -> list[Key]:
    """The keys of every section, as the loader reads them: a first run finds the arrays of
    tables (`[[imap]]`, …), a second gives each one empty table so that its keys are read too.
    A key the loader only asks about (`t.has`) without reading it is listed as such."""
    arrays = {key.path: [{}] for key in _run({}) if key.accessor == "tables"}
    found = _run(arrays)
    order: dict[str, None] = {}
    chosen: dict[str, Key] = {}
    for key in found:
        if key.accessor in ("table", "tables") and key.path != "tags":
            continue  # a section: it gets a heading, not a row
        order.setdefault(key.path)
        if key.path not in chosen or chosen[key.path].accessor == "has":
            chosen[key.path] = key
    return [chosen[path] for path in order]


def kind(key: Key) -> str:
    if key.options:
        return "one of " + ", ".join(f"`{option}`" for option in key.options)
    return {
        "integer": "integer" if key.minimum in (None, 1) else f"integer, {key.minimum} or more",
        "seconds": "number of seconds",
        "boolean": "boolean",
        "text": "string",
        "optional_text": "string",
        "required_text": "string",
        "text_list": "array of strings",
        "address_list": "array of addresses",
        "address": "address",
        "table": "table",
        "has": "any (only its presence is read)",
    }[key.accessor]


def shown_default(key: Key) -> str:
    if key.accessor == "required_text":
        return "required"
    default = key.default
    if default is None:
        return "absent"
    if isinstance(default, enum.Enum):
        default = default.value
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, float) and default.is_integer():
        return f"`{int(default)}`"
    if isinstance(default, str):
        return f'`"{default}"`'
    if isinstance(default, tuple):
        return "`[" + ", ".join(f'"{item}"' for item in default) + "]`"
    return f"`{default}`"


def section_of(path: str) -> str:
    return path.split(".")[0].split("[")[0]


def generate() -> str:
    keys = read_keys()
    paths = {key.path for key in keys}
    stale = sorted(set(DESCRIPTIONS) - paths)
    if stale:
        raise SystemExit(
            f"config_descriptions.py describes keys the code no longer reads: {', '.join(stale)}"
        )
    lines = [
        "# Configuration keys",
        "",
        "<!-- Generated by tools/config_reference.py from gateway/config: do not edit by hand. -->",
        "",
        "Every key ticketgate reads, in the order it reads them. The keys, types and defaults come from",
        "the code that reads the config file (`gateway/config/`), so this page cannot drift from it; a",
        "test fails when it is out of date (`python tools/config_reference.py` rewrites it). How to write",
        "the file and check it is in [Configuration](configuration.md).",
        "",
    ]
    current = None
    for key in keys:
        section = section_of(key.path)
        if section != current:
            current = section
            title, intro = SECTIONS.get(section, (f"[{section}]", ""))
            lines += ["", f"## {title}", ""]
            if intro:
                lines += [intro, ""]
            lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        text = DESCRIPTIONS.get(key.path, {})
        default = text.get("default", shown_default(key))
        meaning = text.get("meaning", "*(not described yet: add it to tools/config_descriptions.py)*")
        lines.append(f"| `{key.path}` | {text.get('type', kind(key))} | {default} | {meaning} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    page = generate()
    if "--check" in argv:
        if not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != page:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python tools/config_reference.py")
            return 1
        return 0
    PAGE.write_text(page, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
