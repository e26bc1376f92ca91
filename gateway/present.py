"""How tickets look from the CLI: the stable `--json` shape (SPEC §8) and the readable table."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gateway.response_targets import DEFAULT_TARGETS, ResponseTargets
from gateway.store.models import Message, OutboxRow, Ticket

REF_PATTERN = re.compile(r"^\s*(?:\[?\s*)?(?:(?P<prefix>[A-Za-z][A-Za-z0-9]*)-|#)?(?P<id>\d+)\s*\]?\s*$")


def ticket_ref(prefix: str, ticket_id: int) -> str:
    return f"{prefix}-{ticket_id}"


def parse_ref(text: str, prefix: str) -> int | None:
    """The ticket id in `SP-42`, `sp-42`, `#42` or `42`; None when it names another prefix or nothing."""
    match = REF_PATTERN.match(text)
    if match is None:
        return None
    given = match.group("prefix")
    if given is not None and given.lower() != prefix.lower():
        return None
    return int(match.group("id"))


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def ticket_summary_json(
    ticket: Ticket, prefix: str, targets: ResponseTargets = DEFAULT_TARGETS
) -> dict[str, Any]:
    """The fields `tickets list --json` gives for each ticket (SPEC §8, without the long lists);
    `targets` are the deployment's `[response_targets]` (SPEC §12)."""

    def link(ticket_id: int | None) -> str | None:
        return ticket_ref(prefix, ticket_id) if ticket_id is not None else None

    return {
        "id": ticket.id,
        "ref": ticket_ref(prefix, ticket.id),
        "title": ticket.title,
        "description": ticket.description,
        "priority": ticket.priority,
        "category": ticket.category,
        "status": ticket.status,
        "tier": ticket.tier,
        "requester": {"address": ticket.requester_address, "name": ticket.requester_name},
        "assignee": ticket.assignee,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "first_response_due": iso(targets.due(ticket.created_at, ticket.priority, ticket.tier)),
        "links": {
            "follow_up_of": link(ticket.follow_up_of_id),
            "possible_follow_up_of": link(ticket.possible_follow_up_of_id),
            # SPEC §13 Merges: the ticket this one was merged into, and those merged into it.
            "merged_into": link(ticket.merged_into_id),
            "merged_from": [ticket_ref(prefix, merged.id) for merged in ticket.merged_from],
        },
        "screenshots": [
            {
                "sha256": shot.sha256,
                "width": shot.width,
                "height": shot.height,
                "filename": shot.filename,
                "content_type": shot.content_type,
            }
            for shot in ticket.screenshots
        ],
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in ticket.attachments
        ],
        "rejected_attachments": [
            {"filename": r.filename, "reason": r.reason} for r in ticket.rejected_attachments
        ],
    }


def ticket_json(
    ticket: Ticket,
    prefix: str,
    notifications: Sequence[OutboxRow] = (),
    targets: ResponseTargets = DEFAULT_TARGETS,
) -> dict[str, Any]:
    """Everything `tickets show --json` gives (SPEC §8); `notifications` are the ticket's outbox rows."""
    data = ticket_summary_json(ticket, prefix, targets)
    data["participants"] = [
        {"address": p.address, "name": p.name, "role": p.role, "added_by": p.added_by}
        for p in ticket.participants
    ]
    data["messages"] = [
        {
            "ticket": ticket_ref(prefix, m.ticket_id) if m.ticket_id is not None else None,
            "author": m.author_address,
            "author_name": m.author_name,
            "role": m.role,
            "visibility": m.visibility,
            "kind": m.kind,
            "text": m.text,
            "message_id": m.message_id,
            "threaded_by": m.threaded_by,
            "created_at": iso(m.created_at),
        }
        for m in conversation(ticket)
    ]
    data["notifications"] = [
        {
            "template": n.template,
            "to": n.to_address,
            "status": n.status,
            "message_id": n.message_id,
            "created_at": iso(n.created_at),
            "sent_at": iso(n.sent_at),
            "attempts": n.attempts,
            "last_error": n.last_error,
        }
        for n in notifications
    ]
    data["events"] = [
        {
            "kind": e.kind,
            "field": e.field,
            "old": e.old,
            "new": e.new,
            "actor": e.actor,
            "created_at": iso(e.created_at),
        }
        for e in ticket.events
    ]
    return data


MAX_MERGE_DEPTH = 20


def conversation(ticket: Ticket) -> list[Message]:
    """The ticket's messages and those of the tickets merged into it (SPEC §13), in the order they
    were written; each message says which ticket it was written on."""
    found: dict[int, Message] = {}
    todo, seen = [(ticket, 0)], {ticket.id}
    while todo:
        current, depth = todo.pop()
        found.update((m.id, m) for m in current.messages)
        if depth < MAX_MERGE_DEPTH:
            for merged in current.merged_from:
                if merged.id not in seen:
                    seen.add(merged.id)
                    todo.append((merged, depth + 1))
    return sorted(found.values(), key=lambda m: (m.created_at, m.id))


TABLE_COLUMNS = ("Ref", "Priority", "Date", "Title", "Category", "Status", "Tier", "Assignee", "Reply due")
TITLE_WIDTH = 60


def queue_table(tickets: Sequence[Ticket], prefix: str, targets: ResponseTargets = DEFAULT_TARGETS) -> str:
    """The queue as a plain-text table: Priority · Date · Title · Category · Status, then Tier,
    Assignee (`-`: unassigned) and when the first staff reply is due, which staff triage by."""
    rows = [
        (
            ticket_ref(prefix, t.id),
            t.priority,
            t.created_at.strftime("%Y-%m-%d %H:%M"),
            _shorten(t.title, TITLE_WIDTH),
            t.category,
            t.status,
            t.tier,
            t.assignee or "-",
            targets.due(t.created_at, t.priority, t.tier).strftime("%Y-%m-%d %H:%M"),
        )
        for t in tickets
    ]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(TABLE_COLUMNS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(TABLE_COLUMNS, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    if not rows:
        lines.append("(no tickets)")
    return "\n".join(lines)


def ticket_text(
    ticket: Ticket,
    prefix: str,
    notifications: Sequence[OutboxRow] = (),
    targets: ResponseTargets = DEFAULT_TARGETS,
) -> str:
    """One ticket for people: header fields, then the conversation and the audit trail."""
    data = ticket_json(ticket, prefix, notifications, targets)
    out = [
        f"{data['ref']}  {data['title']}",
        f"  status: {data['status']}   priority: {data['priority']}   category: {data['category']}",
        f"  requester: {_who(data['requester'])}   tier: {data['tier']}",
        f"  assignee: {data['assignee'] or '-'}",
        f"  created: {data['created_at']}   updated: {data['updated_at']}",
        f"  first reply due: {data['first_response_due']}",
    ]
    for label, key in (
        ("follow-up of", "follow_up_of"),
        ("possible follow-up of", "possible_follow_up_of"),
        ("merged into", "merged_into"),
    ):
        if data["links"][key]:
            out.append(f"  {label}: {data['links'][key]}")
    if data["links"]["merged_from"]:
        out.append(f"  merged from: {', '.join(data['links']['merged_from'])}")
    for person in data["participants"]:
        out.append(f"  copied: {_who(person)} (added by {person['added_by']})")
    out += ["", "Description:", _indent(data["description"] or "(empty)")]
    for m in data["messages"]:
        out += [
            "",
            f"--- {m['created_at']} {m['author']} ({m['role']}, {m['visibility']}, {m['threaded_by']})"
            + (f" on {m['ticket']}" if m["ticket"] != data["ref"] else ""),
        ]
        out.append(_indent(m["text"] or "(no new text)"))
    for s in data["screenshots"]:
        out.append(f"screenshot: {s['filename']} {s['width']}x{s['height']} {s['sha256'][:12]}")
    for a in data["attachments"]:
        out.append(f"attachment: {a['filename']} ({a['content_type']}, {a['size']} bytes)")
    for r in data["rejected_attachments"]:
        out.append(f"rejected: {r['filename']}: {r['reason']}")
    for n in data["notifications"]:
        error = f" ({n['last_error']})" if n["last_error"] else ""
        out.append(f"notification: {n['template']} to {n['to']}: {n['status']}{error}")
    if data["events"]:
        out += ["", "Events:"]
        for e in data["events"]:
            out.append(f"  {e['created_at']} {e['kind']} {_event_change(e)} by {e['actor']}")
    return "\n".join(out)


# Events whose field says where a value came from rather than what changed ("tag urgent (subject)").
_SOURCE_FIELDS = {"tag": "subject", "sub-address": "sub-address"}


def _event_change(event: dict[str, Any]) -> str:
    """What an event did, for people: `priority: Normal -> Urgent`, `urgent (subject)`, or its value."""
    field, old, new = event["field"], event["old"], event["new"]
    if event["kind"] == "tag" and field in _SOURCE_FIELDS:
        return f"{new} (from the {_SOURCE_FIELDS[field]})"
    if not field:
        return new or ""
    if old is None:
        return f"{field}: {new}"
    return f"{field}: {old} -> {new}"


def _who(person: dict[str, str]) -> str:
    return f"{person['name']} <{person['address']}>" if person["name"] else person["address"]


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines()) or "  "


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def print_json(data: Any) -> None:
    """What every `--json` command prints: indented, non-ASCII as it is, one trailing newline. One
    write, not `json.dump`'s one per token (100,000 for 1,000 tickets, each through the control
    socket's per-thread stream when `serve` answers): the same text, ~25 % sooner on its own."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
