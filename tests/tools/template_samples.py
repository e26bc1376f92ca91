"""Realistic SmilePass sample data for every notification template, keyed by template name: what the
browser rendering script (render_templates.py) and the plain-text width test render them with.

A new template needs an entry here; both tools name the template that has none.
"""

from __future__ import annotations

from typing import Any

from gateway.domain import REPLY_MARKER
from gateway.notify.kinds.replies import quote_lines

BASE: dict[str, Any] = {
    "marker": REPLY_MARKER,
    "desk": "SmilePass Support",
    "ref": "SP-1042",
    "title": "Payment plan ADD button does nothing on checkout",
    "status": "Open",
    "priority": "High",
    "category": "Billing & Payments",
    "tier": "Enterprise",
    "requester_name": "Maria Lopez",
    "requester_address": "maria.lopez@northwind-dental.example",
}

CUSTOMER_TEXT = (
    "Hello,\n\n"
    "when I choose the 12-month payment plan and press ADD, nothing happens:\n"
    "no error, the basket stays empty. I tried twice this morning.\n\n"
    "Browser: Firefox 132 on Windows 11. Screenshots attached.\n\n"
    "Thanks,\nMaria"
)

# What a staff notification about a mail with three screenshots (one lost from the store) and a
# PDF carries (staff_files.py).
FILES: dict[str, Any] = {
    "screenshots": [
        {
            "number": 1,
            "name": "checkout-add-button.png",
            "width": 1440,
            "height": 900,
            "size": "412 KB",
            "cid": "shot1.tg.SP-1042.o77.5f2c@smilepass.example",
            "thumb_width": 320,
            "attached": True,
        },
        {
            "number": 2,
            "name": "console-errors.png",
            "width": 1920,
            "height": 1080,
            "size": "9.8 MB",
            "cid": "shot2.tg.SP-1042.o77.5f2c@smilepass.example",
            "thumb_width": 320,
            "attached": False,
        },
        # Its row is there, its bytes are not: listed, not shown (SPEC §15).
        {"number": 3, "name": "basket-empty.png", "unavailable": True},
    ],
    "attachments": [{"name": "invoice-2024-118.pdf", "size": "86 KB", "content_type": "application/pdf"}],
    "attach_limit": "10.0 MB",
}

SAMPLES: dict[str, dict[str, Any]] = {
    "ticket_created": {
        "helps": ["what you were trying to do", "what happened instead"],
        "device": "Firefox 132 on Windows 11",
        "has_screenshot": True,
        "copied": ["Luis Ortega <luis.ortega@northwind-dental.example>", "accounts@northwind-dental.example"],
    },
    "staff_new_ticket": {
        "tags": ["billing", "high"],
        "text": CUSTOMER_TEXT,
        "acknowledged": True,
        "ack_note": "",
        "copied": ["Luis Ortega <luis.ortega@northwind-dental.example>"],
        "also_open": ["SP-1017", "SP-1031"],
        **FILES,
    },
    "staff_reply": {
        "text": (
            "Hello Maria,\n\n"
            "thank you for the screenshots. The ADD button failed for payment\n"
            "plans in euros since Tuesday's release; it is fixed now. Could you\n"
            "try again and tell us whether the plan shows in your basket?\n\n"
            "Best regards,\nAna"
        ),
        "author_name": "Ana Petrova",
        "new_status": "Resolved",
        "merged_into": None,
        "quoted": {
            "author": "Maria Lopez",
            "date": "2026-12-07 09:12 UTC",
            "text": CUSTOMER_TEXT,
            "quoted_text": quote_lines(CUSTOMER_TEXT),
        },
    },
    "requester_reply": {
        "text": "It works now, thank you! One more screenshot of the confirmation below.",
        "author_name": "Maria Lopez",
        "author_address": "maria.lopez@northwind-dental.example",
        **FILES,
    },
    "status_changed": {"old": "In Progress", "new": "Resolved", "merged_into": None},
    "command_result": {
        "applied": ["#status in-progress", "#assign ana@smilepass.example", "#priority urgent"],
        "refused": [{"line": "#category refunds", "reason": "unknown category 'refunds'"}],
        "queue_scope": "all",
        "queue": [
            {
                "ref": "SP-1042",
                "priority": "Urgent",
                "title": "Payment plan ADD button does nothing on checkout",
                "assignee": "ana@smilepass.example",
                "status": "In Progress",
                "tier": "Enterprise",
                "waiting": "3h 10m",
            },
            {
                "ref": "SP-1040",
                "priority": "High",
                "title": "Refund for a double charge on invoice 2024-118 has not arrived after ten days",
                "assignee": "",
                "status": "Open",
                "tier": "Standard",
                "waiting": "1d 2h",
            },
        ],
    },
    "my_tickets": {
        "ref": None,
        "open_count": 2,
        "total": 3,
        "tickets": [
            {
                "ref": "SP-1042",
                "priority": "High",
                "date": "2026-11-30",
                "title": "Payment plan ADD button does nothing on checkout",
                "category": "Billing & Payments",
                "status": "Waiting on user",
                "open": True,
            },
            {
                "ref": "SP-1031",
                "priority": "Medium",
                "date": "2026-11-12",
                "title": "Export of last year's invoices as one PDF, please",
                "category": "Account & Access",
                "status": "Open",
                "open": True,
            },
            {
                "ref": "SP-0988",
                "priority": "Low",
                "date": "2026-10-02",
                "title": "Typo on the receipt page",
                "category": "Technical Issues & Bugs",
                "status": "Closed",
                "open": False,
            },
        ],
    },
    "escalation": {
        "reason": "Enterprise customer Northwind Dental; Security category",
        "text": CUSTOMER_TEXT,
        **FILES,
    },
    "digest": {
        "day": "2026-12-02",
        "timezone": "Europe/Oslo",
        "open_count": 37,
        "sections": [
            {
                "title": "New since yesterday",
                "when_label": "age",
                "count": 2,
                "more": 0,
                "rows": [
                    {
                        "ref": "SP-1042",
                        "priority": "Urgent",
                        "tier": "Enterprise",
                        "title": "Payment plan ADD button does nothing on checkout",
                        "category": "Billing & Payments",
                        "status": "Open",
                        "assignee": "",
                        "when": "16 h 33 min",
                    },
                    {
                        "ref": "SP-1043",
                        "priority": "Low",
                        "tier": "Free",
                        "title": "Typo on the pricing page",
                        "category": "General Questions",
                        "status": "In Progress",
                        "assignee": "ana@smilepass.example",
                        "when": "3 h",
                    },
                ],
            },
            {"title": "Unassigned Urgent and High", "when_label": "age", "count": 0, "more": 0, "rows": []},
            {
                "title": "Waiting longest for us",
                "when_label": "waiting",
                "count": 27,
                "more": 26,
                "rows": [
                    {
                        "ref": "SP-988",
                        "priority": "High",
                        "tier": "Pro",
                        "title": "CSV export of payment plans cuts off after 1000 rows with no warning",
                        "category": "Payment Plans",
                        "status": "Open",
                        "assignee": "",
                        "when": "3 d 4 h",
                    }
                ],
            },
            {
                "title": "First responses overdue",
                "when_label": "late by",
                "count": 1,
                "more": 0,
                "rows": [
                    {
                        "ref": "SP-1042",
                        "priority": "Urgent",
                        "tier": "Enterprise",
                        "title": "Payment plan ADD button does nothing on checkout",
                        "category": "Billing & Payments",
                        "status": "Open",
                        "assignee": "",
                        "when": "15 h 33 min",
                    }
                ],
            },
        ],
    },
}


def sample_for(template: str) -> dict[str, Any]:
    """The context `template` is rendered with; KeyError with what to do when it has none."""
    if template not in SAMPLES:
        raise KeyError(
            f"template {template!r} has no sample data yet: add SAMPLES[{template!r}] "
            f"in tests/tools/template_samples.py"
        )
    return {**BASE, **SAMPLES[template]}
