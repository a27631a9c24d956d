"""Progress bars for long commands: a tqdm bar on a terminal, nothing otherwise.

Any command can wrap its loop: `with progress.bar(len(items), "compare", quiet=args.quiet) as
bar: ... bar.update()`. Off a terminal (pipes, files, CI logs) and with `quiet` it prints
nothing, so output stays the same as without it.

Work that runs deep below the command (the pipeline's stages, a validation's rows) reports
with `progress.stage(name)`: a no-op unless a command opened `progress.steps(...)` around it,
in which case the bar counts the finished stages and shows the one running.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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
    def __init__(self, total: int | None, desc: str, stream: IO[str], unit: str) -> None:
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


def bar(total: int | None, desc: str, *, quiet: bool = False, stream: Any = None,
        unit: str = "it") -> _Bar | _Silent:
    """A progress bar of `total` steps (None: a count without a total) on `stream` (default
    stderr), or a silent stand-in."""
    stream = sys.stderr if stream is None else stream
    if not shown(stream, quiet=quiet):
        return _Silent()
    return _Bar(total, desc, stream, unit)


class _Steps:
    """The bar `stage` reports to: finished stages counted, the running one shown."""

    def __init__(self, shown_bar: _Bar | _Silent, total: int | None) -> None:
        self.bar, self.total, self.done, self.running = shown_bar, total, 0, ""
        self.prefix = ""

    def stage(self, name: str) -> None:
        if self.running:
            self.finish_one()
        self.running = name
        self.bar.set_postfix_str(f"{self.prefix}: {name}" if self.prefix else name)

    def finish_one(self) -> None:
        if self.total is None or self.done < self.total:  # a plan replays stages again
            self.bar.update()
            self.done += 1


_STEPS: ContextVar[_Steps | None] = ContextVar("accelsim_progress_steps", default=None)


@contextmanager
def steps(total: int | None, desc: str, *, quiet: bool = False, stream: Any = None,
          unit: str = "stage") -> Iterator[None]:
    """Within the block, `stage(name)` calls advance a bar of `total` steps (None: counted
    without a total) on a terminal; nothing is shown otherwise."""
    shown_bar = bar(total, desc, quiet=quiet, stream=stream, unit=unit)
    token = _STEPS.set(_Steps(shown_bar, total))
    try:
        yield
    finally:
        _STEPS.reset(token)
        shown_bar.close()


def prefix(text: str) -> None:
    """Show `text` before the stage names from now on (e.g. the chip of `compare`)."""
    current = _STEPS.get()
    if current is not None:
        current.prefix = text


def stage(name: str) -> None:
    """`name` starts (the stage before it is done): shown on the bar of the enclosing
    `steps`, if a command opened one; otherwise nothing."""
    current = _STEPS.get()
    if current is not None:
        current.stage(name)
