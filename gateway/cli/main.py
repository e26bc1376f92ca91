"""The `ticketgate` command: parses the arguments (gateway/cli/commands.py), runs the chosen
command's handler, and turns the errors every command may meet into one line and an exit code.

`main` first offers a read-only command to a running `serve` (gateway/cli/control_client.py);
only when that declines does `run` import the argument table, logging and the error types: a
command the daemon answers imports nothing else (docs/performance/latency-and-cli.md).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from gateway.cli.control_client import answer_by_daemon

EX_NOTFOUND = 1
EX_CONFIG = 78
EX_TEMPFAIL = 75


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    answered = answer_by_daemon(arguments)  # a read-only command a running serve answers warm
    if answered is not None:
        return answered
    return run(arguments)


def run(argv: Sequence[str]) -> int:
    """The command, run in this process."""
    import argparse
    import logging
    from collections.abc import Callable

    from gateway.cli import init as init_cli
    from gateway.cli.commands import build_parser
    from gateway.errors import ConfigError, SchemaOutOfDate, TransientError
    from gateway.store.blobs import BlobUnreadable, blob_problem

    parser = build_parser()
    args = parser.parse_args(argv)
    # --config and -v are accepted before and after the command; SUPPRESS keeps a subcommand's
    # parser from overwriting a value given before the command with its own empty default.
    args.config = getattr(args, "config", None)
    args.verbose = getattr(args, "verbose", False)
    logging.basicConfig(
        level=logging.DEBUG
        if args.verbose
        else (logging.INFO if args.command == "serve" else logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # mail-parser warns about every MIME part it leaves to us; those are not operator news.
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    handler: Callable[[argparse.Namespace], int] = args.handler
    init_cli.say_when_no_config(args)
    try:
        return handler(args)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"ticketgate: config error: {line}", file=sys.stderr)
        return EX_CONFIG
    except SchemaOutOfDate as exc:
        print(f"ticketgate: {exc}", file=sys.stderr)
        return EX_CONFIG
    except TransientError as exc:
        print(f"ticketgate: temporary failure, try again later: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    except BlobUnreadable as exc:  # a command that met a damaged store says so, in one line
        print(f"ticketgate: {blob_problem(exc)}", file=sys.stderr)
        return EX_NOTFOUND


if __name__ == "__main__":
    sys.exit(main())
