"""The mails the intake benchmarks send (bench_intake.py, bench_pipeline.py, bench_nodes.py,
instructions_per_mail.py, intake_instructions.py): plain new tickets, tickets with a screenshot,
and replies, in a fixed mix and order, so every bench and every run counts the same mails."""

from __future__ import annotations

import argparse
import io
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime

SENDER = "maria@customer.example"
RECIPIENT = "support@smilepass.example"
KINDS = ("plain", "screenshot", "replies")
DEFAULT_MIX = "plain=7,screenshot=1,replies=2"
# Mails larger than this carry their bulk as an attached log file, as real large mails do,
# rather than as a megabyte of body text no person writes.
BODY_LIMIT = 8 * 1024

_SENTENCES = (
    "When I click ADD on the payment plan page nothing happens.",
    "I tried again in another browser and the same thing happened.",
    "The card was charged twice but the plan still shows as unpaid.",
    "Could you please look into this as soon as possible?",
    "My customer number is 4471-2290 and the plan was created yesterday.",
    "The app shows a spinner for a minute and then an error without a code.",
    "Our accountant needs the corrected invoice before the end of the month.",
    "I reset my password but the login page keeps sending me back to the start.",
)


# --- the mails ---------------------------------------------------------------------------------


def screenshot_png(width: int = 240, height: int = 160) -> bytes:
    """A small screenshot-like PNG (flat UI blocks and a little text), made with Pillow."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (246, 247, 249))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 24), fill=(40, 90, 170))
    draw.text((8, 6), "SmilePass - Payment plans", fill=(255, 255, 255))
    for row in range(4):
        top = 36 + row * 28
        draw.rectangle((8, top, width - 8, top + 20), outline=(200, 200, 205), fill=(255, 255, 255))
        draw.text((14, top + 5), f"Plan {row + 1}   EUR {(row + 1) * 19}.00", fill=(30, 30, 30))
    draw.rectangle((width - 60, height - 22, width - 8, height - 6), fill=(60, 160, 90))
    draw.text((width - 50, height - 19), "ADD", fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _filler(size: int, rng: random.Random) -> str:
    """About `size` bytes of support-mail prose, in lines of normal length."""
    lines: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(_SENTENCES) for _ in range(rng.randint(1, 2)))
        lines.append(line)
        total += len(line) + 2
    return "\n".join(lines)


def _log_lines(size: int, rng: random.Random) -> str:
    lines: list[str] = []
    total = 0
    n = 0
    while total < size:
        n += 1
        line = (
            f"2026-11-25T10:{n // 60 % 60:02d}:{n % 60:02d}Z INFO plan-service"
            f" request={rng.getrandbits(48):012x} path=/api/plans/{rng.randint(1, 9999)}"
            f" status={rng.choice((200, 200, 200, 500))}"
        )
        lines.append(line)
        total += len(line) + 2
    return "\n".join(lines)


def sender_of(index: int, senders: int) -> str:
    """The customer who wrote mail number `index`: one of `senders` (mail after an outage comes
    from many people, and each new one is sent an acknowledgement)."""
    return SENDER if senders <= 1 else f"customer{index % senders}@customer.example"


def make_mail(kind: str, index: int, run_id: str, size: int, png: bytes, senders: int = 1) -> bytes:
    """Mail number `index` of kind plain, screenshot or replies, about `size` bytes on the wire."""
    rng = random.Random(index)
    message_id = f"<bench-{run_id}-{index}@customer.example>"
    subjects = (
        "Payment plan ADD button does nothing",
        "[urgent] Charged twice for my plan",
        "[billing] Invoice for November is wrong",
        "Cannot log in after password reset",
        "[High][Bug] App crashes when opening plans",
    )
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = f"Maria Lopez <{sender_of(index, senders)}>"
    msg["To"] = RECIPIENT
    msg["Date"] = format_datetime(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    msg["Message-ID"] = message_id
    subject = f"{subjects[index % len(subjects)]} (case {index})"
    intro = "Hello support,\n\n"
    outro = "\n\nThanks,\nMaria\n-- \nMaria Lopez\nSent from my iPhone\n"
    if kind == "replies" and index > 0:
        earlier = max(0, index - 1 - rng.randint(0, 20))
        del msg["From"]  # the reply comes from whoever wrote the mail it answers
        msg["From"] = f"Maria Lopez <{sender_of(earlier, senders)}>"
        msg["Subject"] = f"Re: [TG-{earlier + 1}] {subjects[earlier % len(subjects)]} (case {earlier})"
        msg["In-Reply-To"] = f"<bench-{run_id}-{earlier}@customer.example>"
        msg["References"] = f"<bench-{run_id}-{earlier}@customer.example>"
        quoted = "\n".join(f"> {line}" for line in _filler(400, rng).splitlines())
        intro = "It still happens, see below.\n\n"
        outro = (
            "\n\nMaria\n\nOn Tue, 24 Nov 2026 at 09:12, SmilePass Support"
            " <support@smilepass.example> wrote:\n" + quoted + "\n"
        )
    else:
        msg["Subject"] = subject
    bare = len(msg.as_bytes()) + len(intro) + len(outro) + 64
    body_room = max(
        0, min(size, BODY_LIMIT) - bare - (len(png) * 4 // 3 + 300 if kind == "screenshot" else 0)
    )
    msg.set_content(intro + _filler(max(body_room, 80), rng) + outro)
    if kind == "screenshot":
        msg.add_attachment(png, maintype="image", subtype="png", filename=f"screenshot-{index}.png")
    missing = size - len(msg.as_bytes())
    if missing > 512:  # large mails: the bulk is an attached log, base64 adds a third
        log = _log_lines(missing * 3 // 4 - 200, rng).encode()
        msg.add_attachment(log, maintype="application", subtype="octet-stream", filename="app.log")
    return msg.as_bytes()


def parse_mix(text: str) -> list[tuple[str, int]]:
    """`plain=7,screenshot=1,replies=2` (or `plain`) -> [(kind, weight)]."""
    mix: list[tuple[str, int]] = []
    for part in text.split(","):
        name, _, weight = part.strip().partition("=")
        if name not in KINDS:
            raise argparse.ArgumentTypeError(f"unknown mail kind {name!r}; one of {', '.join(KINDS)}")
        mix.append((name, int(weight or 1)))
    return mix


def make_mails(
    count: int, size: int, mix: Sequence[tuple[str, int]], run_id: str, senders: int = 1
) -> list[bytes]:
    """`count` distinct mails in the proportions of `mix`, interleaved the way they would arrive."""
    png = screenshot_png()
    cycle = [kind for kind, weight in mix for _ in range(weight)]
    order = random.Random(0)
    kinds = [cycle[i % len(cycle)] for i in range(count)]
    order.shuffle(kinds)
    return [make_mail(kind, i, run_id, size, png, senders) for i, kind in enumerate(kinds)]
