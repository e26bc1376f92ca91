"""The config keys of SPEC §11 this branch reads: TLS on intake, connections per address, and the
header and MIME limits; their defaults, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import trustme

from gateway.config import embedded_defaults, load_settings, validate

HEAD = '[gateway]\naddresses = ["support@example.com"]\nsecret = "a-test-secret-that-is-long-enough"\n'


def keys_with_problems(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "ticketgate.toml"
    path.write_text(HEAD + text, encoding="utf-8")
    return {error.key: error.problem for error in validate(path, {})}


def test_defaults_are_those_of_spec_section_11() -> None:
    settings = embedded_defaults({})
    assert settings.smtp.max_connections_per_ip == 20
    assert (settings.smtp.tls_certificate, settings.smtp.tls_key, settings.smtp.require_tls) == (
        None,
        None,
        False,
    )
    limits = settings.limits
    assert (limits.max_header_bytes, limits.max_mime_parts, limits.max_mime_depth) == (262144, 500, 20)


def test_values_are_read(tmp_path: Path) -> None:
    cert = trustme.CA().issue_cert("mx.example.com")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "mx.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "mx.key"))
    path = tmp_path / "ticketgate.toml"
    path.write_text(
        HEAD
        + f'[smtp]\nmax_connections_per_ip = 3\ntls_certificate = "{tmp_path / "mx.crt"}"\n'
        + f'tls_key = "{tmp_path / "mx.key"}"\nrequire_tls = true\n'
        + "[limits]\nmax_header_bytes = 1000\nmax_mime_parts = 7\nmax_mime_depth = 4\n",
        encoding="utf-8",
    )
    settings = load_settings(path, {})
    assert settings.smtp.max_connections_per_ip == 3
    assert settings.smtp.tls_certificate == str(tmp_path / "mx.crt") and settings.smtp.require_tls
    assert (settings.limits.max_header_bytes, settings.limits.max_mime_parts) == (1000, 7)
    assert settings.limits.max_mime_depth == 4
    assert "tls_key" not in repr(settings.smtp)  # a path, but kept out of logs with the secrets


def test_bad_values_name_their_keys(tmp_path: Path) -> None:
    found = keys_with_problems(
        tmp_path,
        '[smtp]\nmax_connections_per_ip = 0\ntls_key = "/nonexistent/key.pem"\nrequire_tls = "yes"\n'
        "[limits]\nmax_header_bytes = -1\nmax_mime_parts = 0\nmax_mime_depth = 1.5\n",
    )
    assert set(found) == {
        "smtp.max_connections_per_ip",
        "smtp.tls_certificate",  # required with tls_key
        "smtp.require_tls",
        "limits.max_header_bytes",
        "limits.max_mime_parts",
        "limits.max_mime_depth",
    }
    assert "required with smtp.tls_key" in found["smtp.tls_certificate"]
