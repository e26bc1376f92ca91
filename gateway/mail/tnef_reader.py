"""The child process that reads one winmail.dat with tnefparse (run by gateway/mail/tnef.py).

Why a process of its own: tnefparse trusts the counts it reads. A 30-byte winmail.dat whose MAPI
property count says 4 294 967 295 keeps it looping (logging "Skipping property" each time) for
hours, a multi-valued short with a huge count grows a list until memory runs out, and every TNEF
attribute copies the rest of the payload, so many tiny attributes cost the square of the size.
None of that may stop a mail from becoming a ticket. Here the reading runs under a CPU-time and
an address-space limit; when it passes one, the kernel ends this process, and the daemon's
worker carries on with a reason ("could not be read ... took too long").

Protocol: the winmail.dat bytes on standard input; arguments: the CPU seconds, then the folders to
import the three libraries from (it runs as `python -I -S`, see gateway/mail/tnef.py); one JSON
object on standard output: ``{"ok": true, "plain", "html", "rtf_text", "files": [...]}`` (text
values either ``{"text": str}`` or ``{"bytes": base64, "charset": name}``, decoded by the parent
with the project's charset rules), or ``{"ok": false, "error": str}``. This module imports only
the standard library, tnefparse, compressed_rtf and striprtf, and runs without `site`: it starts
in about 20 ms.
"""

from __future__ import annotations

import base64
import json
import logging
import resource
import sys
from typing import Any

MAX_FILES = 100  # files taken from one winmail.dat; Outlook's own limit is far below this
# Address space of this process: the interpreter and libraries take ~30 MB, reading takes a few
# times the payload (copies, base64, JSON). A payload that asks for more is not a real winmail.dat.
_MEMORY_BASE = 256 * 1024 * 1024
_MEMORY_PER_PAYLOAD_BYTE = 24


def _limit(cpu_seconds: int, memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))


def _text(value: object, charset: str | None) -> dict[str, str] | None:
    """A body value as tnefparse gives it: text, or bytes in the message's code page."""
    if isinstance(value, str):
        return {"text": value} if value.strip("\x00 \r\n\t") else None
    if isinstance(value, bytes | bytearray) and bytes(value).strip(b"\x00 \r\n\t"):
        return {"bytes": base64.b64encode(bytes(value)).decode("ascii"), "charset": charset or "cp1252"}
    return None


def _name(value: object) -> str | None:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("cp1252", "replace")
    if not isinstance(value, str):
        return None
    value = value.strip("\x00").strip()
    return value or None


def _mapi(attachment: Any, name: int) -> object:
    for attribute in attachment.mapi_attrs:
        if attribute.name == name:
            return attribute.data
    return None


def _file(attachment: Any, properties: Any) -> dict[str, Any]:
    long_name = _name(_mapi(attachment, properties.MAPI_ATTACH_LONG_FILENAME))
    mime = _name(_mapi(attachment, properties.MAPI_ATTACH_MIME_TAG))
    content_id = _name(_mapi(attachment, properties.MAPI_ATTACH_CONTENT_ID))
    data = attachment.data if isinstance(attachment.data, bytes | bytearray) else b""
    return {
        "name": long_name or _name(attachment.name),
        "mime": mime,
        "cid": content_id,
        "data": base64.b64encode(bytes(data)).decode("ascii"),
    }


def _rtf_text(tnef: Any) -> str | None:
    rtf = tnef.rtfbody
    if not rtf:
        return None
    from striprtf.striprtf import rtf_to_text

    # RTF is 7-bit with \'xx escapes read in its \ansicpg code page; latin-1 keeps any stray byte.
    text = rtf_to_text(bytes(rtf).rstrip(b"\x00").decode("latin-1"), errors="replace")
    return text if text.strip() else None


def read(payload: bytes) -> dict[str, Any]:
    import tnefparse
    from tnefparse import properties

    tnef = tnefparse.TNEF(payload, do_checksum=False)
    files = [_file(a, properties) for a in tnef.attachments[:MAX_FILES]]
    return {
        "ok": True,
        "plain": _text(tnef.body, tnef.codepage),
        "html": _text(tnef.htmlbody, tnef.codepage),
        "rtf_text": _rtf_text(tnef),
        "files": files,
        "files_dropped": max(0, len(tnef.attachments) - MAX_FILES),
    }


def main() -> int:
    logging.disable(logging.CRITICAL)  # tnefparse logs each oddity; the answer says what matters
    sys.path[:0] = sys.argv[2:]  # the folders of tnefparse, compressed_rtf and striprtf
    payload = sys.stdin.buffer.read()
    _limit(
        int(sys.argv[1]) if len(sys.argv) > 1 else 10, _MEMORY_BASE + _MEMORY_PER_PAYLOAD_BYTE * len(payload)
    )
    try:
        answer = read(payload)
    except MemoryError:
        answer = {"ok": False, "error": "MemoryError: it asks for more memory than any real winmail.dat"}
    except Exception as error:  # hostile input: every failure is an answer, not a traceback
        answer = {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
