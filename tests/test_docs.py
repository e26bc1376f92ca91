"""The documentation as a newcomer meets it: a README short enough to read, whose links all lead
somewhere, whose test command is the one CI runs; a config key reference that matches the code;
and a site that builds with `mkdocs build --strict`."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_LIMIT = 25 * 1024  # bytes: issue 25 found a 190 KB README that nobody could read through
TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest -n 2 --dist loadfile"
)


def _links(markdown: str) -> list[str]:
    """Every inline link target outside code blocks and code spans."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def _github_slug(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_the_readme_is_at_most_25_kb() -> None:
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; move detail into docs/ (limit {README_LIMIT})"


def test_every_readme_link_leads_to_a_page_or_heading_that_exists() -> None:
    readme = README.read_text(encoding="utf-8")
    headings = {_github_slug(h) for h in re.findall(r"^#{1,6} (.+)$", readme, flags=re.M)}
    links = _links(readme)
    assert links, "the README links to no documentation page"
    broken = []
    for link in links:
        if re.match(r"[a-z]+:", link):
            broken.append(f"{link} (the README links only into the repository)")
            continue
        path, _, anchor = link.partition("#")
        if not path:
            if anchor not in headings:
                broken.append(f"{link} (no such heading)")
        elif not (ROOT / path).exists():
            broken.append(f"{link} (no such file)")
    assert not broken, "README.md links to what does not exist:\n" + "\n".join(broken)


def test_the_readme_test_command_is_the_one_ci_runs() -> None:
    assert TEST_COMMAND in README.read_text(encoding="utf-8")
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _config_reference() -> ModuleType:
    path = ROOT / "tools" / "config_reference.py"
    spec = importlib.util.spec_from_file_location("config_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_config_key_reference_is_what_the_code_reads() -> None:
    reference = _config_reference()
    committed = (ROOT / "docs" / "admin" / "config-reference.md").read_text(encoding="utf-8")
    assert committed == reference.generate(), (
        "docs/admin/config-reference.md differs from the config code: run python tools/config_reference.py"
    )
    for key in ("`smtp.listen`", "`gateway.secret`", "`imap[].host`", "`views.digest_at`"):
        assert key in committed
    assert "not described yet" not in committed, "describe each key in tools/config_descriptions.py"


def test_the_reference_generator_leaves_the_config_reader_as_it_was() -> None:
    from gateway.config.reader import Table

    before = {name: getattr(Table, name) for name in ("integer", "text", "tables")}
    _config_reference().generate()
    assert {name: getattr(Table, name) for name in before} == before


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs") or str(Path(sys.executable).parent / "mkdocs")
    if not Path(mkdocs).exists():
        pytest.skip("mkdocs is in the docs extra (pip install -e '.[docs]'); .ci/run builds the site anyway")
    done = subprocess.run(
        [mkdocs, "build", "--strict", "--quiet", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1"},
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "admin" / "config-reference.html").is_file()


def _port_tool() -> ModuleType:
    path = ROOT / "tools" / "port_readme_hunks.py"
    spec = importlib.util.spec_from_file_location("port_readme_hunks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_branchs_readme_edit_lands_in_the_page_its_text_moved_to() -> None:
    tool = _port_tool()
    staff = ROOT / "docs" / "staff" / "example.md"
    admin = ROOT / "docs" / "admin" / "example.md"
    pages = {
        staff: "# Staff\n\n| `#note` | internal |\n| `#queue` | the queue |\n",
        admin: "# Admin\n\nThe relay is tried 10 times.\nSame line.\n",
    }
    diff = (
        "--- a/README.md\n+++ b/README.md\n@@ -1,3 +1,4 @@\n"
        " | `#note` | internal |\n"
        "+| `#merge REF` | merge ([the page](docs/staff/copies-and-merges.md#merge)) |\n"
        " | `#queue` | the queue |\n"
        "@@ -9,2 +10,2 @@\n"
        "-The relay is tried 10 times.\n"
        "+The relay is tried for 48 hours.\n"
        "@@ -20,1 +21,1 @@\n"
        "-Nowhere in docs.\n"
        "+Still nowhere.\n"
    )
    left = tool.port(diff, pages)
    assert pages[staff] == (
        "# Staff\n\n| `#note` | internal |\n"
        "| `#merge REF` | merge ([the page](copies-and-merges.md#merge)) |\n"
        "| `#queue` | the queue |\n"
    )
    assert pages[admin] == "# Admin\n\nThe relay is tried for 48 hours.\nSame line.\n"
    assert len(left) == 1 and "Nowhere in docs." in left[0]
