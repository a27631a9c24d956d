"""The `accelsim` command: run, compare, check, project, validate, mrc.

Every error a user can cause (bad YAML, unknown keys, missing files, bad options) is an
`AccelsimError`: printed without a traceback, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from accelsim.errors import AccelsimError

EXIT_OK, EXIT_USAGE = 0, 2


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors get our exit code 2 path."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise AccelsimError(f"{self.prog}: {message}")


def _cmd_check(args: argparse.Namespace) -> int:
    from accelsim import spec

    failed = False
    for path in args.files:
        try:
            kind = spec.kind_of(path)
            obj = spec.load_hardware(path) if kind == "hardware" else spec.load_workload(path)
        except AccelsimError as exc:
            failed = True
            print(exc, file=sys.stderr)
            continue
        print(f"{path}: ok ({kind} '{obj.name}')")
    return EXIT_USAGE if failed else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="accelsim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    check = sub.add_parser("check", help="validate hardware and workload YAML files")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(func=_cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args))
    except AccelsimError as exc:
        print(f"accelsim: error: {exc}" if "\n" not in str(exc) else str(exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
