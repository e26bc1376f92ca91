"""Signed and encrypted mail (SPEC §13): which parts are signatures, which are ciphertext, and the
content of an opaque-signed S/MIME message.

- A signature (`application/pkcs7-signature`, `application/x-pkcs7-signature`,
  `application/pgp-signature`, and in a `multipart/signed` a later part of the `protocol` type or
  named `.p7s`, `.sig` or `.asc`) is neither
  text, attachment nor screenshot, wherever it sits: mailing lists and gateways rewrite
  `multipart/signed` into `multipart/mixed`, and the signature must not turn into a file then.
  ticketgate does not verify signatures: a signature says who signed, not that staff may act
  (staff are authenticated by DKIM or `Authentication-Results`, SPEC §5).
- Ciphertext (PGP/MIME `multipart/encrypted`; S/MIME `application/pkcs7-mime` or its `x-` form,
  or `application/octet-stream` named `*.p7m`, holding enveloped data) cannot be read without the
  recipient's key: the mail says "(encrypted message)" and its ciphertext is no attachment.
- Opaque-signed S/MIME (`smime-type=signed-data`: the content inside the PKCS#7 structure, as
  Outlook sends it without "clear text signed") is read: asn1crypto (MIT, pure Python) takes the
  content out of the CMS SignedData, and it is read as the mail's body like any MIME entity. Where
  the structure cannot be read, the part stays an attachment, as before.

Which of enveloped or signed data a `.p7m` holds is read from its `smime-type` parameter, or, where
that is missing (older Outlook), from the CMS content type inside.
"""

from __future__ import annotations

from email.message import Message

SIGNATURE_TYPES = frozenset(
    {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
)
_PKCS7_MIME = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
_ENVELOPED = frozenset({"enveloped-data", "authenveloped-data"})
ENCRYPTED_TEXT = "(encrypted message)"


def is_signature(part: Message) -> bool:
    """A detached signature, by its declared type (a `.p7s` name too, the RFC 8551 §3.2.2 form)."""
    ctype = part.get_content_type()
    if ctype in SIGNATURE_TYPES:
        return True
    return ctype == "application/octet-stream" and _name(part).endswith(".p7s")


def signed_children(part: Message, children: list[Message]) -> list[Message]:
    """The parts of a `multipart/signed` to read: the first (the signed content, RFC 1847), and any
    later one that is not the signature by its type, the `protocol` parameter's type, or its name
    (`.p7s`, `.sig`, `.asc`): a broken mail's extra file is kept rather than lost."""
    protocol = str(part.get_param("protocol") or "").strip().lower()

    def signature(child: Message) -> bool:
        ctype = child.get_content_type()
        return is_signature(child) or ctype == protocol or _name(child).endswith(_SIGNATURE_NAMES)

    return [child for index, child in enumerate(children) if index == 0 or not signature(child)]


_SIGNATURE_NAMES = (".p7s", ".sig", ".asc")


def is_pkcs7(part: Message) -> bool:
    """An S/MIME `.p7m`: enveloped (encrypted) or opaque-signed data, to be told apart by `cms_kind`."""
    ctype = part.get_content_type()
    if ctype in _PKCS7_MIME:
        return True
    return ctype == "application/octet-stream" and _name(part).endswith(".p7m")


def encryption(part: Message, payload: bytes | None = None) -> str | None:
    """ "PGP/MIME" or "S/MIME" when ``part`` is ciphertext, else None.

    ``payload`` (the decoded body of a `.p7m`) is needed only when its `smime-type` is missing.
    """
    ctype = part.get_content_type()
    if ctype == "multipart/encrypted":
        protocol = str(part.get_param("protocol") or "").lower()
        return "PGP/MIME" if "pgp" in protocol or not protocol else f"multipart/encrypted ({protocol})"
    if not is_pkcs7(part):
        return None
    smime_type = str(part.get_param("smime-type") or "").strip().lower()
    if smime_type:
        return "S/MIME" if smime_type in _ENVELOPED else None
    return "S/MIME" if payload is not None and cms_kind(payload) in _CMS_ENCRYPTED else None


_CMS_ENCRYPTED = frozenset({"enveloped_data", "authenticated_enveloped_data", "encrypted_data"})


def is_opaque_signed(part: Message, payload: bytes) -> bool:
    if not is_pkcs7(part):
        return False
    smime_type = str(part.get_param("smime-type") or "").strip().lower()
    if smime_type:
        return smime_type == "signed-data"
    return cms_kind(payload) == "signed_data"


def cms_kind(payload: bytes) -> str | None:
    """The CMS content type of a PKCS#7 structure ("signed_data", "enveloped_data" ...), or None."""
    from asn1crypto import cms  # imported when a mail has a .p7m, not on every mail's path

    try:
        kind = cms.ContentInfo.load(payload)["content_type"].native
    except Exception:  # hostile bytes: asn1crypto raises ValueError, TypeError and its own errors
        return None
    return kind if isinstance(kind, str) else None


def signed_content(payload: bytes) -> bytes | None:
    """The MIME entity inside an opaque-signed PKCS#7 (CMS SignedData), or None where it is unreadable
    or detached (no content inside)."""
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(payload)
        if info["content_type"].native != "signed_data":
            return None
        content = info["content"]["encap_content_info"]["content"].native
    except Exception:  # hostile bytes, as in cms_kind
        return None
    return content if isinstance(content, bytes) and content.strip() else None


def _name(part: Message) -> str:
    try:
        name = part.get_filename() or part.get_param("name") or ""
    except (ValueError, LookupError, UnicodeError):
        return ""
    return str(name).strip().lower()
