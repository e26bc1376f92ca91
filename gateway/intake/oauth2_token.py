"""The built-in OAuth2 access token of one `[[imap]]` account (`oauth2 = {...}`, SPEC §14).

requests-oauthlib does the protocol (oauthlib builds the grant's request and checks the answer: an
`error` response, a missing `access_token`, a token type other than Bearer); this module adds what a
daemon needs around it: a cache that refreshes a token before it expires, a timeout on every call
(a hanging endpoint must not hang the poller), and one exception type, `TokenUnavailable`, whose
message says what went wrong in a line, for the log and `status`. The poller treats it as a failed
login: that mailbox backs off and retries; the other mailboxes go on.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.config import OAuth2Settings

log = logging.getLogger(__name__)

# Refresh this long before expiry (or at half the lifetime, for tokens shorter than twice that).
REFRESH_MARGIN_SECONDS = 300.0
DEFAULT_LIFETIME_SECONDS = 3600.0  # when the endpoint leaves out expires_in (RFC 6749 allows it)


class TokenUnavailable(Exception):
    """No access token could be had; the message is one line naming the cause."""


@dataclass(frozen=True)
class TokenState:
    """What `status` shows: the current token's expiry and the last refresh error."""

    expires_at: datetime | None
    refreshed: bool
    error: str | None


class OAuth2TokenSource:
    """Gives a valid access token for one account, fetching or refreshing it when needed."""

    def __init__(
        self,
        settings: OAuth2Settings,
        *,
        timeout: float = 30.0,
        command_timeout: float = 60.0,
        on_change: Callable[[TokenState], None] = lambda state: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._timeout = timeout
        self._command_timeout = command_timeout
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._rotated_refresh_token: str | None = None  # a new one the endpoint handed back

    @property
    def expires_at(self) -> datetime | None:
        return datetime.fromtimestamp(self._expires_at, UTC) if self._token else None

    def token(self) -> str:
        """A token valid for a while yet: the cached one, or a fresh one; `TokenUnavailable` else."""
        with self._lock:
            if self._token is not None and self._clock() < self._refresh_at:
                return self._token
            try:
                answer = self._fetch()
            except TokenUnavailable as exc:
                self._on_change(TokenState(self.expires_at, refreshed=False, error=str(exc)))
                raise
            self._store(answer)
            self._on_change(TokenState(self.expires_at, refreshed=True, error=None))
            assert self._token is not None
            return self._token

    def forget(self) -> None:
        """Drop the cached token (the server refused it: revoked, or its rights changed)."""
        with self._lock:
            self._token = None

    # --- the request ---------------------------------------------------------------------------

    def _fetch(self) -> dict[str, Any]:
        settings = self.settings
        # Imported here: requests and oauthlib cost a quarter second, needed only by `serve` with
        # a mailbox that uses them (CLI start-up stays light).
        import requests
        from oauthlib.oauth2 import BackendApplicationClient, OAuth2Error
        from oauthlib.oauth2.rfc6749.errors import MissingTokenError
        from requests_oauthlib import OAuth2Session

        if settings.token_url.startswith("http://"):
            # oauthlib refuses plain http; config allows it only on loopback (a local token proxy
            # or a test endpoint), where nothing crosses the network.
            os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
        secret = self._secret("client_secret", settings.client_secret, settings.client_secret_command)
        scope = settings.scope.split() if settings.scope else None
        try:
            if settings.grant == "client_credentials":
                session = OAuth2Session(client=BackendApplicationClient(client_id=settings.client_id))
                _check_status(session)
                return dict(
                    session.fetch_token(
                        settings.token_url,
                        client_id=settings.client_id,
                        client_secret=secret,
                        include_client_id=True,
                        scope=scope,
                        timeout=self._timeout,
                    )
                )
            refresh = self._rotated_refresh_token or self._secret(
                "refresh_token", settings.refresh_token, settings.refresh_token_command
            )
            session = OAuth2Session(client_id=settings.client_id, scope=scope)
            _check_status(session)
            extra = {"client_id": settings.client_id}
            if secret is not None:
                extra["client_secret"] = secret
            return dict(
                session.refresh_token(
                    settings.token_url, refresh_token=refresh, timeout=self._timeout, **extra
                )
            )
        except requests.Timeout:
            raise TokenUnavailable(
                f"token endpoint {settings.token_url} did not answer within {self._timeout:g}s"
            ) from None
        except requests.RequestException as exc:
            raise TokenUnavailable(f"token endpoint {settings.token_url} unreachable: {_line(exc)}") from None
        except MissingTokenError:
            raise TokenUnavailable(
                f"token endpoint {settings.token_url} gave no access_token (not a token answer)"
            ) from None
        except OAuth2Error as exc:
            detail = exc.description or exc.error
            raise TokenUnavailable(f"token endpoint {settings.token_url} refused: {detail}") from None
        except (ValueError, KeyError, TypeError) as exc:  # not JSON, not an object, no access_token…
            raise TokenUnavailable(
                f"token endpoint {settings.token_url} gave no usable token: {_line(exc)}"
            ) from None

    def _secret(self, key: str, value: str | None, command: str | None) -> str | None:
        if command is None:
            return value
        from gateway.intake.imap import LoginFailed, run_secret_command

        try:
            return run_secret_command(command, key=f"oauth2.{key}_command", timeout=self._command_timeout)
        except LoginFailed as exc:
            raise TokenUnavailable(str(exc)) from None

    def _store(self, answer: dict[str, Any]) -> None:
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise TokenUnavailable(f"token endpoint {self.settings.token_url} gave no access_token")
        try:
            lifetime = float(answer.get("expires_in") or DEFAULT_LIFETIME_SECONDS)
        except (TypeError, ValueError):
            lifetime = DEFAULT_LIFETIME_SECONDS
        now = self._clock()
        self._token = token
        self._expires_at = now + lifetime
        self._refresh_at = now + max(lifetime - REFRESH_MARGIN_SECONDS, lifetime / 2)
        new_refresh = answer.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh and self.settings.grant == "refresh_token":
            self._rotated_refresh_token = new_refresh  # providers that rotate them void the old one
        log.info("oauth2: new access token from %s, valid for %.0fs", self.settings.token_url, lifetime)


def _check_status(session: Any) -> None:
    """An HTTP error whose body is not an OAuth2 error answer is named by its status, not parsed."""

    def hook(response: Any) -> Any:
        if response.status_code >= 400:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if not (isinstance(answer, dict) and "error" in answer):
                raise TokenUnavailable(f"token endpoint {response.url} answered HTTP {response.status_code}")
        return response

    session.register_compliance_hook("access_token_response", hook)
    session.register_compliance_hook("refresh_token_response", hook)


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
