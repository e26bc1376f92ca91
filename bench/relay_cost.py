"""What handing one notification to the relay costs, for both relays: the folder (`dir:`) and SMTP
to a local sink, plain and with STARTTLS + AUTH. Each is measured one mail at a time (`send`, what
the sender did per notification before relay sessions) and, where the tree has them, in sessions of
`CLAIM_BATCH` mails (what the sender does per claimed batch now); the folder relay's sessions also
with their fsyncs one after another (`SYNC_THREADS = 1`), to show what syncing them together brings.

Run from the project root: ``.venv/bin/python bench/relay_cost.py [--n 480] [--tree PATH]``.
``--tree`` imports `gateway` from another checkout instead (e.g. the tree before sessions, unpacked
with ``git archive COMMIT gateway | tar -x -C /tmp/before``), so before and after run the same
script on the same machine. The SMTP sink is aiosmtpd in a child process, so the CPU figures are
the sender's side alone (for the folder relay they include the kernel's time in fsync); the wall
figures include waiting for the sink or the disk. STARTTLS + AUTH needs trustme (a test extra).
No figure is asserted anywhere: this is a measuring tool, not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BATCH = 16  # gateway.notify.sender.CLAIM_BATCH, also for a tree that predates this script

SINK = r"""
import logging, ssl, sys
logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's deprecation note, once per AUTH
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

class Handler:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 OK: queued"

port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
kwargs = {}
if cert:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    kwargs = {
        "tls_context": context,
        "auth_required": True,
        "authenticator": lambda server, session, envelope, mechanism, data: AuthResult(
            success=isinstance(data, LoginPassword), handled=False
        ),
    }
controller = Controller(Handler(), hostname="127.0.0.1", port=port, **kwargs)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
"""


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} x {model}, Python {platform.python_version()}, load average {load:.2f}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def mail(n: int) -> tuple[str, str, bytes, str]:
    """A notification of the usual size (~1.7 KB), as the outbox holds it."""
    body = b"We received your message and opened ticket SP-42 for it, thank you.\r\n" * 24
    raw = (
        b"From: SmilePass Support <support@smilepass.example>\r\n"
        b"To: Maria Lopez <maria@customer.example>\r\n"
        + f"Subject: [SP-42] Payment plan ADD button does nothing ({n})\r\n".encode()
        + f"Message-ID: <tg.SP-42.o{n}@smilepass.example>\r\n".encode()
        + b"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + b"\r\n"
    )
    return (f"support+bounce-{n}.abcdefgh@smilepass.example", "maria@customer.example", raw, f"{n:08d}")


def measure(n: int, run: Callable[[list[tuple[str, str, bytes, str]]], None]) -> tuple[float, float]:
    """(wall ms, CPU ms) per notification over `n` notifications."""
    mails = [mail(i) for i in range(n)]
    wall, cpu = time.perf_counter(), time.process_time()
    run(mails)
    return (time.perf_counter() - wall) * 1000 / n, (time.process_time() - cpu) * 1000 / n


def one_at_a_time(relay: Any) -> Callable[[list[tuple[str, str, bytes, str]]], None]:
    def run(mails: list[tuple[str, str, bytes, str]]) -> None:
        for mail_from, rcpt_to, raw, name in mails:
            relay.send(mail_from=mail_from, rcpt_to=rcpt_to, raw=raw, name=name)

    return run


def in_sessions(
    relay: Any, outgoing: Any, *, one_by_one: Any = None
) -> Callable[[list[tuple[str, str, bytes, str]]], None]:
    """Sessions of `BATCH` mails; with `one_by_one` (the relay module), the folder relay's fsyncs
    run one after another instead of together, to show what syncing them together brings."""

    def run(mails: list[tuple[str, str, bytes, str]]) -> None:
        threads = one_by_one.SYNC_THREADS if one_by_one is not None else 0
        if one_by_one is not None:
            one_by_one.SYNC_THREADS = 1
        try:
            for start in range(0, len(mails), BATCH):
                with relay.session() as session:
                    for fields in mails[start : start + BATCH]:
                        session.send(outgoing(*fields))
                    session.commit()
        finally:
            if one_by_one is not None:
                one_by_one.SYNC_THREADS = threads

    return run


class Sink:
    """The child process answering `250` to every mail."""

    def __init__(self, tls: tuple[str, str] | None) -> None:
        self.port = free_port()
        cert, key = tls or ("", "")
        self.process = subprocess.Popen(
            [sys.executable, "-c", SINK, str(self.port), cert, key],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready"

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=480, help="notifications per measurement (default 480)")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose gateway/ is measured")
    parser.add_argument("--no-tls", action="store_true", help="skip SMTP with STARTTLS + AUTH")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.tree.resolve()))  # a plain script: the chosen tree, not an installed one
    import ssl

    from gateway.config import RelayTarget
    from gateway.notify import relay as relays

    outgoing = getattr(relays, "Outgoing", None)
    print(f"machine: {machine()}")
    print(f"tree: {Path(relays.__file__).resolve().parent.parent.parent}")
    print(f"{args.n} notifications of {len(mail(0)[2])} bytes; sessions of {BATCH}")
    print(f"{'relay':<28} {'how':<24} {'wall ms/mail':>12} {'CPU ms/mail':>12}")

    def report(label: str, relay: Callable[[], Any]) -> None:
        """Each way on a relay of its own (for the folder, a new folder: the sender never writes
        over a file, and replacing one costs the file system more than writing a new one)."""
        ways = [("one at a time (send)", one_at_a_time(relay()))]
        if outgoing is not None and hasattr(relays, "Outgoing"):
            ways.append((f"sessions of {BATCH}", in_sessions(relay(), outgoing)))
            if label == "dir" and hasattr(relays, "SYNC_THREADS"):
                ways.append(("sessions, fsyncs in turn", in_sessions(relay(), outgoing, one_by_one=relays)))
        for how, run in ways:
            wall, cpu = measure(args.n, run)
            print(f"{label:<28} {how:<24} {wall:>12.3f} {cpu:>12.3f}", flush=True)

    with tempfile.TemporaryDirectory(prefix="tg-relay-cost-", dir=ROOT) as workdir:
        # In the project's folder, so on the disk a deployment's `dir:` relay would use (not tmpfs).
        folders = iter(range(1, 1000))
        report("dir", lambda: relays.DirRelay(Path(workdir) / f"outgoing-{next(folders)}"))

        sink = Sink(None)
        try:
            target = RelayTarget("smtp", host="127.0.0.1", port=sink.port)
            report("smtp (plain)", lambda: relays.SmtpRelay(target))
        finally:
            sink.close()

        try:
            import trustme
        except ImportError:
            trustme = None
        if trustme is not None and not args.no_tls:
            authority = trustme.CA()
            issued = authority.issue_cert("127.0.0.1")
            cert, key = Path(workdir) / "cert.pem", Path(workdir) / "key.pem"
            issued.cert_chain_pems[0].write_to_path(cert)
            issued.private_key_pem.write_to_path(key)
            client = ssl.create_default_context()
            authority.configure_trust(client)
            sink = Sink((str(cert), str(key)))
            try:
                target = RelayTarget("smtp", host="127.0.0.1", port=sink.port)
                report(
                    "smtp (STARTTLS + AUTH)",
                    lambda: relays.SmtpRelay(target, user="bench", password="bench", tls_context=client),
                )
            finally:
                sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
