"""Print how well bounces are recognised and their failed addresses read, per half of the corpus
bounce folder (bench/corpus_halves.py: tuning half, checking half), for ticketgate as adopted and
for the two things it combines, measured alone.

Run from the project root: ``.venv/bin/python bench/bounce_rate.py [--corpus DIR] [--failures]``.

- recognised: the mail is classified a bounce (so it never opens a ticket), with no envelope to go
  by (as IMAP and pipe intake see it); for flufl.bounce alone, that it reads any failed address.
- addresses: of the addresses `expected.json` (failed for good) and `delayed.json` (delayed) name,
  how many the reading gives (compared case-insensitively).
- permanence: files whose reading says permanent exactly when `expected.json` names an address.
- extra: addresses read that neither file names (sendmail_01's alias target is one, README says).
"""

from __future__ import annotations

import argparse
import email
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a plain script: make the project importable without installing it

from flufl.bounce import all_failures  # noqa: E402

from bench.corpus_halves import halves  # noqa: E402
from gateway.addresses import GatewayAddresses  # noqa: E402
from gateway.domain import Envelope  # noqa: E402
from gateway.mail.bounce import read_bounce  # noqa: E402
from gateway.mail.parse import parse_mail  # noqa: E402
from gateway.pipeline.classify import MailKind, classify  # noqa: E402

OURS = GatewayAddresses(["support@smilepass.example"])
NO_ENVELOPE = Envelope(mail_from="", rcpt_tos=("support@smilepass.example",), source="pipe")


@dataclass(frozen=True)
class Reading:
    recognised: bool
    addresses: frozenset[str]  # lower case
    permanent: bool


def ticketgate(raw: bytes) -> Reading:
    parsed = parse_mail(raw)
    kind = classify(parsed, NO_ENVELOPE, ours=OURS, raw=raw).kind
    report = read_bounce(parsed, NO_ENVELOPE, ours=OURS, raw=raw)
    return Reading(kind is MailKind.BOUNCE, frozenset(a.lower() for a in report.recipients), report.permanent)


def ticketgate_without_flufl(raw: bytes) -> Reading:
    parsed = parse_mail(raw)
    kind = classify(parsed, NO_ENVELOPE, ours=OURS).kind
    report = read_bounce(parsed, NO_ENVELOPE, ours=OURS)
    return Reading(kind is MailKind.BOUNCE, frozenset(a.lower() for a in report.recipients), report.permanent)


def flufl_alone(raw: bytes) -> Reading:
    try:
        temporary, permanent = all_failures(email.message_from_bytes(raw))
    except Exception:  # a detector that crashes on a mail has read nothing from it
        return Reading(False, frozenset(), False)
    found = frozenset(a.decode("ascii", "replace").lower() for a in permanent | temporary)
    return Reading(bool(found), found, bool(permanent))


CANDIDATES: dict[str, Callable[[bytes], Reading]] = {
    "flufl.bounce alone": flufl_alone,
    "ticketgate without flufl": ticketgate_without_flufl,
    "ticketgate (adopted)": ticketgate,
}


@dataclass
class Score:
    files: int = 0
    recognised: int = 0
    wanted: int = 0
    read: int = 0
    permanence: int = 0
    extra: int = 0

    def cells(self) -> list[str]:
        return [
            f"{self.recognised}/{self.files} {self.recognised / self.files:6.1%}",
            f"{self.read}/{self.wanted} {self.read / self.wanted:6.1%}",
            f"{self.permanence}/{self.files}",
            str(self.extra),
        ]


def load_expectations(folder: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    failed = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    delayed = json.loads((folder / "delayed.json").read_text(encoding="utf-8"))
    return failed, delayed


def score(
    reader: Callable[[bytes], Reading],
    paths: list[Path],
    failed: dict[str, list[str]],
    delayed: dict[str, list[str]],
    misses: list[str] | None = None,
) -> Score:
    result = Score()
    for path in paths:
        reading = reader(path.read_bytes())
        want_failed = {a.lower() for a in failed.get(path.name, [])}
        want = want_failed | {a.lower() for a in delayed.get(path.name, [])}
        result.files += 1
        result.recognised += reading.recognised
        result.wanted += len(want)
        result.read += len(want & reading.addresses)
        result.permanence += reading.permanent == bool(want_failed)
        result.extra += len(reading.addresses - want)
        if misses is not None and (not reading.recognised or want - reading.addresses):
            missing = sorted(want - reading.addresses)
            misses.append(f"    {path.name}: recognised={reading.recognised} missing={missing}")
    return result


def main() -> int:
    default = Path(os.environ.get("TICKETGATE_CORPUS", ROOT.parent / "shared" / "corpus"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=default, help="the shared corpus folder")
    parser.add_argument("--failures", action="store_true", help="list each file a candidate misses")
    args = parser.parse_args()
    folder = args.corpus / "bounces"
    if not folder.is_dir():
        print(f"no corpus bounce folder at {folder}", file=sys.stderr)
        return 1
    logging.disable(logging.CRITICAL)  # flufl.bounce logs a traceback for each detector that crashes
    failed, delayed = load_expectations(folder)
    tuning, checking = halves(folder.glob("*.eml"))
    header = ["recognised", "addresses", "permanence", "extra"]
    for label, paths in (("tuning half", tuning), ("checking half", checking)):
        print(f"\nbounces, {label} ({len(paths)} files)")
        print(f"{'candidate':<26}" + "".join(f"{name:>18}" for name in header))
        for name, reader in CANDIDATES.items():
            misses: list[str] = []
            found = score(reader, paths, failed, delayed, misses if args.failures else None)
            print(f"{name:<26}" + "".join(f"{cell:>18}" for cell in found.cells()))
            for line in misses:
                print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
