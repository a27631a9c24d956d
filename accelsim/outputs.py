"""Output paths a command will write, checked before any simulation starts.

A typo in `--json` should not cost a ten-minute simulation, and `--json` pointed at the input
spec must not overwrite it. Each path must name a file (not a directory) in an existing,
writable directory, must not be one of the command's input files, and, for plots, must end in
an image extension: matplotlib would otherwise add `.png` to a name the user did not write.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from accelsim.errors import AccelsimError

#: Extensions matplotlib writes without a LaTeX or Ghostscript install.
PLOT_EXTENSIONS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def check_output(option: str, path: str, inputs: Iterable[str] = (), *,
                 extensions: tuple[str, ...] = (), append: bool = False) -> None:
    """Raise AccelsimError unless `path` can be written as the output of `option`.

    `append`: the file may exist and is added to (a result store), still never an input.
    """
    where = f"{option} {path}"
    if not path or "\0" in path:
        raise AccelsimError(f"{where}: expected a file name, got {path!r}")
    p = Path(path)
    if extensions and p.suffix.lower() not in extensions:
        raise AccelsimError(f"{where}: expected a file name ending in "
                            f"{', '.join(extensions)}, got {p.suffix or 'no extension'} "
                            f"(e.g. {p.name or 'plot'}.png)")
    if p.is_dir():
        raise AccelsimError(f"{where}: expected a file name, got a directory")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise AccelsimError(f"{where}: expected a path in an existing directory, got "
                            f"{parent}, which does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise AccelsimError(f"{where}: expected a writable directory, got {parent}, which "
                            "is not writable")
    if p.exists():
        if not p.is_file():
            raise AccelsimError(f"{where}: expected a regular file, got a special file")
        if not os.access(p, os.W_OK):
            raise AccelsimError(f"{where}: expected a writable file, got a read-only one")
        for source in inputs:
            try:
                same = os.path.samefile(p, source)
            except OSError:
                same = False
            if same:
                raise AccelsimError(f"{where}: expected a new output file, got the input "
                                    f"file {source}, which it would overwrite")
    del append  # an existing store is fine; the checks above already hold for it


def check_output_dir(option: str, path: str) -> None:
    """Raise AccelsimError unless `path` is, or can be made as, a writable folder of outputs."""
    where = f"{option} {path}"
    if not path or "\0" in path:
        raise AccelsimError(f"{where}: expected a folder name, got {path!r}")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise AccelsimError(f"{where}: expected a folder for the figures, got a file")
    if not p.exists() and p.suffix.lower() in PLOT_EXTENSIONS:
        raise AccelsimError(f"{where}: expected a folder for the figures (roofline.png, "
                            f"breakdown.png, gantt.png are written in it), got a file name "
                            f"ending in {p.suffix}")
    existing = p if p.is_dir() else (p.parent if str(p.parent) else Path("."))
    if not existing.is_dir():
        raise AccelsimError(f"{where}: expected a folder in an existing directory, got "
                            f"{existing}, which does not exist")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AccelsimError(f"{where}: expected a writable folder, got {existing}, which is "
                            "not writable")


def check_distinct(paths: dict[str, str | None]) -> None:
    """Two options writing one file would leave only the last one's output."""
    seen: dict[str, str] = {}
    for option, path in paths.items():
        if not path:
            continue
        key = os.path.abspath(path)
        if key in seen:
            raise AccelsimError(f"{option} {path}: expected a file other than {seen[key]}'s")
        seen[key] = option
