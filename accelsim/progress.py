"""Progress bars for long commands: a tqdm bar on a terminal, nothing otherwise.

Any command can wrap its loop: `with progress.bar(len(items), "compare", quiet=args.quiet) as
bar: ... bar.update()`. Off a terminal (pipes, files, CI logs) and with `quiet` it prints
nothing, so output stays the same as without it.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import IO, Any


class _Silent:
    """The bar when nothing should be shown: same methods, no output."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def write(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Bar:
    def __init__(self, total: int, desc: str, stream: IO[str], unit: str) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=desc, file=stream, unit=unit, dynamic_ncols=True,
                         leave=False)

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def set_postfix_str(self, text: str) -> None:
        self._bar.set_postfix_str(text, refresh=True)

    def write(self, text: str) -> None:
        """A line above the bar (the bar is redrawn below it)."""
        self._bar.write(text)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def shown(stream: Any = None, *, quiet: bool = False) -> bool:
    """True when a bar would be drawn on `stream` (default stderr): a terminal and not quiet."""
    stream = sys.stderr if stream is None else stream
    if quiet:
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def bar(total: int, desc: str, *, quiet: bool = False, stream: Any = None,
        unit: str = "it") -> _Bar | _Silent:
    """A progress bar of `total` steps on `stream` (default stderr), or a silent stand-in."""
    stream = sys.stderr if stream is None else stream
    if not shown(stream, quiet=quiet):
        return _Silent()
    return _Bar(total, desc, stream, unit)
