"""`[[imap]] oauth2 = {...}` and `processing.imap_reconcile_minutes` (SPEC §14): the presets fill
in what a provider fixes, the grant follows from what is given, and every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import load_settings, validate

HEAD = (
    '[gateway]\naddresses = ["support@example.com"]\nsecret = "a-test-secret-that-is-long-enough"\n'
    '[[imap]]\nhost = "imap.example.com"\nusername = "support@example.com"\n'
)


def write(tmp_path: Path, oauth2: str, extra: str = "") -> Path:
    path = tmp_path / "ticketgate.toml"
    path.write_text(HEAD + f"oauth2 = {{ {oauth2} }}\n" + extra, encoding="utf-8")
    return path


def problems(tmp_path: Path, oauth2: str, extra: str = "") -> dict[str, str]:
    return {error.key: error.problem for error in validate(write(tmp_path, oauth2, extra), {})}


def test_microsoft_app_only_needs_only_tenant_client_and_secret(tmp_path: Path) -> None:
    text = 'provider = "microsoft", tenant = "contoso.onmicrosoft.com", client_id = "c", client_secret = "s"'
    (account,) = load_settings(write(tmp_path, text), {}).imap
    assert account.oauth2 is not None
    assert account.oauth2.grant == "client_credentials"
    assert (
        account.oauth2.token_url
        == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    assert account.oauth2.scope == "https://outlook.office365.com/.default"
    assert "s" not in repr(account.oauth2).replace("scope", "").split("client_secret")[1][:5]


def test_google_is_the_refresh_token_grant_with_its_presets(tmp_path: Path) -> None:
    text = 'provider = "google", client_id = "c", client_secret = "s", refresh_token_command = "pass gmail"'
    (account,) = load_settings(write(tmp_path, text), {}).imap
    assert account.oauth2 is not None
    assert (account.oauth2.grant, account.oauth2.token_url, account.oauth2.scope) == (
        "refresh_token",
        "https://oauth2.googleapis.com/token",
        "https://mail.google.com/",
    )


def test_microsoft_delegated_uses_the_common_tenant_and_the_user_scope(tmp_path: Path) -> None:
    (account,) = load_settings(
        write(tmp_path, 'provider = "microsoft", client_id = "c", refresh_token = "r"'), {}
    ).imap
    assert account.oauth2 is not None and account.oauth2.grant == "refresh_token"
    assert "/common/" in account.oauth2.token_url
    assert account.oauth2.scope == "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"


@pytest.mark.parametrize(
    ("oauth2", "key", "words"),
    [
        (
            'provider = "microsoft", client_id = "c", client_secret = "s"',
            "tenant",
            "required for Microsoft client",
        ),
        ('provider = "yahoo", client_id = "c"', "provider", "unknown provider 'yahoo'"),
        ('client_id = "c", client_secret = "s"', "provider", "required"),
        (
            'provider = "generic", token_url = "https://t.example/t", client_id = "c", client_secret = "s", '
            'client_secret_command = "x"',
            "client_secret_command",
            "not both",
        ),
        (
            'provider = "generic", token_url = "https://t.example/t", client_id = "c", refresh_token = "r", '
            'refresh_token_command = "x"',
            "refresh_token_command",
            "not both",
        ),
        ('provider = "generic", client_id = "c", client_secret = "s"', "token_url", "required"),
        ('provider = "google", client_id = "c", client_secret = "s"', "refresh_token", "user tokens"),
        ('provider = "google", client_id = "c", refresh_token = "r", tenant = "x"', "tenant", "only used"),
        (
            'provider = "generic", token_url = "https://t.example/t", client_id = "c"',
            "client_secret",
            "required",
        ),
        (
            'provider = "generic", token_url = "http://i.example/t", client_id = "c", refresh_token = "r"',
            "token_url",
            "must be https",
        ),
        ('provider = "google", client_id = "c", refresh_token = "r", scopes = "x"', "scopes", "did you mean"),
    ],
)
def test_mistakes_name_their_key(tmp_path: Path, oauth2: str, key: str, words: str) -> None:
    found = problems(tmp_path, oauth2)
    assert words in found[f"imap[0].oauth2.{key}"], found


def test_oauth2_with_a_password_is_one_login_too_many(tmp_path: Path) -> None:
    found = problems(
        tmp_path, 'provider = "google", client_id = "c", refresh_token = "r"', 'password = "p"\n'
    )
    assert "exactly one of" in found["imap[0].oauth2"] or "exactly one of" in found["imap[0].password"]


def test_imap_reconcile_minutes_lives_in_processing(tmp_path: Path) -> None:
    path = tmp_path / "ticketgate.toml"
    path.write_text(HEAD + 'password = "p"\n[processing]\nimap_reconcile_minutes = 0\n', encoding="utf-8")
    assert load_settings(path, {}).processing.imap_reconcile_minutes == 0
    path.write_text(HEAD + 'password = "p"\n', encoding="utf-8")
    assert load_settings(path, {}).processing.imap_reconcile_minutes == 10


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12))
def test_any_other_provider_is_refused_naming_the_key(name: str) -> None:
    import tempfile

    if name in ("microsoft", "google", "generic"):
        return
    with tempfile.TemporaryDirectory() as folder:
        found = problems(Path(folder), f'provider = "{name}", client_id = "c", refresh_token = "r"')
    assert "unknown provider" in found["imap[0].oauth2.provider"]
