"""Real-world mail, measured (issue 11): the targets on both halves of the rt and mail-gem folders.

Every mail gives a ticket or a recognised bounce/auto-reply (or joins one, or is a copy of one):
never an exception, never "not a mail", never `unknown@invalid` while a header names an address,
and a title without mojibake or a reply prefix left. bench/corpus_report.py prints the same table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.corpus_halves import halves
from bench.corpus_report import FOLDERS, corpus_files, measure, mojibake, prefix_left, print_report, rows

pytestmark = pytest.mark.corpus

# The folders as the corpus README describes them; an emptied glob must not pass as "all good".
MINIMUM_MAILS = {"rt": 13, "mail-gem": 103}


@pytest.mark.timeout(600)
def test_every_rt_and_mail_gem_mail_meets_the_targets_on_both_halves(
    corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder, pattern in FOLDERS.items():
        assert len(corpus_files(corpus_dir, pattern)) >= MINIMUM_MAILS[folder], f"{folder} looks incomplete"
    results = measure(corpus_dir)
    table = {(row.folder, row.half): row for row in rows(results)}
    assert set(table) == {(folder, half) for folder in FOLDERS for half in ("tuning", "checking")}
    for row in table.values():
        assert row.count > 0, row
    print_report(results, failures=True, half="both")
    printed = capsys.readouterr().out
    for folder in FOLDERS:
        assert f"{folder:<10}tuning" in printed and f"{folder:<10}checking" in printed
    failing = [f"{r.half} {r.name}: {'; '.join(r.problems)}" for r in results if r.problems]
    assert failing == [], printed


def test_the_halves_are_the_sorted_list_split_by_position() -> None:
    paths = [Path(name) for name in ("c", "a", "e", "b", "d")]
    assert halves(paths) == ([Path("a"), Path("c"), Path("e")], [Path("b"), Path("d")])


# --- the checks themselves can fail --------------------------------------------------------------------


@pytest.mark.parametrize(
    "title",
    [
        "Zahlung f\u00c3\u00bcr M\u00c3\u00a4rz",  # UTF-8 read as windows-1252
        "\u00cf\u00f0\u00e8\u00e2\u00e5\u00f2 \u00ec\u00e8\u00f0",  # windows-1251 read as Latin-1
        "\u00b9\u00d8\u00d3\u00da\u00b7\u00a2\u00c6\u00b1",  # GB2312 read as Latin-1
        "Invoice \ufffd\ufffd",
        "Invoice \x85 total",
    ],
)
def test_mojibake_is_recognised(title: str) -> None:
    assert mojibake(title) is not None


@pytest.mark.parametrize(
    "title",
    ["Zahlung für März", "Problème de paiement à la caisse", "test äöüßÄÖÜß€", "发票金额不对", "Счёт"],
)
def test_real_titles_are_not_mojibake(title: str) -> None:
    assert mojibake(title) is None


@pytest.mark.parametrize("title", ["Re: x", "SV:Faktura", "RE [2]: x", "Fwd : x", "回复：x", "AW:x"])
def test_prefixes_left_are_recognised(title: str) -> None:
    assert prefix_left(title) is not None


@pytest.mark.parametrize("title", ["Rest API fails", "Recap: numbers", "Refund please"])
def test_words_like_prefixes_are_not_prefixes_left(title: str) -> None:
    assert prefix_left(title) is None
