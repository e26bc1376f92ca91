"""The built-in OAuth2 login for IMAP (SPEC §14) against a real Dovecot whose XOAUTH2 passdb asks a
local introspection endpoint, and a real token endpoint on loopback that can fail on cue: the
client-credentials and refresh-token grants log in and take mail in; a failing endpoint (garbage,
HTTP error, hang) stops only its own mailbox, with back-off, and `status` says why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.config import OAuth2Settings, load_settings
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.intake.imap import ImapPoller
from gateway.intake.oauth2_token import OAuth2TokenSource, TokenUnavailable
from gateway.store.imap_health import ImapHealthStore, read_imap_health
from gateway.store.imap_state import ImapStateStore
from tests.helpers import free_port, ticketgate, write_config
from tests.integration.dovecot import Dovecot, TokenIntrospection, running_dovecot
from tests.integration.test_imap_intake import (
    FAST,
    RunningPoller,
    account_for,
    count,
    mail,
    poller_for,
    runtime,  # noqa: F401  (the fixture)
    wait_for,
)
from tests.integration.token_endpoint import TokenEndpoint

pytestmark = pytest.mark.timeout(60)

GOOD = "ya29.good-token"


@pytest.fixture
def endpoint() -> Iterator[TokenEndpoint]:
    served = TokenEndpoint(access_token=GOOD)
    yield served
    served.close()


@pytest.fixture
def oauth_dovecot() -> Iterator[Dovecot]:
    introspection = TokenIntrospection(good_token=GOOD, username="support")
    try:
        with running_dovecot(introspection_url=introspection.url, users=("support", "billing")) as server:
            yield server
    finally:
        introspection.close()


def microsoft_app_only(endpoint: TokenEndpoint) -> OAuth2Settings:
    return OAuth2Settings(
        provider="microsoft",
        grant="client_credentials",
        token_url=endpoint.url,
        client_id="11111111-2222-3333-4444-555555555555",
        client_secret="app-secret",
        client_secret_command=None,
        refresh_token=None,
        refresh_token_command=None,
        scope="https://outlook.office365.com/.default",
        tenant="contoso.onmicrosoft.com",
    )


def test_client_credentials_log_in_and_the_token_expiry_is_recorded(
    runtime: Runtime,  # noqa: F811
    oauth_dovecot: Dovecot,
    endpoint: TokenEndpoint,
) -> None:
    oauth_dovecot.append(mail("Via app-only OAuth2"))
    account = account_for(oauth_dovecot, password=None, oauth2=microsoft_app_only(endpoint))
    health = ImapHealthStore(runtime.engine)
    with poller_for(runtime, account, on_token=health.token_recorder("support")):
        wait_for(lambda: count(oauth_dovecot, "Processed") == 1, what="mail via the built-in token")
    assert endpoint.requests[0] == {
        "grant_type": "client_credentials",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "client_secret": "app-secret",
        "scope": "https://outlook.office365.com/.default",
    }
    row = read_imap_health(runtime.engine)["support"]
    assert row["token_expires_at"] is not None and row["token_error"] is None


def test_refresh_token_grant_uses_the_command_and_then_the_rotated_token(
    runtime: Runtime,  # noqa: F811
    oauth_dovecot: Dovecot,
    endpoint: TokenEndpoint,
) -> None:
    settings = replace(
        microsoft_app_only(endpoint),
        provider="google",
        grant="refresh_token",
        client_secret=None,
        client_secret_command="echo google-secret",
        refresh_token_command="echo 1//first-refresh-token",
        scope="https://mail.google.com/",
        tenant=None,
    )
    endpoint.new_refresh_token = "1//rotated"
    source = OAuth2TokenSource(settings, timeout=2)
    assert source.token() == GOOD
    source.forget()
    assert source.token() == GOOD
    first, second = endpoint.requests
    assert first["grant_type"] == "refresh_token" and first["refresh_token"] == "1//first-refresh-token"
    assert first["client_secret"] == "google-secret" and first["scope"] == "https://mail.google.com/"
    assert second["refresh_token"] == "1//rotated"
    oauth_dovecot.append(mail("Via Gmail-style OAuth2"))
    with poller_for(runtime, account_for(oauth_dovecot, password=None, oauth2=settings)):
        wait_for(lambda: count(oauth_dovecot, "Processed") == 1, what="mail via the refresh-token grant")


def test_a_token_is_cached_and_refreshed_before_it_expires(endpoint: TokenEndpoint) -> None:
    now = [1_000_000.0]
    endpoint.expires_in = 3600
    source = OAuth2TokenSource(microsoft_app_only(endpoint), timeout=2, clock=lambda: now[0])
    source.token()
    now[0] += 3000  # 10 minutes before expiry: still cached
    source.token()
    assert len(endpoint.requests) == 1
    now[0] += 400  # under 5 minutes left: refreshed before it runs out
    source.token()
    assert len(endpoint.requests) == 2


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("garbage", "gave no access_token"),
        ("http500", "answered HTTP 500"),
        ("invalid_grant", "refused: AADSTS70000: token revoked"),
        ("hang", "did not answer within 0.5s"),
    ],
)
def test_a_failing_token_endpoint_stops_only_its_mailbox_with_back_off(
    runtime: Runtime,  # noqa: F811
    oauth_dovecot: Dovecot,
    endpoint: TokenEndpoint,
    mode: str,
    reason: str,
) -> None:
    endpoint.mode = mode
    endpoint.hang_seconds = 2.0
    oauth_dovecot.append(mail("Waits for a token"))
    oauth_dovecot.append(mail("For billing, by password"), user="billing")
    failing = account_for(oauth_dovecot, password=None, oauth2=microsoft_app_only(endpoint))
    other = account_for(oauth_dovecot, name="billing", username="billing")
    health = ImapHealthStore(runtime.engine)
    timing = replace(FAST, token_timeout=0.5, reconnect_base=0.2, reconnect_cap=0.4)
    poller = ImapPoller(
        failing,
        ImapStateStore(runtime.engine),
        max_message_size=MIB,
        timing=timing,
        on_token=health.token_recorder("support"),
    )
    with RunningPoller(poller) as running, poller_for(runtime, other, name="imap-billing"):
        wait_for(
            lambda: len(oauth_dovecot.messages("Processed", user="billing")) == 1, what="the other mailbox"
        )
        wait_for(lambda: len(endpoint.requests) >= 3, what="retries")
        assert running.thread.is_alive() and count(oauth_dovecot, "INBOX") == 1
        asked = len(endpoint.requests)
        endpoint.mode = "ok"
        wait_for(lambda: count(oauth_dovecot, "Processed") == 1, what="mail once the endpoint works")
    assert asked < 20  # back-off, not a busy loop
    row = read_imap_health(runtime.engine)["support"]
    assert row["token_error"] is None and row["token_expires_at"] is not None


def test_status_shows_the_token_expiry_and_the_last_refresh_error(
    tmp_path: Path, endpoint: TokenEndpoint
) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'tg.db'}", listen=f"127.0.0.1:{free_port()}")
    built = build_runtime(load_settings(config))
    health = ImapHealthStore(built.engine)
    source = OAuth2TokenSource(
        microsoft_app_only(endpoint), timeout=2, on_change=health.token_recorder("support")
    )
    source.token()
    endpoint.mode = "http500"
    source.forget()
    with pytest.raises(TokenUnavailable):
        source.token()
    built.close()
    done = ticketgate("status", "--json", config=config)
    assert done.stdout, done.stderr
    box = json.loads(done.stdout)["imap_health"]["support"]
    assert box["token_expires_at"] and "answered HTTP 500" in box["token_error"]
    text = ticketgate("status", config=config).stdout
    assert "token expires" in text and "answered HTTP 500" in text


MIB = 1024 * 1024
