"""Mails as the real clients and form mailers write them: forwards from Gmail, Outlook (desktop, plain
text, web), Apple Mail and Thunderbird in English, German, French and Spanish, with their own marker
lines, header labels, MIME layouts and headers; forwards with the original attached whole; and the
SmilePass support form's mail. Shared by the unit, property and over-SMTP tests."""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

TRUSTED = "mx.smilepass.example"


@dataclass(frozen=True)
class Labels:
    """One client's forward in one language: the marker line and the labels, in the client's order."""

    marker: str | None
    fields: tuple[tuple[str, str], ...]  # (field, label as written, with its colon and spacing)


# What each client writes, per language. Values of the fields are filled in by `forward_block`.
GMAIL = {
    "en": Labels("---------- Forwarded message ---------",
                 (("from", "From: "), ("date", "Date: "), ("subject", "Subject: "), ("to", "To: "))),
    "de": Labels("---------- Weitergeleitete Nachricht ---------",
                 (("from", "Von: "), ("date", "Date: "), ("subject", "Subject: "), ("to", "To: "))),
    "fr": Labels("---------- Forwarded message ---------",
                 (("from", "De : "), ("date", "Date: "), ("subject", "Subject: "), ("to", "To: "))),
    "es": Labels("---------- Forwarded message ---------",
                 (("from", "De: "), ("date", "Date: "), ("subject", "Subject: "), ("to", "To: "))),
}  # fmt: skip
OUTLOOK_PLAIN = {
    "en": Labels("-----Original Message-----",
                 (("from", "From: "), ("date", "Sent: "), ("to", "To: "), ("subject", "Subject: "))),
    "de": Labels("-----Ursprüngliche Nachricht-----",
                 (("from", "Von: "), ("date", "Gesendet: "), ("to", "An: "), ("subject", "Betreff: "))),
    "fr": Labels("-----Message d'origine-----",
                 (("from", "De : "), ("date", "Envoyé : "), ("to", "À : "), ("subject", "Objet : "))),
    "es": Labels("-----Mensaje original-----",
                 (("from", "De: "), ("date", "Enviado el: "), ("to", "Para: "), ("subject", "Asunto: "))),
}  # fmt: skip
# Outlook desktop's HTML forward (its text part has no marker: the rule is a CSS border) and the web app.
OUTLOOK_HTML = {lang: Labels(None, labels.fields) for lang, labels in OUTLOOK_PLAIN.items()}
OUTLOOK_WEB = {
    "en": OUTLOOK_HTML["en"],
    "de": OUTLOOK_HTML["de"],
    "fr": OUTLOOK_HTML["fr"],
    "es": Labels(None, (("from", "De: "), ("date", "Enviado: "), ("to", "Para: "), ("subject", "Asunto: "))),
}
APPLE = {
    "en": Labels("Begin forwarded message:",
                 (("from", "From: "), ("subject", "Subject: "), ("date", "Date: "), ("to", "To: "))),
    "de": Labels("Anfang der weitergeleiteten Nachricht:",
                 (("from", "Von: "), ("subject", "Betreff: "), ("date", "Datum: "), ("to", "An: "))),
    "fr": Labels("Début du message réexpédié :",
                 (("from", "De: "), ("subject", "Objet: "), ("date", "Date: "), ("to", "À: "))),
    "es": Labels("Inicio del mensaje reenviado:",
                 (("from", "De: "), ("subject", "Asunto: "), ("date", "Fecha: "), ("to", "Para: "))),
}  # fmt: skip
THUNDERBIRD = {
    "en": Labels("-------- Forwarded Message --------",
                 (("subject", "Subject: \t"), ("date", "Date: \t"), ("from", "From: \t"), ("to", "To: \t"))),
    "de": Labels("-------- Weitergeleitete Nachricht --------",
                 (("subject", "Betreff: \t"), ("date", "Datum: \t"), ("from", "Von: \t"), ("to", "An: \t"))),
    "fr": Labels("-------- Message transféré --------",
                 (("subject", "Sujet : \t"), ("date", "Date : \t"), ("from", "De : \t"),
                  ("to", "Pour : \t"))),
    "es": Labels("-------- Mensaje reenviado --------",
                 (("subject", "Asunto: \t"), ("date", "Fecha: \t"), ("from", "De: \t"), ("to", "Para: \t"))),
}  # fmt: skip
CLIENTS = {
    "gmail": GMAIL,
    "outlook": OUTLOOK_PLAIN,
    "outlook-desktop": OUTLOOK_HTML,
    "outlook-web": OUTLOOK_WEB,
    "apple": APPLE,
    "thunderbird": THUNDERBIRD,
}
DATES = {
    "en": "Monday, December 7, 2026 10:15 AM",
    "de": "Montag, 7. Dezember 2026 10:15",
    "fr": "lundi 7 décembre 2026 10:15",
    "es": "lunes, 7 de diciembre de 2026 10:15",
}
FORWARD_PREFIX = {"en": "Fwd: ", "de": "WG: ", "fr": "TR: ", "es": "RV: "}


@dataclass(frozen=True)
class Original:
    """The customer's mail that staff forward."""

    sender_name: str
    sender: str
    subject: str
    body: str
    to: str = "ana@smilepass.example"


def from_value(original: Original, client: str) -> str:
    if client == "outlook" and original.sender_name:
        return f"{original.sender_name} [mailto:{original.sender}]"  # Outlook's plain-text forward
    return f"{original.sender_name} <{original.sender}>" if original.sender_name else f"<{original.sender}>"


def forward_block(original: Original, client: str, lang: str) -> str:
    """The text a client puts under the forwarder's own text: marker, header block, blank line, body."""
    labels = CLIENTS[client][lang]
    values = {
        "from": from_value(original, client),
        "date": DATES[lang],
        "subject": original.subject,
        "to": original.to,
    }
    lines = [labels.marker] if labels.marker else []
    if client == "apple":
        lines.append("")
    if client == "outlook-web":
        lines.append("_" * 32)
    lines += [f"{label}{values[field]}" for field, label in labels.fields]
    return "\n".join(lines) + "\n\n" + original.body


def _html_block(original: Original, client: str, lang: str) -> str:
    labels = CLIENTS[client][lang]
    values = {"from": from_value(original, client), "date": DATES[lang], "subject": original.subject,
              "to": original.to}  # fmt: skip
    rows = "".join(
        f"<b>{html.escape(label.strip())}</b> {html.escape(values[f])}<br>" for f, label in labels.fields
    )
    body = "".join(f"<p>{html.escape(line)}</p>" for line in original.body.splitlines())
    if client.startswith("outlook"):
        return f'<hr><div id="divRplyFwdMsg" dir="ltr"><font>{rows}</font></div><div>{body}</div>'
    if client == "gmail":
        marker = html.escape(labels.marker or "")
        attribution = f'<div dir="ltr" class="gmail_attr">{marker}<br>{rows}</div>'
        return f'<div class="gmail_quote">{attribution}<br>{body}</div>'
    return f"<div>{html.escape(labels.marker or '')}<br>{rows}<br>{body}</div>"


def staff_forward(
    original: Original,
    client: str,
    lang: str = "en",
    *,
    note: str = "",
    staff: str = "Ana Silva <ana@smilepass.example>",
    to: str = "support@smilepass.example",
    images: tuple[tuple[str, bytes], ...] = (),
    authenticated: bool = True,
) -> bytes:
    """A staff member's inline forward as `client` sends it, in `lang`."""
    msg = EmailMessage()
    msg["From"] = staff
    msg["To"] = to
    msg["Subject"] = FORWARD_PREFIX[lang] + original.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="smilepass.example")
    msg["MIME-Version"] = "1.0"
    text = (note + "\n\n" if note else "") + forward_block(original, client, lang) + "\n"
    if client.startswith("outlook"):
        msg["Thread-Topic"] = original.subject
        msg["Thread-Index"] = "AQHZ1234abcdEFGHijklMNOPqrstUV=="
        msg["X-MS-Has-Attach"] = "yes" if images else ""
        msg["Content-Language"] = {"en": "en-US", "de": "de-DE", "fr": "fr-FR", "es": "es-ES"}[lang]
    elif client == "thunderbird":
        msg["User-Agent"] = "Mozilla Thunderbird"
    elif client == "apple":
        msg["X-Mailer"] = "Apple Mail (2.3774.200.91.1.1)"
    if client in ("thunderbird", "outlook"):  # plain-text forwards
        msg.set_content(text)
    else:
        note_html = "".join(f"<div>{html.escape(line)}</div>" for line in note.splitlines())
        msg.set_content(text)
        msg.add_alternative(f"<html><body>{note_html}{_html_block(original, client, lang)}</body></html>",
                            subtype="html")  # fmt: skip
    for name, data in images:
        msg.add_attachment(data, maintype="image", subtype="png", filename=name)
    return _authenticated(msg.as_bytes()) if authenticated else msg.as_bytes()


def customer_mail(
    original: Original, *, images: tuple[tuple[str, bytes], ...] = (), message_id: str | None = None
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"{original.sender_name} <{original.sender}>" if original.sender_name else original.sender
    msg["To"] = original.to
    msg["Subject"] = original.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id or make_msgid(domain="customer.example")
    msg.set_content(original.body)
    for name, data in images:
        msg.add_attachment(data, maintype="image", subtype="png", filename=name)
    return msg


def attached_forward(
    original: Original,
    *,
    note: str = "",
    staff: str = "Ana Silva <ana@smilepass.example>",
    to: str = "support@smilepass.example",
    images: tuple[tuple[str, bytes], ...] = (),
    message_id: str | None = None,
    authenticated: bool = True,
) -> bytes:
    """A forward with the original attached whole (message/rfc822), as Thunderbird's and Gmail's
    "forward as attachment" send it."""
    inner = customer_mail(original, images=images, message_id=message_id)
    msg = EmailMessage()
    msg["From"] = staff
    msg["To"] = to
    msg["Subject"] = "Fwd: " + original.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="smilepass.example")
    msg["User-Agent"] = "Mozilla Thunderbird"
    msg.set_content(note + "\n" if note else "\n")
    msg.add_attachment(inner, disposition="attachment", filename=f"{original.subject}.eml")
    return _authenticated(msg.as_bytes()) if authenticated else msg.as_bytes()


def _authenticated(raw: bytes, domain: str = "smilepass.example") -> bytes:
    """What the deployment's trusted MX puts on top: the mail passed DMARC for its From domain."""
    header = (
        f"Authentication-Results: {TRUSTED}; dkim=pass header.d={domain}; dmarc=pass header.from={domain}\r\n"
    )
    return header.encode() + raw


def smilepass_form(
    *,
    title: str,
    description: str,
    priority: str,
    category: str,
    visitor: str | None = "Maria Lopez <maria@customer.example>",
    image: tuple[str, bytes] | None = None,
    sender: str = "SmilePass Website <forms@smilepass.example>",
    authenticated: bool = True,
    html_table: bool = False,
) -> bytes:
    """The SmilePass support page's form (Title, Description, Priority, Category, Upload Image) as its
    mailer sends it: from the site's address, the visitor in Reply-To, the upload attached."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@smilepass.example"
    if visitor:
        msg["Reply-To"] = visitor
    msg["Subject"] = "New support request from smilepass.example"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="smilepass.example")
    msg["X-Mailer"] = "PHPMailer 6.9.1 (https://github.com/PHPMailer/PHPMailer)"
    fields = [("Title", title), ("Description", description), ("Priority", priority), ("Category", category),
              ("Upload Image", image[0] if image else "")]  # fmt: skip
    if html_table:
        rows = "".join(
            f"<tr><td><strong>{k}:</strong></td><td>{html.escape(v).replace(chr(10), '<br>')}</td></tr>"
            for k, v in fields
        )
        msg.set_content(f"<html><body><table>{rows}</table></body></html>", subtype="html")
    else:
        msg.set_content("\n".join(f"{k}: {v}" for k, v in fields) + "\n")
    if image is not None:
        msg.add_attachment(image[1], maintype="image", subtype="png", filename=image[0])
    return _authenticated(msg.as_bytes()) if authenticated else msg.as_bytes()
