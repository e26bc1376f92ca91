"""What handing one notification to the relay costs, for both relays: the folder (`dir:`) and SMTP
to a local sink, plain and with STARTTLS + AUTH. Each is measured one mail at a time (`send`: a
connection, or a file and its syncs, per mail) and in sessions of `CLAIM_BATCH` mails (what the
sender does per claimed batch); the folder relay's sessions also with their fsyncs one after
another (`SYNC_THREADS = 1`), to show what syncing them together brings. With ``--before PATH``
the relay of another checkout (e.g. the tree before sessions, unpacked with
``git archive COMMIT gateway | tar -x -C /tmp/before``) is measured beside this one, one mail at
a time as its sender did. The ways take turns batch by batch, so a change in the machine's load
weighs on each alike.

Run from the project root: ``.venv/bin/python bench/relay_cost.py [--n 480] [--before PATH]``.
The SMTP sink is aiosmtpd in a child process, so the CPU figures are the sender's side alone (for
the folder relay they include the kernel's time in fsync); the wall figures include waiting for
the sink or the disk. STARTTLS + AUTH needs trustme (a test extra). No figure is asserted
anywhere: this is a measuring tool, not a test.
"""

from __future__ import annotations

import argparse
import importlib.util
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


Mail = tuple[str, str, bytes, str]
Batch = Callable[[list[Mail]], None]  # hands over one batch of mails


def one_at_a_time(relay: Any) -> Batch:
    def run(mails: list[Mail]) -> None:
        for mail_from, rcpt_to, raw, name in mails:
            relay.send(mail_from=mail_from, rcpt_to=rcpt_to, raw=raw, name=name)

    return run


def in_a_session(relay: Any, outgoing: Any, *, one_by_one: Any = None) -> Batch:
    """The batch in one session; with `one_by_one` (the relay module), the folder relay's fsyncs
    run one after another instead of together, to show what syncing them together brings."""

    def run(mails: list[Mail]) -> None:
        threads = one_by_one.SYNC_THREADS if one_by_one is not None else 0
        if one_by_one is not None:
            one_by_one.SYNC_THREADS = 1
        try:
            with relay.session() as session:
                for fields in mails:
                    session.send(outgoing(*fields))
                session.commit()
        finally:
            if one_by_one is not None:
                one_by_one.SYNC_THREADS = threads

    return run


def interleaved(n: int, ways: list[tuple[str, Batch]]) -> list[tuple[str, float, float]]:
    """(how, wall ms, CPU ms) per notification for each way, over `n` notifications each. The
    ways take turns batch by batch, so a machine that gets busier or quieter meanwhile weighs on
    each alike (this machine's load moves more within a minute than the differences measured)."""
    spent = {how: [0.0, 0.0] for how, _ in ways}
    for start in range(0, n, BATCH):
        for how, run in ways:
            mails = [mail(i) for i in range(start, min(start + BATCH, n))]
            wall, cpu = time.perf_counter(), time.process_time()
            run(mails)
            spent[how][0] += time.perf_counter() - wall
            spent[how][1] += time.process_time() - cpu
    return [(how, spent[how][0] * 1000 / n, spent[how][1] * 1000 / n) for how, _ in ways]


def load_before(tree: Path) -> Any:
    """`gateway/notify/relay.py` of another checkout, as a module of its own beside this tree's."""
    path = tree / "gateway" / "notify" / "relay.py"
    spec = importlib.util.spec_from_file_location("relay_before", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


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
    parser.add_argument("--n", type=int, default=480, help="notifications per way (default 480)")
    parser.add_argument("--before", type=Path, help="a checkout whose relay is measured beside this one")
    parser.add_argument("--no-tls", action="store_true", help="skip SMTP with STARTTLS + AUTH")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # a plain script: this tree, not an installed one
    import ssl

    from gateway.config import RelayTarget
    from gateway.notify import relay as relays

    before = load_before(args.before) if args.before else None
    print(f"machine: {machine()}")
    print(f"before: {args.before or '-'}")
    print(f"{args.n} notifications of {len(mail(0)[2])} bytes per way; sessions of {BATCH}")
    print(f"{'relay':<24} {'how':<28} {'wall ms/mail':>12} {'CPU ms/mail':>12}")

    def report(label: str, make: Callable[[Any], Any]) -> None:
        """Each way on a relay of its own (for the folder, a new folder: the sender never writes
        over a file, and replacing one costs the file system more than writing a new one)."""
        ways: list[tuple[str, Batch]] = []
        if before is not None:
            ways.append(("before: one at a time", one_at_a_time(make(before))))
        ways.append(("one at a time (send)", one_at_a_time(make(relays))))
        ways.append((f"sessions of {BATCH}", in_a_session(make(relays), relays.Outgoing)))
        if label == "dir":
            ways.append(
                ("sessions, fsyncs in turn", in_a_session(make(relays), relays.Outgoing, one_by_one=relays))
            )
        for how, wall, cpu in interleaved(args.n, ways):
            print(f"{label:<24} {how:<28} {wall:>12.3f} {cpu:>12.3f}", flush=True)

    with tempfile.TemporaryDirectory(prefix="tg-relay-cost-", dir=ROOT) as workdir:
        # In the project's folder, so on the disk a deployment's `dir:` relay would use (not tmpfs).
        folders = iter(range(1, 1000))
        report("dir", lambda module: module.DirRelay(Path(workdir) / f"outgoing-{next(folders)}"))

        sink = Sink(None)
        try:
            target = RelayTarget("smtp", host="127.0.0.1", port=sink.port)
            report("smtp (plain)", lambda module: module.SmtpRelay(target))
        finally:
            sink.close()

        if importlib.util.find_spec("trustme") is not None and not args.no_tls:
            import trustme

            authority = trustme.CA()
            issued = authority.issue_cert("127.0.0.1")
            cert, key = Path(workdir) / "cert.pem", Path(workdir) / "key.pem"
            issued.cert_chain_pems[0].write_to_path(cert)
            issued.private_key_pem.write_to_path(key)
            client = ssl.create_default_context()
            authority.configure_trust(client)
            sink = Sink((str(cert), str(key)))
            try:
                secure = RelayTarget("smtp", host="127.0.0.1", port=sink.port)
                report(
                    "smtp (STARTTLS + AUTH)",
                    lambda module: module.SmtpRelay(
                        secure, user="bench", password="bench", tls_context=client
                    ),
                )
            finally:
                sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
