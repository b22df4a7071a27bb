"""The result of `GenesysClient.check_permissions()`: one line per call the app needs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """How one check ended. UNVERIFIED is neither: nothing was refused, but nothing was proven either."""

    PASSED = "passed"
    FAILED = "failed"
    UNVERIFIED = "unverified"


_MARKS = {Outcome.PASSED: "ok  ", Outcome.FAILED: "FAIL", Outcome.UNVERIFIED: "????"}


@dataclass(frozen=True, slots=True)
class PermissionCheck:
    """One harmless probe: what it exercised, the permission it proves, and how it went."""

    name: str
    permission: str
    outcome: Outcome
    message: str
    refused: str = ""
    """What Genesys refused with a 403 ("a" or "a or b"); empty unless Genesys actually refused a permission."""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.PASSED

    def __str__(self) -> str:
        needs = f" [{self.permission}]" if self.permission else ""
        return f"{_MARKS[self.outcome]} {self.name}{needs}: {self.message}"


@dataclass(frozen=True, slots=True)
class PermissionReport:
    """Every probe in order; `ok` only when every one passed (an unverified check is not a pass)."""

    checks: tuple[PermissionCheck, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for check in self.checks if check.outcome is outcome)

    @property
    def missing(self) -> tuple[str, ...]:
        """What Genesys refused (403s only): never a permission a check merely could not reach."""
        return tuple(dict.fromkeys(check.refused for check in self.checks if check.refused))

    def summary(self) -> str:
        """ "2 checks passed, 1 failed, 1 could not be verified" (zero counts left out, passes always shown)."""
        passed = self.count(Outcome.PASSED)
        parts = [f"{passed} check{'' if passed == 1 else 's'} passed"]
        if failed := self.count(Outcome.FAILED):
            parts.append(f"{failed} failed")
        if unverified := self.count(Outcome.UNVERIFIED):
            parts.append(f"{unverified} could not be verified")
        return ", ".join(parts)

    def __str__(self) -> str:
        return "\n".join(str(check) for check in self.checks)
