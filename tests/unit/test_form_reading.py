"""A web form's mail read for its fields (gateway/mail/forms.py) and planned into a ticket
(gateway/pipeline/form_plan.py); the `[[forms]]` config checked key by key. Property tests put random
values, description lines and label spellings through the reader."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.addresses import GatewayAddresses
from gateway.config import ConfigErrors, FormSettings, settings_from_mapping
from gateway.domain import DEFAULT_CATEGORIES, DEFAULT_VOCABULARY, Envelope, Priority
from gateway.mail.forms import read_form_fields
from gateway.mail.parse import parse_mail
from gateway.pipeline.form_plan import plan_form_ticket
from gateway.pipeline.new_ticket_plan import plan_new_ticket
from tests.client_mails import smilepass_form

FORM = FormSettings(sender="forms@smilepass.example", other_fields=("Upload Image",))
OURS = GatewayAddresses(("support@smilepass.example",))


def base_settings(**extra: object):  # type: ignore[no-untyped-def]
    data = {
        "gateway": {"secret": "s" * 32, "addresses": ["support@smilepass.example"], "ticket_prefix": "SP"},
        "staff": {"addresses": ["ana@smilepass.example"]},
        "forms": [{"sender": "forms@smilepass.example", "other_fields": ["Upload Image"]}],
        **extra,
    }
    return settings_from_mapping(data)


def plan(raw: bytes):  # type: ignore[no-untyped-def]
    settings = base_settings()
    mail = parse_mail(raw)
    envelope = Envelope("forms@smilepass.example", ("support@smilepass.example",), "smtp")
    base = plan_new_ticket(mail, envelope, settings=settings, ours=OURS)
    return plan_form_ticket(
        mail, FORM, base, vocabulary=DEFAULT_VOCABULARY, categories=DEFAULT_CATEGORIES, ours=OURS,
        customers=settings.customers,
    )  # fmt: skip


@pytest.mark.parametrize("html_table", [False, True])
def test_the_smilepass_form_gives_title_description_priority_category_and_the_visitor(
    html_table: bool,
) -> None:
    planned = plan(
        smilepass_form(
            title="Cannot add a payment plan",
            description="I click ADD and nothing happens.\nError: plan_limit\n\nChrome 131 on macOS.",
            priority="High",
            category="Payment Plans",
            html_table=html_table,
        )
    )
    ticket = planned.plan
    assert (ticket.requester.address, ticket.requester.name) == ("maria@customer.example", "Maria Lopez")
    assert ticket.title == "Cannot add a payment plan"
    assert ticket.description == "I click ADD and nothing happens.\nError: plan_limit\n\nChrome 131 on macOS."
    assert (ticket.priority, ticket.category) == (Priority.HIGH, "Payment Plans")
    assert [kind.value for kind, *_ in planned.events] == ["form_read"]
    assert "requester from Reply-To" in planned.events[0][3]


def test_values_are_looked_up_in_the_tag_vocabulary_and_unknown_ones_keep_the_default() -> None:
    planned = plan(smilepass_form(title="t", description="d", priority="asap", category="billing"))
    assert (planned.plan.priority, planned.plan.category) == (Priority.URGENT, "Billing & Payments")
    planned = plan(smilepass_form(title="t", description="d", priority="Whenever", category="Hardware"))
    assert (planned.plan.priority, planned.plan.category) == (Priority.LOW, "Technical Issues & Bugs")
    unknown = [(field, new) for kind, _, field, new in planned.events if kind.value == "form_value_unknown"]
    assert unknown == [
        ("priority", "Priority: 'Whenever' is no priority nor a tag word of the vocabulary; kept Low"),
        (
            "category",
            "Category: 'Hardware' is no category nor a tag word of the vocabulary; "
            "kept Technical Issues & Bugs",
        ),
    ]


def test_without_reply_to_the_email_field_is_the_requester_and_without_either_nobody() -> None:
    raw = smilepass_form(title="t", description="d", priority="Low", category="Security", visitor=None)
    raw = raw.replace(b"Title: t\n", b"Name: Jo Kim\nEmail: jo@kim.example\nTitle: t\n")
    planned = plan(raw)
    assert (planned.plan.requester.address, planned.plan.requester.name) == ("jo@kim.example", "Jo Kim")
    planned = plan(
        smilepass_form(title="t", description="d", priority="Low", category="Security", visitor=None)
    )
    assert planned.visitor is None and planned.plan.requester.address == "unknown@invalid"
    assert any(kind.value == "requester_unknown" for kind, *_ in planned.events)


def test_a_reply_to_that_is_the_form_itself_is_no_visitor() -> None:
    raw = smilepass_form(
        title="t", description="d", priority="Low", category="x", visitor="forms@smilepass.example"
    )
    assert plan(raw).visitor is None


# --- the reader ------------------------------------------------------------------------------------

LABELS = {"title": "Title", "description": "Description", "priority": "Priority", "category": "Category"}


def test_labels_are_case_insensitive_bold_and_may_have_the_value_below() -> None:
    text = (
        "**TITLE:** App crashes\npriority :\n\nurgent\nDESCRIPTION:\n  It crashes.\n  Always.\nCategory: bug"
    )
    assert read_form_fields(text, LABELS) == {
        "title": "App crashes",
        "priority": "urgent",
        "description": "It crashes.\nAlways.",
        "category": "bug",
    }


def test_a_description_runs_until_the_next_known_label_only() -> None:
    text = "Description: first\nError: 42\nNote: see logs\nUpload Image: shot.png\nTitle: T"
    assert read_form_fields(text, LABELS, others=("Upload Image",)) == {
        "description": "first\nError: 42\nNote: see logs",
        "title": "T",
    }


_VALUE = (
    st.text(string.ascii_letters + string.digits + " .,!?'-äéñ", min_size=1, max_size=40)
    .map(str.strip)
    .filter(bool)
)
_LINE = st.one_of(
    _VALUE, st.builds(lambda a, b: f"{a}: {b}", _VALUE.filter(lambda s: ":" not in s), _VALUE), st.just("")
)
_DESCRIPTION = (
    st.lists(_LINE, min_size=1, max_size=6)
    .map("\n".join)
    .filter(
        lambda text: (
            text.strip()
            and not any(
                line.split(":")[0].strip().casefold() in {"title", "description", "priority", "category"}
                for line in text.splitlines()
            )
        )
    )
)
_SPELLING = st.sampled_from([str.lower, str.upper, str.title, lambda s: s])


@settings(max_examples=200, deadline=None)
@given(
    title=_VALUE, description=_DESCRIPTION, priority=_VALUE, category=_VALUE,
    spell=_SPELLING, order=st.permutations(["title", "description", "priority", "category"]),
    space_before_colon=st.booleans(),
)  # fmt: skip
def test_any_form_body_gives_back_its_values(
    title: str, description: str, priority: str, category: str, spell, order, space_before_colon: bool
) -> None:
    values = {"title": title, "description": description, "priority": priority, "category": category}
    colon = " :" if space_before_colon else ":"
    text = "\n".join(f"{spell(LABELS[field])}{colon} {values[field]}" for field in order)
    found = read_form_fields(text, LABELS)
    assert found["title"] == " ".join(title.split())
    assert found["priority"] == " ".join(priority.split())
    assert found["category"] == " ".join(category.split())
    assert _lines(found["description"]) == _lines(description)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines() if line.strip()]


# --- config ------------------------------------------------------------------------------------------


def test_forms_config_defaults_and_errors_name_the_key() -> None:
    settings = base_settings()
    [form] = settings.forms
    assert (form.title_field, form.description_field, form.require_authentication) == (
        "Title",
        "Description",
        True,
    )
    assert settings.form_for("Forms@SmilePass.example") is form
    with pytest.raises(ConfigErrors) as raised:
        base_settings(
            forms=[
                {"sender": "ana@smilepass.example"},
                {
                    "sender": "web@smilepass.example",
                    "priority_field": "Prio: rity",
                    "require_authentication": "no",
                },
                {"sender": "web@smilepass.example", "category_field": "title"},
                {"title_field": "T"},
                {"sender": "not an address"},
            ]
        )
    said = {error.key: error.problem for error in raised.value.errors}
    assert "staff address" in said["forms[0].sender"]
    assert "without a colon" in said["forms[1].priority_field"]
    assert said["forms[1].require_authentication"] == "expected true or false, got a string ('no')"
    assert "already the sender of forms[1]" in said["forms[2].sender"]
    assert "already the label of title_field" in said["forms[2].category_field"]
    assert said["forms[3].sender"].startswith("required")
    assert "forms[4].sender" in said


def test_a_wpforms_table_with_label_rows_above_value_rows() -> None:
    """WPForms' notification: each label in a row of its own, without a colon, its value in the next."""
    rows = [
        ("Title", "Refund missing"),
        ("Description", "Paid twice.<br>Order 1234."),
        ("Priority", "Medium"),
        ("Category", "Billing &amp; Payments"),
    ]
    cells = "".join(
        f'<tr style="background:#f8f8f8"><td><strong>{label}</strong></td></tr><tr><td>{value}</td></tr>'
        for label, value in rows
    )
    html = f'<table width="100%"><tr><td><table class="wpforms">{cells}</table></td></tr></table>'
    text = "Title\nRefund missing\nDescription\nPaid twice.\nOrder 1234.\nPriority\nMedium"
    from gateway.mail.forms import form_fields

    assert form_fields(text, html, LABELS) == {
        "title": "Refund missing",
        "description": "Paid twice.\nOrder 1234.",
        "priority": "Medium",
        "category": "Billing & Payments",
    }
