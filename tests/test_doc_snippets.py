"""Every Python snippet of the README runs on its own as written; the tutorial's snippets run
in order as one session. Both from the repository root, as a reader would run them."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

REPO = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[str]:
    """The ```python fenced blocks of a markdown file, in order."""
    return _BLOCK.findall(path.read_text(encoding="utf-8"))


def test_blocks_are_found():
    assert len(python_blocks(REPO / "README.md")) >= 2
    assert len(python_blocks(REPO / "docs" / "tutorial.md")) >= 5
    assert python_blocks(REPO / "docs" / "tutorial.md")[0].startswith("import accelsim\n")


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(python_blocks(REPO / "README.md"))))
def test_readme_snippet_runs_on_its_own(index, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    code = python_blocks(REPO / "README.md")[index]
    exec(compile(code, f"README.md python block {index + 1}", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out.strip(), "each README snippet prints what it shows"


@pytest.mark.slow
def test_tutorial_runs_in_order(monkeypatch, capsys):
    matplotlib.use("Agg")
    monkeypatch.chdir(REPO)
    namespace: dict = {"__name__": "__main__"}
    for i, code in enumerate(python_blocks(REPO / "docs" / "tutorial.md")):
        exec(compile(code, f"docs/tutorial.md python block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "roofline.png" in out and "L2  96 MiB" in out
