"""The TLS context SMTP/LMTP intake offers with STARTTLS (SPEC §11).

Built in one place so that loading the config and starting the listener agree on what a usable
certificate is: `check-config` fails on a key that does not match its certificate, instead of the
daemon failing its first STARTTLS hours later. It sits below both config and intake (standard
library only), so config needs nothing of intake to check the files.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def server_tls_context(certificate: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server context with TLS 1.2 as the floor; ValueError says what is wrong with the files.

    No client certificates are asked for (CERT_NONE): mail servers do not present them, and
    aiosmtpd warns about any other mode. Everything else is Python's secure server default.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(certificate), keyfile=str(key))
    except ssl.SSLError as exc:
        raise ValueError(f"not a PEM certificate and matching private key ({exc.reason or exc})") from exc
    except OSError as exc:
        raise ValueError(f"cannot read the certificate or key: {exc}") from exc
    return context
