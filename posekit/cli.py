"""`posekit` command line: one sub-command per module in `posekit.commands`.

Each command module exposes ``register(subparsers)``, which adds its parser and sets ``func``.
User mistakes raise `PosekitError` and end as one line on stderr with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from posekit.errors import PosekitError

COMMANDS = ("models", "predict", "eval", "bench", "train", "export", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="posekit", description="Human pose estimation on an ordinary CPU.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"posekit.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"posekit.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from posekit.version import __version__

        print(__version__)
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PosekitError as exc:
        print(f"posekit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"posekit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
