"""Outlook's TNEF (`winmail.dat`, `application/ms-tnef`) opened into a body and files (SPEC §13).

Outlook and Exchange, told to send "rich text", put the whole mail in one `winmail.dat` part: its
body (plain, HTML or compressed RTF) and its files. Read as it comes, such a mail has an empty
body and one attachment nobody outside Outlook can open. tnefparse (LGPL-3, a dependency, never
copied) reads the format, compressed_rtf inflates the RTF body and striprtf turns RTF into text;
why these three and not others is in docs/reading-mail/outlook-and-signed-mail.md.

tnefparse runs in a child process with a CPU-time and a memory limit (gateway/mail/tnef_reader.py
says which inputs make it loop or grow without end); this module starts it, decodes its answer
with the project's charset rules and hands back values. Nothing here raises: a winmail.dat that
cannot be read comes back as `TnefUnreadable` with the reason, and the mail keeps it as a file.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import json
import logging
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gateway.domain import ParsedAttachment
from gateway.mail.charsets import clean_text, decode_bytes

log = logging.getLogger(__name__)

TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"  # 0x223E9F78, little-endian: the first four bytes of every TNEF
TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef", "application/x-tnef"})
# CPU seconds one winmail.dat may take; real ones take milliseconds (the docs page has figures).
READ_SECONDS = 10
# An RTF body converted to text shows an inline picture as its "cid:" reference alone on a line.
_CID_LINE = re.compile(r"^[ \t\xa0]*cid:\S+[ \t\xa0]*$", re.MULTILINE)


@dataclass(frozen=True)
class TnefContent:
    """What a winmail.dat held: its body (either may be empty) and its files."""

    text: str | None  # the plain body, else the RTF body as text
    html: str | None
    files: tuple[ParsedAttachment, ...]
    notes: tuple[str, ...] = ()  # what was left out, for the mail's defects


@dataclass(frozen=True)
class TnefUnreadable:
    reason: str  # for people: "not TNEF (it does not start with the TNEF signature)"


def is_tnef(content_type: str, filename: str | None, payload: bytes) -> bool:
    """A part is TNEF when its type or name says so, or its bytes start with the TNEF signature."""
    named = (filename or "").strip().lower().rsplit("/", 1)[-1] == "winmail.dat"
    return content_type.lower() in TNEF_TYPES or named or payload.startswith(TNEF_SIGNATURE)


def read_tnef(payload: bytes, *, seconds: int | None = None) -> TnefContent | TnefUnreadable:
    """The body and files of one winmail.dat, or why it could not be read; never raises.

    ``seconds``: of CPU for the reader, READ_SECONDS (read at each call) when not given."""
    seconds = READ_SECONDS if seconds is None else seconds
    if not payload.startswith(TNEF_SIGNATURE):
        return TnefUnreadable("not TNEF (it does not start with the TNEF signature)")
    answer = _run_reader(payload, seconds)
    if isinstance(answer, TnefUnreadable):
        return answer
    if not answer.get("ok"):
        return TnefUnreadable(f"tnefparse could not read it ({answer.get('error', 'no reason given')})")
    try:
        return _content(answer)
    except (KeyError, TypeError, ValueError, binascii.Error) as error:
        return TnefUnreadable(f"the reader's answer was not understood ({type(error).__name__})")


@cache
def _reader_command() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Python without `site` (which costs this machine 150 ms a start) and isolated from the
    environment, running tnef_reader.py as a script with the folders of its three libraries."""
    folders = []
    for name in ("tnefparse", "compressed_rtf", "striprtf"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            folder = Path(spec.origin).parent.parent  # site-packages, for a package's __init__.py
            folders.append(str(folder if spec.submodule_search_locations else Path(spec.origin).parent))
    reader = Path(__file__).with_name("tnef_reader.py")
    return (sys.executable, "-I", "-S", str(reader)), tuple(dict.fromkeys(folders))


def _run_reader(payload: bytes, seconds: int) -> dict[str, object] | TnefUnreadable:
    start, folders = _reader_command()
    command = [*start, str(seconds), *folders]
    try:
        done = subprocess.run(
            command, input=payload, capture_output=True, timeout=seconds * 2 + 5, check=False
        )
    except subprocess.TimeoutExpired:
        return TnefUnreadable(f"reading it took longer than {seconds * 2 + 5} s")
    except OSError as error:
        log.warning("cannot start the TNEF reader %s: %s", command, error)
        return TnefUnreadable(f"the TNEF reader could not be started ({error.strerror or error})")
    if done.returncode < 0:
        # SIGXCPU (the CPU limit) or SIGKILL: the payload asked for more than any real one does.
        return TnefUnreadable(f"reading it took too long (stopped by signal {-done.returncode})")
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        log.info("TNEF reader exit %s: %s", done.returncode, "\n".join(lines[-5:]))
        return TnefUnreadable(
            f"reading it failed (exit {done.returncode}: {lines[-1][:200] if lines else ''})"
        )
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        return TnefUnreadable("the TNEF reader gave no answer")
    return answer if isinstance(answer, dict) else TnefUnreadable("the TNEF reader gave no answer")


def _content(answer: dict[str, object]) -> TnefContent:
    defects: list[str] = []
    plain = _decoded(answer.get("plain"), defects)
    rtf_text = answer.get("rtf_text")
    if not (plain and plain.strip()) and isinstance(rtf_text, str):
        plain = _CID_LINE.sub("", clean_text(rtf_text))
    files = []
    for entry in answer.get("files") or []:
        if not isinstance(entry, dict):
            raise TypeError("file entry")
        name, mime, cid = entry.get("name"), entry.get("mime"), entry.get("cid")
        declared = mime.lower() if isinstance(mime, str) and "/" in mime else "application/octet-stream"
        files.append(
            ParsedAttachment(
                filename=clean_text(name) if isinstance(name, str) else None,
                content_type=declared,
                payload=base64.b64decode(str(entry["data"]), validate=True),
                content_id=cid if isinstance(cid, str) else None,
                inline=isinstance(cid, str),
            )
        )
    notes = list(dict.fromkeys(defects))
    dropped = answer.get("files_dropped")
    if isinstance(dropped, int) and dropped > 0:
        notes.append(f"winmail.dat: {dropped} more files not read")
    return TnefContent(
        text=_tidy(plain),
        html=_tidy(_decoded(answer.get("html"), defects)),
        files=tuple(files),
        notes=tuple(notes),
    )


def _decoded(value: object, defects: list[str]) -> str | None:
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("text"), str):
        return clean_text(value["text"])
    data = base64.b64decode(str(value.get("bytes", "")), validate=True)
    charset = value.get("charset")
    return clean_text(decode_bytes(data, charset if isinstance(charset, str) else None, defects))


def _tidy(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    return text if text.strip() else None
