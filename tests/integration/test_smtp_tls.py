"""STARTTLS on SMTP and LMTP intake (SPEC §11), over a real socket with a `trustme` CA.

Given a gateway with a certificate from a test CA, when a client upgrades with STARTTLS, then its
mail is stored as sent; with `require_tls` a client that does not upgrade cannot send at all; a
client that only speaks TLS 1.1 is refused; and without a certificate STARTTLS is not offered.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from gateway.intake.smtp import SmtpLimits
from gateway.store.db import make_engine
from gateway.store.inbox import InboxStore
from gateway.store.schema import upgrade
from tests.conftest import missing_component
from tests.helpers import ticketgate, write_config
from tests.integration.smtp_helpers import ThreadedIntake, make_mail, queued_id

SWAKS = Path("/usr/bin/swaks")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def cert_files(ca: trustme.CA, tmp_path: Path) -> tuple[str, str]:
    """The server's certificate chain and key as PEM files, as a deployment would have them."""
    cert = ca.issue_cert("mx.test", "127.0.0.1")
    chain, key = tmp_path / "mx.crt", tmp_path / "mx.key"
    chain.write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key))
    return str(chain), str(key)


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[InboxStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ticketgate.db'}")
    upgrade(engine)
    yield InboxStore(engine)
    engine.dispose()


def limits(cert_files: tuple[str, str] | None, **overrides: object) -> SmtpLimits:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "command_timeout": 30.0,
        "data_timeout": 30.0,
    }
    if cert_files is not None:
        values["tls_certificate"], values["tls_key"] = cert_files
    values.update(overrides)
    return SmtpLimits(**values)  # type: ignore[arg-type]


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def wait_for_no_sessions(running: ThreadedIntake) -> None:
    assert running.server is not None
    deadline = time.monotonic() + 10
    while running.server.connection_count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.server.connection_count == 0


def test_starttls_then_mail_is_stored(ca: trustme.CA, cert_files: tuple[str, str], inbox: InboxStore) -> None:
    raw = make_mail("Card declined", "Over TLS, please.", message_id="tls-1@example.org")
    with ThreadedIntake(inbox, limits(cert_files)) as running:
        with smtplib.SMTP(running.host, running.port, timeout=30) as client:
            client.ehlo("client.test")
            assert client.has_extn("starttls")
            assert client.starttls(context=client_context(ca))[0] == 220
            client.ehlo("client.test")
            assert not client.has_extn("starttls")  # once is enough
            assert not client.has_extn("auth")  # no logins offered, not even inside TLS
            cipher = client.sock.cipher()  # type: ignore[union-attr]
            assert client.sock.version() in ("TLSv1.2", "TLSv1.3"), cipher  # type: ignore[union-attr]
            assert client.mail("customer@example.org")[0] == 250
            assert client.rcpt("support@smilepass.example")[0] == 250
            code, reply = client.data(raw)
        assert code == 250
        stored = inbox.get(queued_id(reply))
        assert stored is not None and stored[1] == raw
        wait_for_no_sessions(running)


def test_without_a_certificate_no_starttls_is_offered(inbox: InboxStore) -> None:
    with ThreadedIntake(inbox, limits(None)) as running, smtplib.SMTP(running.host, running.port) as client:
        client.ehlo("client.test")
        assert not client.has_extn("starttls")
        assert client.docmd("STARTTLS")[0] == 454
        assert client.sendmail("c@example.org", ["support@smilepass.example"], make_mail("plain", "ok")) == {}


def test_require_tls_refuses_mail_before_starttls(
    ca: trustme.CA, cert_files: tuple[str, str], inbox: InboxStore
) -> None:
    with ThreadedIntake(inbox, limits(cert_files, require_tls=True)) as running:
        with smtplib.SMTP(running.host, running.port, timeout=30) as client:
            client.ehlo("client.test")
            code, reply = client.mail("customer@example.org")
            assert (code, reply[:5]) == (530, b"5.7.0")
            assert client.rcpt("support@smilepass.example")[0] == 503  # no MAIL was taken
            assert client.docmd("DATA")[0] == 503
            client.starttls(context=client_context(ca))
            client.ehlo("client.test")
            assert client.mail("customer@example.org")[0] == 250
            assert client.rcpt("support@smilepass.example")[0] == 250
            code, reply = client.data(make_mail("after STARTTLS", "now it goes"))
        assert code == 250
        assert [item.id for item in inbox.summaries()] == [queued_id(reply)]


def tls_1_1_client(ca: trustme.CA) -> ssl.SSLContext:
    """A client that offers TLS 1.1 and nothing newer, as an outdated MTA would."""
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(old)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this OpenSSL speak TLS 1.1 at all
    with warnings.catch_warnings():  # deprecated it is: that is the point of the test
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1_1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    return old


def tls_1_1_handshake_possible(client: ssl.SSLContext, cert_files: tuple[str, str]) -> bool:
    """The control: against a server that still allows TLS 1.1, does this client get through?
    Without it, a refused handshake could be our own OpenSSL refusing, and prove nothing."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1
    server.load_cert_chain(*cert_files)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        outcome: list[str] = []

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server.wrap_socket(conn, server_side=True) as tls:
                    outcome.append(tls.version() or "")
            except (ssl.SSLError, OSError) as exc:
                outcome.append(repr(exc))

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                client.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                version = tls.version()
        except (ssl.SSLError, OSError):
            version = None
        thread.join(timeout=10)
    return version == "TLSv1.1"


def test_a_tls_1_1_client_is_refused_and_others_still_served(
    ca: trustme.CA, cert_files: tuple[str, str], inbox: InboxStore
) -> None:
    old = tls_1_1_client(ca)
    if not tls_1_1_handshake_possible(old, cert_files):
        pytest.skip("this OpenSSL cannot speak TLS 1.1 even to a willing server: nothing to refuse")
    with ThreadedIntake(inbox, limits(cert_files)) as running:
        with socket.create_connection((running.host, running.port), timeout=10) as raw_socket:
            reader = raw_socket.makefile("rb")
            assert reader.readline().startswith(b"220 ")
            raw_socket.sendall(b"EHLO old.client.test\r\n")
            while not reader.readline().startswith(b"250 "):
                pass
            raw_socket.sendall(b"STARTTLS\r\n")
            assert reader.readline().startswith(b"220 ")
            # The server ends the handshake (an alert, or closing on the ClientHello).
            with pytest.raises((ssl.SSLError, ConnectionError)):
                old.wrap_socket(raw_socket, server_hostname="127.0.0.1")
        wait_for_no_sessions(running)
        with smtplib.SMTP(running.host, running.port, timeout=30) as client:
            client.starttls(context=client_context(ca))
            refused = client.sendmail("c@example.org", ["support@smilepass.example"], make_mail("new", "ok"))
            assert refused == {}
    assert len(inbox.summaries()) == 1


def test_lmtp_with_starttls(ca: trustme.CA, cert_files: tuple[str, str], inbox: InboxStore) -> None:
    with ThreadedIntake(inbox, limits(cert_files, lmtp=True, require_tls=True)) as running:
        client = smtplib.LMTP(running.host, running.port, timeout=30)
        try:
            code, _ = client.ehlo("client.test")  # smtplib.LMTP sends LHLO
            assert code == 250 and client.has_extn("starttls")
            assert client.mail("customer@example.org")[0] == 530
            client.starttls(context=client_context(ca))
            client.ehlo("client.test")
            assert client.mail("customer@example.org")[0] == 250
            assert client.rcpt("support@smilepass.example")[0] == 250
            assert client.rcpt("billing@smilepass.example")[0] == 250
            replies = [client.data(make_mail("LMTP over TLS", "two recipients")), client.getreply()]
            assert client.noop()[0] == 250  # still in step, still inside TLS
        finally:
            client.close()
    assert [code for code, _ in replies] == [250, 250]
    (item,) = inbox.summaries()
    assert item.source == "lmtp"
    assert item.rcpt_tos == ("support@smilepass.example", "billing@smilepass.example")


def test_swaks_tls(ca: trustme.CA, cert_files: tuple[str, str], inbox: InboxStore, tmp_path: Path) -> None:
    if not SWAKS.exists():
        missing_component("swaks not installed: apt-get install swaks")
    support = subprocess.run([str(SWAKS), "--support"], capture_output=True, text=True)
    if "=== TLS supported" not in support.stdout + support.stderr:
        missing_component("swaks has no TLS: apt-get install libnet-ssleay-perl")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with ThreadedIntake(inbox, limits(cert_files, require_tls=True)) as running:
        done = subprocess.run(
            [str(SWAKS), "--server", f"{running.host}:{running.port}", "--tls", "--tls-verify",
             "--tls-ca-path", str(ca_file), "--tls-protocol", "no_sslv2,no_sslv3,no_tlsv1,no_tlsv1_1",
             "--from", "maria@customer.example", "--to", "support@smilepass.example",
             "--header", "Subject: swaks over TLS"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "<~  250 2.0.0 Ok: queued as" in done.stdout  # swaks marks lines inside TLS with `~`
    (item,) = inbox.summaries()
    assert item.mail_from == "maria@customer.example"


def test_config_checks_the_certificate_and_names_the_key(
    tmp_path: Path, cert_files: tuple[str, str], ca: trustme.CA
) -> None:
    chain, key = cert_files
    other_key = tmp_path / "other.key"
    ca.issue_cert("other.test").private_key_pem.write_to_path(str(other_key))
    url = f"sqlite:///{tmp_path / 'tg.db'}"
    cases = {
        f'tls_certificate = "{chain}"\ntls_key = "{key}"\nrequire_tls = true': None,
        f'tls_certificate = "{chain}"': "smtp.tls_key",
        f'tls_certificate = "{chain}"\ntls_key = "{other_key}"': "smtp.tls_certificate",
        f'tls_certificate = "{tmp_path / "absent.crt"}"\ntls_key = "{key}"': "smtp.tls_certificate",
        "require_tls = true": "smtp.require_tls",
    }
    for smtp_keys, wrong_key in cases.items():
        config = write_config(tmp_path, url, listen="127.0.0.1:2525")
        listen = '[smtp]\nlisten = "127.0.0.1:2525"'
        config.write_text(config.read_text().replace(listen, f"{listen}\n{smtp_keys}"))
        result = ticketgate("check-config", config=config)
        if wrong_key is None:
            assert result.returncode == 0, result.stdout + result.stderr
        else:
            assert result.returncode != 0
            assert wrong_key in result.stdout + result.stderr, (smtp_keys, result.stdout, result.stderr)
