"""`ticketgate explain FILE.eml` and `ticketgate inbox explain ID` (SPEC §14): what processing would
make of a mail now, stage by stage, writing and sending nothing (gateway/pipeline/explain.py).

The pipeline, the store and the templates are imported inside the commands, so that registering
them costs the other commands nothing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.daemon.runtime import Runtime
    from gateway.pipeline.explain import Explanation
    from gateway.pipeline.stage_values import ProcessorDeps

EX_NOTFOUND = 1
EX_DATAERR = 65  # the file is not a mail
EX_NOINPUT = 66  # the file cannot be read


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """`ticketgate explain FILE`."""
    explain = commands.add_parser(
        "explain", parents=[common], help="what processing would make of a mail file, stage by stage"
    )
    explain.add_argument("file", metavar="FILE", help="the mail, as an .eml file ('-': standard input)")
    explain.add_argument("--sender", default="", help="envelope sender, as an MTA would give it")
    explain.add_argument(
        "--recipient", action="append", default=[], help="envelope recipient (RCPT TO); may be repeated"
    )
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(handler=_explain_file)


def register_inbox(actions: Any, common: argparse.ArgumentParser) -> None:
    """`ticketgate inbox explain ID`, beside `inbox list|show|release`."""
    explain = actions.add_parser(
        "explain", parents=[common], help="what processing would make of an accepted mail now"
    )
    explain.add_argument("id", type=int, help="inbox id")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(handler=_explain_inbox)


def _explain_file(args: argparse.Namespace) -> int:
    from gateway.config import load_settings
    from gateway.domain import Envelope
    from gateway.errors import NotAMailError
    from gateway.mail.rawmail import looks_like_mail
    from gateway.pipeline.explain import explain_file

    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"ticketgate: {args.file}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return EX_NOINPUT
    if not looks_like_mail(raw):
        print(f"ticketgate: {args.file}: not a mail: no header section in its first lines", file=sys.stderr)
        return EX_DATAERR
    settings = load_settings(args.config)
    envelope = Envelope(mail_from=args.sender, rcpt_tos=tuple(args.recipient), source="pipe")
    runtime = _runtime(settings)
    try:
        explanation = explain_file(dry_deps(runtime), raw, envelope)
    finally:
        runtime.close()
    if isinstance(explanation.error, NotAMailError):
        print(f"ticketgate: {args.file}: not a mail: {_one_line(explanation.error)}", file=sys.stderr)
        return EX_DATAERR
    _print(explanation, settings, args.json)
    return 0


def _explain_inbox(args: argparse.Namespace) -> int:
    from gateway.config import load_settings
    from gateway.pipeline.explain import explain_inbox

    settings = load_settings(args.config)
    runtime = _runtime(settings)
    try:
        explanation = explain_inbox(dry_deps(runtime), args.id)
    finally:
        runtime.close()
    if explanation is None:
        print(f"ticketgate: no inbox item {args.id}", file=sys.stderr)
        return EX_NOTFOUND
    _print(explanation, settings, args.json)
    return 0


def _runtime(settings: Settings) -> Runtime:
    from gateway.daemon.runtime import build_runtime

    return build_runtime(settings)


def dry_deps(runtime: Runtime) -> ProcessorDeps:
    """The processor's dependencies, but blobs kept in memory and a planner that writes there too."""
    import dataclasses

    from gateway.notify.planner import NotificationPlanner
    from gateway.notify.render import Renderer
    from gateway.store.dry_run import DryBlobStore

    real = runtime.deps
    settings = runtime.settings
    blobs = DryBlobStore(real.blobs)
    planner = NotificationPlanner(
        settings, Renderer(settings.notifications.templates_dir), ours=real.ours, blobs=blobs
    )
    return dataclasses.replace(real, blobs=blobs, notifier=planner)


def explanation_json(explanation: Explanation, prefix: str) -> dict[str, Any]:
    """The stable `explain --json` object (docs/admin/explain.md)."""
    from gateway.pipeline.explain import quarantine_reason
    from gateway.present import ticket_ref

    found = explanation.requester
    return {
        "outcome": explanation.outcome,
        "ticket": ticket_ref(prefix, explanation.ticket_id) if explanation.ticket_id is not None else None,
        "requester": (
            {"address": found.address.address, "name": found.address.name, "source": found.source or None}
            if found is not None
            else None
        ),
        "title": explanation.title,
        "priority": explanation.priority,
        "category": explanation.category,
        "rules": list(explanation.rules),
        "stages": [{"stage": s.stage, "decision": s.decision, "reason": s.reason} for s in explanation.steps],
        "text": explanation.text,
        "trimmed": explanation.trimmed,
        "notifications": [{"template": q.template, "to": q.to} for q in explanation.notifications],
        "not_sent": list(explanation.not_sent),
        "reason": quarantine_reason(explanation.error) if explanation.error is not None else None,
    }


def _print(explanation: Explanation, settings: Settings, as_json: bool) -> None:
    from gateway.present import print_json

    data = explanation_json(explanation, settings.gateway.ticket_prefix)
    if as_json:
        print_json(data)
        return
    print(f"outcome: {data['outcome']}" + (f" {data['ticket']}" if data["ticket"] else ""))
    if data["reason"]:
        print(f"reason: {data['reason']}")
    requester = data["requester"]
    if requester is not None:
        named = f"{requester['name']} <{requester['address']}>" if requester["name"] else requester["address"]
        print(f"requester: {named} (from {requester['source'] or 'no header: unknown'})")
    if data["title"] is not None:
        print(f"title: {data['title']}")
        print(f"priority: {data['priority']}   category: {data['category']}")
    print(f"rules fired: {', '.join(data['rules']) or '-'}")
    print("stages:")
    for step in data["stages"]:
        print(f"  {step['stage']}: {step['decision']}")
        if step["reason"]:
            print(f"      {step['reason']}")
    for label, text in (("text", data["text"]), ("trimmed", data["trimmed"])):
        print(f"{label}:" + ("" if text else " (none)"))
        for line in (text or "").splitlines():
            print(f"  | {line}")
    print("notifications:" + ("" if data["notifications"] else " (none)"))
    for queued in data["notifications"]:
        print(f"  {queued['template']} to {queued['to']}")
    for note in data["not_sent"]:
        print(f"  not sent: {note}")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
