"""The mypy baseline check (.ci/mypy_baseline.py): positions ignored, new errors counted."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "mypy_baseline.py"
_spec = importlib.util.spec_from_file_location("mypy_baseline", SCRIPT)
assert _spec is not None and _spec.loader is not None
mypy_baseline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mypy_baseline)

OUTPUT = """\
accelsim/a.py:12: error: Name "x" is not defined  [name-defined]
accelsim/a.py:12: note: See https://example
accelsim/a.py:40:7: error: Name "x" is not defined  [name-defined]
accelsim/b.py:3: error: Incompatible redefinition (redefinition with type "int", original defined on line 2)  [misc]
"""


def test_positions_are_ignored_and_duplicates_counted() -> None:
    found = mypy_baseline.parse(OUTPUT)
    assert found == Counter({'accelsim/a.py: Name "x" is not defined  [name-defined]': 2,
                             'accelsim/b.py: Incompatible redefinition (redefinition with type '
                             '"int", original defined on line N)  [misc]': 1})
    moved = OUTPUT.replace(":12:", ":99:").replace("line 2)", "line 5)")
    assert mypy_baseline.parse(moved) == found


def test_a_third_copy_of_a_known_error_is_new() -> None:
    found = mypy_baseline.parse(OUTPUT + "accelsim/a.py:77: error: Name \"x\" is not defined  "
                                         "[name-defined]\n")
    new = found - mypy_baseline.parse(OUTPUT)
    assert list(new.elements()) == ['accelsim/a.py: Name "x" is not defined  [name-defined]']


def test_checked_in_baseline_is_normalized() -> None:
    for line in mypy_baseline.read_baseline():
        assert line.startswith("accelsim/") and ": " in line
        assert not any(part.isdigit() for part in line.split(":")[1:2])
