"""Summarise a py-spy raw profile (`bench_intake.py --profile FILE.txt`): where each thread's time went.

Run from the project root: ``.venv/bin/python bench/profile_summary.py FILE.txt [--top 25] [--thread NAME]``.
py-spy's raw format is one collapsed stack per line with its sample count. For each thread (named
by its run function: `Processor.run`, `Sender.run`, `run_daemon` for the SMTP event loop, ...) it
prints the share of samples, then, for the thread asked for (or the busiest), the functions with
the largest inclusive share (the function and everything it called) and the largest self share.
Samples of a thread waiting in `Event.wait`/`Condition.wait` are idle time py-spy could not tell
apart, and are left out.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

_LINE = re.compile(r":\d+\)")
_IDLE = ("Event.wait (", "Condition.wait (", "EpollSelector.select (")


def _frames(stack: str) -> list[str]:
    return [_LINE.sub(")", frame) for frame in stack.split(";")]


def _thread_of(frames: Sequence[str]) -> str:
    """The thread's run function: the first frame that is ours or a known loop."""
    for frame in frames:
        name = frame.split(" (", 1)[0]
        if (
            name.endswith((".run", "run_daemon", "_worker", "run_worker_process", "_run"))
            and "threading.py" not in frame
        ):
            return name
    return frames[min(3, len(frames) - 1)].split(" (", 1)[0]


def summarise(path: Path, *, top: int, thread: str | None) -> str:
    per_thread: Counter[str] = Counter()
    stacks: list[tuple[str, list[str], int]] = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = _frames(stack)
        if frames[-1].startswith(_IDLE):
            continue
        name = _thread_of(frames)
        per_thread[name] += int(count)
        stacks.append((name, frames, int(count)))
    total = sum(per_thread.values()) or 1
    out = [f"{path.name}: {total} busy samples"]
    out += [
        f"  {n / total * 100:5.1f}%  {name}" for name, n in per_thread.most_common(8) if n / total >= 0.001
    ]
    chosen = thread or (per_thread.most_common(1)[0][0] if per_thread else "")
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    chosen_total = 0
    for name, frames, count in stacks:
        if name != chosen:
            continue
        chosen_total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    chosen_total = chosen_total or 1
    out.append(f"\n{chosen}: largest inclusive shares")
    out += [
        f"  {n / chosen_total * 100:5.1f}%  {frame}"
        for frame, n in inclusive.most_common(top + 8)
        if n < chosen_total  # the thread's own bootstrap frames are 100 % and say nothing
    ][:top]
    out.append(f"\n{chosen}: largest self shares")
    out += [f"  {n / chosen_total * 100:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile", type=Path, help="py-spy raw output (bench_intake.py --profile X.txt)")
    parser.add_argument("--top", type=int, default=25, help="functions to list (default 25)")
    parser.add_argument("--thread", help="the thread to break down (default: the busiest)")
    args = parser.parse_args(argv)
    if not args.profile.is_file():
        print(f"no such profile: {args.profile}", file=sys.stderr)
        return 2
    print(summarise(args.profile, top=args.top, thread=args.thread))
    return 0


if __name__ == "__main__":
    sys.exit(main())
