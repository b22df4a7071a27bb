"""The result of `GenesysClient.check_permissions()`: one line per call the app needs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PermissionCheck:
    """One harmless probe: what it exercised, the permission it proves, and how it went."""

    name: str
    permission: str
    ok: bool
    message: str

    def __str__(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        needs = f" [{self.permission}]" if self.permission else ""
        return f"{mark} {self.name}{needs}: {self.message}"


@dataclass(frozen=True, slots=True)
class PermissionReport:
    """Every probe in order; `ok` when all passed."""

    checks: tuple[PermissionCheck, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def missing(self) -> tuple[str, ...]:
        """Permissions whose probes failed."""
        return tuple(check.permission for check in self.checks if not check.ok and check.permission)

    def __str__(self) -> str:
        return "\n".join(str(check) for check in self.checks)
