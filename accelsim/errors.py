"""Errors that carry enough context for a user to fix their input without a traceback."""

from __future__ import annotations

from dataclasses import dataclass


class AccelsimError(Exception):
    """Base class of every error accelsim raises on purpose (the CLI exits 2 on these)."""


@dataclass(frozen=True)
class Issue:
    """One problem in an input file: where it is, which key, what was expected and what was given."""

    file: str
    line: int | None
    col: int | None
    key_path: str
    expected: str
    got: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        key = self.key_path or "<document>"
        return f"{where}: {key}: expected {self.expected}, got {self.got}"


class SpecError(AccelsimError):
    """Every problem found while loading one or more spec files, reported together."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class SpecTypeError(AccelsimError, TypeError):
    """An API argument of the wrong type (a path that is not one, a spec where a workload goes)."""


class LocatedError(AccelsimError):
    """A rule that loaded specs break together (with the chip count, or the plan with the model),
    found after loading.

    `spec` ('hardware', 'workload', or 'plan': the workload's `parallel:` or `--plan`) and
    `key_path` say which file and key to blame, so the CLI can locate the message like a
    `SpecError` issue.
    """

    def __init__(self, subject: str, spec: str, key_path: str, expected: str, got: str) -> None:
        self.subject, self.spec, self.key_path = subject, spec, key_path
        self.expected, self.got = expected, got
        super().__init__(f"{key_path}: expected {expected}, got {got}")


class WorkTooLarge(LocatedError):
    """A simulation refused before it starts: its estimated work is beyond the configured limits."""
