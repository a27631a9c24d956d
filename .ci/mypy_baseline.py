#!/usr/bin/env python
"""mypy over the package against a checked-in baseline of known errors that may only shrink.

    python .ci/mypy_baseline.py            # exit 1 when an error not in the baseline appears
    python .ci/mypy_baseline.py --update   # rewrite the baseline (only ever removes entries)

Errors are compared as `file: message  [code]` with line numbers taken out (also those inside
messages, "defined on line 12"), counted with multiplicity, so that edits which only move code
do not break CI. Errors in the baseline that no longer occur are listed: remove them (or run
--update) so the baseline shrinks. mypy's settings are in pyproject.toml ([tool.mypy]).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / ".ci" / "mypy-baseline.txt"
ERROR = re.compile(r"^(?P<file>[^:\n]+\.pyi?):\d+(?::\d+)?: error: (?P<message>.*)$")


def normalize(file: str, message: str) -> str:
    """One error without its position: `file: message  [code]`."""
    message = re.sub(r"\bline \d+\b", "line N", message.strip())
    return f"{Path(file).as_posix()}: {message}"


def current_errors() -> Counter[str]:
    """Run mypy (settings from pyproject.toml) and collect its normalized errors."""
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary",
                           "--show-error-codes", "--no-pretty"],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"mypy failed with exit code {proc.returncode}")
    return parse(proc.stdout)


def parse(mypy_output: str) -> Counter[str]:
    """Normalized errors (with multiplicity) of mypy's text output; notes are dropped."""
    found: Counter[str] = Counter()
    for line in mypy_output.splitlines():
        match = ERROR.match(line)
        if match:
            found[normalize(match["file"], match["message"])] += 1
    return found


def read_baseline() -> Counter[str]:
    if not BASELINE.is_file():
        return Counter()
    lines = BASELINE.read_text(encoding="utf-8").splitlines()
    return Counter(x for x in lines if x.strip() and not x.startswith("#"))


def write_baseline(errors: Counter[str]) -> None:
    header = ("# Known mypy errors (python .ci/mypy_baseline.py). This file may only shrink:\n"
              "# fix an error, then delete its line (or run the script with --update).\n")
    BASELINE.write_text(header + "".join(f"{e}\n" for e in sorted(errors.elements())),
                        encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true",
                        help="rewrite the baseline with the current errors (refused when "
                             "there are new ones: the baseline only shrinks)")
    parser.add_argument("--init", action="store_true",
                        help="write the baseline from scratch (first setup only)")
    args = parser.parse_args(argv)
    found, baseline = current_errors(), read_baseline()
    if args.init:
        write_baseline(found)
        print(f"wrote {BASELINE.relative_to(ROOT)} with {sum(found.values())} errors")
        return 0
    new, fixed = found - baseline, baseline - found
    for error in sorted(new.elements()):
        print(f"new mypy error: {error}")
    if fixed:
        print(f"{sum(fixed.values())} baseline error(s) no longer occur; the baseline can "
              f"shrink (python .ci/mypy_baseline.py --update):")
        for error in sorted(fixed.elements()):
            print(f"  fixed: {error}")
    if new:
        print(f"{sum(new.values())} new mypy error(s) not in {BASELINE.relative_to(ROOT)}: "
              "fix them (the baseline only shrinks)")
        return 1
    if args.update and fixed:
        write_baseline(found)
        print(f"baseline shrunk to {sum(found.values())} errors")
    print(f"mypy: {sum(found.values())} known error(s), none new")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
