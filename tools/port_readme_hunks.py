"""Carry a branch's edits of the old, long README into the docs/ pages its text moved to.

Branches started before the README was cut down still edit README lines that now live in docs/.
At their merge, README.md conflicts; keep the new README (`git checkout --ours README.md`) and run

    python tools/port_readme_hunks.py MERGE_BASE BRANCH        # e.g. main copies-merges

Each changed run of lines of `git diff MERGE_BASE...BRANCH -- README.md` is looked for, as it
was, in every page under docs/; where exactly one page holds it, the page gets the new lines
(links written for the README, `](docs/x.md)`, made relative to the page). Lines only added are
put after the line above them. A run found nowhere, or in several pages, is printed for a person
to place: nothing is guessed. Exit 1 when any run was left.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


@dataclass(frozen=True)
class Change:
    """One run of changed lines: the line above it, the lines removed, the lines added."""

    above: str | None
    removed: tuple[str, ...]
    added: tuple[str, ...]


def changes(diff: str) -> list[Change]:
    found: list[Change] = []
    hunk: list[str] = []
    hunks: list[list[str]] = []
    for line in diff.split("\n"):
        if line.startswith("@@"):
            hunk = []
            hunks.append(hunk)
        elif hunks and not line.startswith(("---", "+++")):
            hunk.append(line)
    for lines in hunks:
        i = 0
        while i < len(lines):
            if not lines[i].startswith(("-", "+")):
                i += 1
                continue
            above = lines[i - 1][1:] if i > 0 else None
            removed: list[str] = []
            added: list[str] = []
            while i < len(lines) and lines[i].startswith("-"):
                removed.append(lines[i][1:])
                i += 1
            while i < len(lines) and lines[i].startswith("+"):
                added.append(lines[i][1:])
                i += 1
            found.append(Change(above, tuple(removed), tuple(added)))
    return found


def relink(text: str, page: Path) -> str:
    """`](docs/x.md)` as the README wrote it, relative to the page it now sits in."""

    def one(match: re.Match[str]) -> str:
        target = DOCS / match.group(1)
        return f"]({os.path.relpath(target, page.parent)}{match.group(2) or ''})"

    return re.sub(r"\]\(docs/([^)#\s]+)(#[^)\s]*)?\)", one, text)


def port(diff: str, pages: dict[Path, str]) -> list[str]:
    """Apply every change it can place to `pages` (in place); the ones it could not, described."""
    left: list[str] = []
    for change in changes(diff):
        if change.removed:
            old = "\n".join(change.removed) + "\n"
        elif change.above is not None and change.above.strip():
            old = change.above + "\n"
        else:
            left.append("added after a blank line, place by hand:\n" + "\n".join(change.added))
            continue
        holders = [page for page, text in pages.items() if old in text]
        if len(holders) != 1:
            where = "nowhere" if not holders else ", ".join(str(p.relative_to(ROOT)) for p in holders)
            left.append(
                f"found {where}:\n- "
                + "\n- ".join(change.removed or (old,))
                + "\n+ "
                + "\n+ ".join(change.added)
            )
            continue
        page = holders[0]
        added = relink("\n".join(change.added), page)
        new = (added + "\n" if change.added else "") if change.removed else old + added + "\n"
        pages[page] = pages[page].replace(old, new, 1)
        print(f"{page.relative_to(ROOT)}: {len(change.removed)} lines out, {len(change.added)} in")
    return left


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 64
    base, branch = argv
    diff = subprocess.run(
        ["git", "diff", f"{base}...{branch}", "--", "README.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pages = {page: page.read_text(encoding="utf-8") for page in sorted(DOCS.rglob("*.md"))}
    before = dict(pages)
    left = port(diff, pages)
    for page, text in pages.items():
        if text != before[page]:
            page.write_text(text, encoding="utf-8")
    for item in left:
        print(f"NOT PLACED, {item}\n")
    return 1 if left else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
