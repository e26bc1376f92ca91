"""A real Dovecot for the IMAP tests: started from the shared recipe on free loopback ports, in a
temporary folder, optionally with TLS (a throwaway trustme CA: `imaps` listener plus STARTTLS),
a trimmed capability list (no MOVE, no IDLE) or an OAuth2 passdb backed by a local token
introspection endpoint. Stopped by the pid in its own master.pid."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from imapclient import IMAPClient

from tests.conftest import missing_component
from tests.helpers import free_port

DOVECOT = Path("/usr/sbin/dovecot")
RECIPE = Path("/work/shared/recipes/dovecot-test.conf")
PASSWORD = "secret"

# A capability list like Dovecot's own but without MOVE and IDLE: the COPY + EXPUNGE and polling paths.
BASIC_CAPABILITIES = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE UIDPLUS NAMESPACE CHILDREN UNSELECT"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by init) counts as gone.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][:1] != "Z"
    return False


class TokenIntrospection:
    """An OAuth2 introspection endpoint (RFC 7662) that knows one good token, for Dovecot's passdb."""

    def __init__(self, good_token: str, username: str) -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                token = form.get("token", [""])[0]
                owner.seen.append(token)
                answer = {"active": True, "username": username} if token == good_token else {"active": False}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.seen: list[str] = []
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/introspect"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Dovecot:
    """One running Dovecot; `port` is plain IMAP (with STARTTLS when TLS is on), `imaps_port` TLS."""

    base: Path
    users: tuple[str, ...] = ("support",)
    tls: bool = False
    capabilities: str | None = None
    introspection_url: str | None = None
    port: int = field(default_factory=free_port)
    imaps_port: int = field(default_factory=free_port)
    ca: trustme.CA | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def write_config(self) -> Path:
        base = str(self.base)
        text = RECIPE.read_text(encoding="utf-8").replace("BASE", base).replace("PORT", str(self.port))
        extra = [
            "auth_failure_delay = 0",
            "mail_max_userip_connections = 50",
            # No auth penalty (anvil's 2 s doubling to 15 s on every login from an address after a
            # failed one, the good ones too): the tests refuse logins on purpose, all from 127.0.0.1,
            # and what they check is the poller's answer to a refusal, not Dovecot's brute-force brake.
            "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}",
        ]
        if self.capabilities is not None:
            extra.append(f"imap_capability = {self.capabilities}")
        if self.tls:
            assert self.ca is not None
            cert = self.ca.issue_cert("127.0.0.1", "localhost")
            cert.private_key_pem.write_to_path(str(self.base / "key.pem"))
            cert.cert_chain_pems[0].write_to_path(str(self.base / "cert.pem"))
            text = text.replace(
                "ssl = no", f"ssl = yes\nssl_cert = <{base}/cert.pem\nssl_key = <{base}/key.pem"
            )
            text = text.replace(
                "service imap-login {",
                "service imap-login {\n"
                f"  inet_listener imaps {{\n    port = {self.imaps_port}\n    ssl = yes\n  }}",
            )
        if self.introspection_url is not None:
            text = text.replace("auth_mechanisms = plain login", "auth_mechanisms = plain login xoauth2")
            (self.base / "oauth2.conf.ext").write_text(
                f"introspection_mode = post\nintrospection_url = {self.introspection_url}\n"
                "username_attribute = username\nactive_attribute = active\nactive_value = true\n",
                encoding="utf-8",
            )
            extra.append(
                f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2\n  args = {base}/oauth2.conf.ext\n}}"
            )
        config = self.base / "dovecot.conf"
        config.write_text(text + "\n" + "\n".join(extra) + "\n", encoding="utf-8")
        return config

    def start(self) -> None:
        for sub in ("mail", "state", "run"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.base / "mail", "nobody", "nogroup")
        (self.base / "passwd").write_text(
            "".join(f"{user}:{{PLAIN}}{PASSWORD}\n" for user in self.users), encoding="utf-8"
        )
        config = self.write_config()
        # Output to a file, not a pipe: the daemonised master keeps its inherited descriptors open.
        output = self.base / "start.log"
        with output.open("wb") as sink:
            done = subprocess.run([str(DOVECOT), "-c", str(config)], stdout=sink, stderr=sink, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"dovecot did not start: {output.read_text()}\n{self.log()}")
        self._wait_listening(self.port)

    def stop(self, *, graceful: bool = False) -> None:
        """Stop the master and its children: SIGTERM (clients hear BYE; ~2.5 s) or SIGKILL to the
        process group, which the master leads (it calls setsid), for a quick teardown."""
        pid = self.master_pid()
        if pid is None or not _alive(pid):
            return
        if graceful:
            os.kill(pid, signal.SIGTERM)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)

    def restart(self, *, downtime: float = 0.0) -> None:
        """A graceful stop (clients get BYE), a pause, and a start on the same ports and mail."""
        self.stop(graceful=True)
        time.sleep(downtime)
        self.start()

    def master_pid(self) -> int | None:
        path = self.base / "run" / "master.pid"
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _wait_listening(self, port: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return
            time.sleep(0.05)
        raise RuntimeError(f"dovecot is not listening on {port}:\n{self.log()}")

    # --- a mail client for the tests ----------------------------------------------------------

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this server's throwaway CA (and nothing else)."""
        assert self.ca is not None
        context = ssl.create_default_context(cafile=None)
        context.load_verify_locations(cadata=self.ca.cert_pem.bytes().decode())
        return context

    @contextlib.contextmanager
    def client(self, user: str = "support") -> Iterator[IMAPClient]:
        client = IMAPClient("127.0.0.1", self.port, ssl=False, timeout=10)
        try:
            client.login(user, PASSWORD)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def append(self, raw: bytes, folder: str = "INBOX", user: str = "support") -> None:
        """Deliver a mail the way a server's delivery agent does it for us here: IMAP APPEND."""
        with self.client(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw)

    def messages(self, folder: str, user: str = "support") -> list[bytes]:
        """The raw mails in a folder (an empty list when the folder does not exist)."""
        with self.client(user) as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
            return [fetched[uid][b"BODY[]"] for uid in sorted(fetched)]

    def flags(self, folder: str, user: str = "support") -> list[tuple[bytes, ...]]:
        with self.client(user) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            found = client.get_flags(uids) if uids else {}
            # \\Recent is the server's per-session mark, not something a client set.
            return [tuple(flag for flag in found[uid] if flag != rb"\Recent") for uid in sorted(found)]

    def mail_files(self, user: str = "support") -> list[Path]:
        """The maildir files of the user's INBOX (to break one on purpose)."""
        root = self.base / "mail" / user
        return sorted([*root.glob("cur/*"), *root.glob("new/*")])


@contextlib.contextmanager
def running_dovecot(**options: object) -> Iterator[Dovecot]:
    """A started Dovecot in a fresh folder; skipped (failed under CI) when Dovecot is not installed."""
    if not DOVECOT.exists():
        missing_component(f"Dovecot not found at {DOVECOT}: apt-get install dovecot-imapd")
    if os.geteuid() != 0:
        missing_component("the Dovecot fixture runs Dovecot as root (it drops to nobody for mail)")
    # Not pytest's tmp_path: its parents are 0700 (nobody could not reach the mail), and its long
    # names overflow the unix-socket paths under base_dir.
    base = Path(tempfile.mkdtemp(prefix="tg-dovecot-"))
    base.chmod(0o755)
    server = Dovecot(base=base, **options)  # type: ignore[arg-type]
    if server.tls and server.ca is None:
        server.ca = trustme.CA()
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
