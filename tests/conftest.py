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


def _corpus_path() -> Path:
    return Path(os.environ.get("TICKETGATE_CORPUS", PROJECT_ROOT.parent / "shared" / "corpus"))


def pytest_configure(config: pytest.Config) -> None:
    """Byte-compile gateway/, tests/ and bench/ once, before any test starts a process.

    Every `serve`, each of its worker processes and every bench or `ticketgate_process` run is a
    new interpreter importing gateway/. Where PYTHONDONTWRITEBYTECODE is set (as on the
    development machines) none of them writes a .pyc, so each compiled all of gateway/ again
    (~0.45 s of CPU per process, a few hundred processes per run). They still read .pyc files that
    exist; compileall writes them whatever the variable says, and is a no-op when they are current.
    The same code runs: an installed package has its .pyc files too. Once, in the xdist controller
    (or the only process)."""
    if hasattr(config, "workerinput"):
        return
    import compileall

    for folder in ("gateway", "tests", "bench"):
        compileall.compile_dir(PROJECT_ROOT / folder, quiet=1)


def pytest_report_header() -> str:
    """Said first, not found in a skip count at the end: where the corpus is, or that its tests skip."""
    path = _corpus_path()
    if path.is_dir():
        return f"ticketgate corpus: {path}"
    return (
        f"ticketgate corpus: NOT FOUND at {path}: the corpus tests (about 140) will skip"
        " (fail under CI=true); set TICKETGATE_CORPUS or clone beside ../shared"
    )


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared real-world mail corpus (../shared/corpus, or $TICKETGATE_CORPUS)."""
    path = _corpus_path()
    if not path.is_dir():
        missing_component(f"corpus not found at {path}: set TICKETGATE_CORPUS or check out ../shared")
    return path


POSTGRES_ENV = "TICKETGATE_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server the tests may create databases on ($TICKETGATE_TEST_POSTGRES_URL)."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        missing_component(
            f"PostgreSQL: set {POSTGRES_ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/test to run these"
        )
    return str(url)


@pytest.fixture
def fresh_postgres(postgres_url: str):  # type: ignore[no-untyped-def]
    """A new, empty PostgreSQL database for one test, dropped afterwards; yields its URL."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"tg_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the server is configured but not answering
        admin.dispose()
        missing_component(f"PostgreSQL at {postgres_url} is not reachable: {exc}")
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs a test once on SQLite and once on PostgreSQL: the store must behave the same on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ticketgate.db'}"
    return str(request.getfixturevalue("fresh_postgres"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Repeat at the end what the skip count hides: without the corpus, most skips are its tests."""
    if not _corpus_path().is_dir():
        terminalreporter.write_line(pytest_report_header(), yellow=True, bold=True)
