"""`[[forms]]` (SPEC §13 "Web forms"): the web forms whose mail is read for its fields.

Checked here, each under its key (`forms[0].sender`, `forms[1].title_field` …): the sender is one
bare address, not one of the gateway's own (mail from it would be a loop) nor a staff address (a
staff mail is never a form's), and no two entries share it; every label is one line of text with no
colon (the colon ends a label in the body), and no two fields of one form share a label.
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.config.reader import Table
from gateway.config.settings import FormSettings, GatewaySettings, StaffSettings

_LABEL_KEYS = (
    "title_field",
    "description_field",
    "priority_field",
    "category_field",
    "email_field",
    "name_field",
)
_DEFAULTS = FormSettings(sender="")


def read_forms(
    tables: list[Table], gateway: GatewaySettings, staff: StaffSettings
) -> tuple[FormSettings, ...]:
    try:
        ours = GatewayAddresses(gateway.addresses)
    except ValueError:  # already reported under gateway.addresses
        ours = GatewayAddresses(())
    forms: list[FormSettings] = []
    seen: dict[str, str] = {}
    for t in tables:
        sender = t.address("sender") if t.has("sender") else None
        if not t.has("sender"):
            t.required_text("sender", 'the address the form mails from, such as "forms@example.com"')
        if sender is not None:
            key = sender.lower()
            if ours.is_ours(sender):
                t.problem("sender", f"{sender!r} is one of the gateway's own addresses (gateway.addresses)")
            elif staff.is_staff(sender):
                t.problem("sender", f"{sender!r} is a staff address (staff.addresses): staff mail is no form")
            elif key in seen:
                t.problem("sender", f"{sender!r} is already the sender of {seen[key]}")
            else:
                seen[key] = t.path
        labels: dict[str, str] = {}
        used: dict[str, str] = {}
        for name in _LABEL_KEYS:
            label = _label(t, name, getattr(_DEFAULTS, name))
            folded = " ".join(label.split()).casefold()
            if folded in used:
                t.problem(name, f"{label!r} is already the label of {used[folded]}")
            used.setdefault(folded, name)
            labels[name] = label
        others = t.text_list("other_fields", ())
        for index, other in enumerate(others):
            problem = _label_problem(other)
            if problem:
                t.problem(f"other_fields[{index}]", problem)
            elif " ".join(other.split()).casefold() in used:
                t.problem(f"other_fields[{index}]", f"{other!r} is already the label of a read field")
        require = t.boolean("require_authentication", True)
        t.finish()
        if sender is None:
            continue
        forms.append(
            FormSettings(sender=sender, other_fields=others, require_authentication=require, **labels)
        )
    return tuple(forms)


def _label(t: Table, name: str, default: str) -> str:
    value = t.optional_text(name)
    if value is None:
        return default
    problem = _label_problem(value)
    if problem:
        t.problem(name, problem)
        return default
    return value


def _label_problem(label: str) -> str | None:
    if any(char in label for char in ":：\r\n"):
        return (
            "a label is the text before the colon in the form's mail, one line without a colon, "
            f"got {label!r}"
        )
    if len(label) > 60:
        return f"a label is at most 60 characters, got {len(label)}"
    return None
