"""`[[imap]] oauth2 = { provider, token_url, client_id, client_secret | client_secret_command,
refresh_token | refresh_token_command, tenant, scope }` (SPEC §14, docs/admin/imap-oauth2.md).

The grant follows from what is given: a refresh token (or its command) means the refresh-token
grant (Google, Microsoft delegated, most others); none means the client-credentials grant
(Microsoft 365 app-only access). The presets fill in what a provider fixes, so a Microsoft 365
mailbox needs only tenant, client_id and a secret. Every problem names its key.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from gateway.config.reader import Table, one_of
from gateway.config.settings import OAuth2Settings

Provider = Literal["microsoft", "google", "generic"]
PROVIDERS: tuple[Provider, ...] = ("microsoft", "google", "generic")

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GOOGLE_SCOPE = "https://mail.google.com/"
MICROSOFT_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
# App-only (client credentials) asks for the resource's `.default`: the application permissions an
# administrator granted (IMAP.AccessAsApp). Delegated asks for the user's IMAP permission itself.
MICROSOFT_APP_SCOPE = "https://outlook.office365.com/.default"
MICROSOFT_DELEGATED_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
MICROSOFT_DELEGATED_TENANT = "common"


def read_oauth2(t: Table) -> OAuth2Settings | None:
    """The `oauth2` inline table of one `[[imap]]` account; None when a required part is missing
    (the problem is recorded, so loading fails naming the key)."""
    provider_text = t.text("provider", "").strip().lower()
    provider = next((p for p in PROVIDERS if p == provider_text), None)
    if provider is None:
        if provider_text:
            t.problem("provider", f"unknown provider {provider_text!r}; expected one of {one_of(PROVIDERS)}")
        else:
            t.problem("provider", f"required — one of {one_of(PROVIDERS)}")
    client_id = t.required_text("client_id", "the application (client) id registered with the provider")
    secret, secret_command = _one_of_pair(t, "client_secret", "client_secret_command")
    refresh, refresh_command = _one_of_pair(t, "refresh_token", "refresh_token_command")
    tenant = t.optional_text("tenant")
    scope = t.optional_text("scope")
    token_url = t.optional_text("token_url")
    t.finish()
    grant: Literal["client_credentials", "refresh_token"] = (
        "refresh_token" if refresh is not None or refresh_command is not None else "client_credentials"
    )
    if provider is None:
        return None
    if tenant is not None and provider != "microsoft":
        t.problem("tenant", f'only used with provider = "microsoft" (this one is {provider!r})')
    if grant == "client_credentials" and secret is None and secret_command is None:
        t.problem(
            "client_secret",
            "required for the client-credentials grant (no refresh_token given): "
            "give client_secret or client_secret_command",
        )
    if provider == "microsoft":
        if grant == "client_credentials" and tenant is None:
            t.problem(
                "tenant",
                "required for Microsoft client credentials (app-only): your directory (tenant) id "
                'or domain, such as "contoso.onmicrosoft.com"',
            )
        tenant_part = tenant or MICROSOFT_DELEGATED_TENANT
        token_url = token_url or MICROSOFT_TOKEN_URL.format(tenant=tenant_part)
        scope = scope or (MICROSOFT_APP_SCOPE if grant == "client_credentials" else MICROSOFT_DELEGATED_SCOPE)
    elif provider == "google":
        if grant == "client_credentials":
            t.problem(
                "refresh_token",
                "required for Google: Gmail's IMAP takes only user tokens (give refresh_token or "
                "refresh_token_command; see docs/admin/imap-oauth2.md for getting one)",
            )
        token_url = token_url or GOOGLE_TOKEN_URL
        scope = scope or GOOGLE_SCOPE
    elif token_url is None:
        t.problem("token_url", 'required with provider = "generic": the provider\'s token endpoint')
    if token_url is not None:
        problem = _url_problem(token_url)
        if problem:
            t.problem("token_url", problem)
    if not client_id or token_url is None:
        return None
    return OAuth2Settings(
        provider=provider,
        grant=grant,
        token_url=token_url,
        client_id=client_id,
        client_secret=secret,
        client_secret_command=secret_command,
        refresh_token=refresh,
        refresh_token_command=refresh_command,
        scope=scope,
        tenant=tenant,
    )


def _one_of_pair(t: Table, value_key: str, command_key: str) -> tuple[str | None, str | None]:
    value, command = t.optional_text(value_key), t.optional_text(command_key)
    if value is not None and command is not None:
        t.problem(command_key, f"give {value_key} or {command_key}, not both")
    return value, command


def _url_problem(url: str) -> str | None:
    """Why `url` cannot be a token endpoint: it must be https (the secret goes there), or plain
    http on loopback only (a local test endpoint or a token proxy on the same machine)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"expected an https:// URL, got {url!r}"
    if parts.scheme == "http" and not (
        parts.hostname in ("localhost", "::1") or parts.hostname.startswith("127.")
    ):
        return f"must be https:// (the client secret is sent there), got {url!r}"
    return None
