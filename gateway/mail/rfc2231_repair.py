"""Makes MIME parameters the email package cannot read readable: one parameter given both whole and
in sections (RFC 2231).

`boundary*=utf-8''abc; boundary*0=def` names the same parameter twice, once as one extended value and
once as the first of its sections. The email package sorts a parameter's sections by number and
meets `None` beside `0` (`email.utils.decode_params`): a `TypeError` at the first read of any
parameter of that field, already while parsing when it is a multipart's boundary. Such a mail was
quarantined with that `TypeError` as its reason. Here, before anything parses the mail, of such a
parameter only the form given first is kept (the whole value, or all its sections) and the other
dropped, so the field reads as if the sender had written it once, and the mail becomes a ticket;
the drop is noted as a defect. Which form is right cannot be known: the first is what a reader
stopping at the first value takes, and a mailer that writes both writes the same value twice.

Only `Content-Type` and `Content-Disposition` fields are looked at (the ones whose parameters are
read), wherever such a line starts: in every header section of the mail, and in a body line that
looks like one only when it carries the same conflict. Standard library only, as rawmail.py.
"""

from __future__ import annotations

import re

# A Content-Type or Content-Disposition field at the start of a line, with its continuation lines.
_FIELD = re.compile(
    rb"^(?:content-type|content-disposition)[ \t]*:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*",
    re.IGNORECASE | re.MULTILINE,
)
# One extended or sectioned parameter: `;` name `*` [number] [`*`] `=` value (quoted or a token), the
# name as the email package reads one (ASCII word characters: `x-a*0` is a plain parameter to it);
# group 2, the section number, is None for the whole (unnumbered) form `name*=`.
_PARAMETER = re.compile(
    rb';[ \t\r\n]*(\w+)\*([0-9]+)?\*?[ \t\r\n]*=[ \t\r\n]*(?:"(?:[^"\\]|\\.)*"|[^;\s]*)',
)


def repair_mixed_sections(data: bytes, defects: list[str]) -> bytes:
    """`data` with every parameter given both whole and in sections reduced to the form given first;
    `data` itself (the same object) when none is."""
    if b"*=" not in data:  # no unnumbered extended parameter anywhere: the usual case, one scan
        return data
    changed = False

    def repaired(field: re.Match[bytes]) -> bytes:
        nonlocal changed
        found = list(_PARAMETER.finditer(field.group(0)))
        forms: dict[bytes, list[bool]] = {}  # name: is each occurrence, in order, the whole form?
        for match in found:
            forms.setdefault(match.group(1).lower(), []).append(match.group(2) is None)
        mixed = {name: whole[0] for name, whole in forms.items() if len(set(whole)) == 2}
        if not mixed:
            return field.group(0)
        changed = True
        text = field.group(0)
        for match in reversed(found):  # from the end, so earlier positions stay right
            name = match.group(1).lower()
            if name in mixed and (match.group(2) is None) != mixed[name]:
                text = text[: match.start()] + text[match.end() :]
        for name, whole_first in mixed.items():
            label = name.decode("ascii", "replace")
            kept, dropped = (f"{label}*=", f"{label}*0…") if whole_first else (f"{label}*0…", f"{label}*=")
            defects.append(
                f"RFC 2231 parameter {label} given whole and in sections: kept {kept}, dropped {dropped}"
            )
        return text

    result = _FIELD.sub(repaired, data)
    return result if changed else data
