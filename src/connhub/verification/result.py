"""What one verification run produces: per-step results and the overall outcome.

The same objects feed the three places a result is shown (SSE ``step``/``done`` events, the
synchronous test endpoints, and ``verificationDetails`` stored on the connection), so the
public shapes are built here once rather than in each face.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from connhub.verification.codes import ErrorCode


class StepStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class StepResult:
    """One named check. ``raw_error`` is the (redacted) driver message, kept for faces that
    must return it verbatim (the Warehouse API's ``last_error``); it is not in ``to_public``."""

    name: str
    status: StepStatus
    code: str | None
    message: str
    duration_ms: int
    raw_error: str | None = None

    def to_check(self) -> dict[str, Any]:
        """One entry of ``verificationDetails.checks`` (API.md section 3)."""
        out: dict[str, Any] = {"name": self.name, "status": str(self.status)}
        out["message"] = self.message
        if self.status is StepStatus.FAILED and self.code is not None:
            out["code"] = self.code
        return out

    def to_public(self) -> dict[str, Any]:
        """The SSE ``step`` payload (API.md section 2): the check plus ``durationMs``."""
        return {**self.to_check(), "durationMs": self.duration_ms}


class StepFailed(Exception):
    """Raised by a step (or an adapter) that knows exactly why it failed.

    Anything else a step raises is an unexpected error and is reported as ``provider_error``.
    """

    def __init__(self, code: ErrorCode | str, message: str, raw_error: str | None = None) -> None:
        super().__init__(message)
        self.code = ErrorCode.coerce(str(code))
        self.message = message
        self.raw_error = raw_error


def _iso_z(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@dataclass
class VerificationOutcome:
    """The whole run. ``code``/``message``/``raw_error`` are those of the first failure
    (``None``/success text/``None`` when every step passed)."""

    success: bool
    steps: list[StepResult]
    code: str | None
    message: str
    raw_error: str | None
    checked_at: datetime
    duration_ms: int
    identity: dict[str, Any] = field(default_factory=dict)

    def details(self) -> dict[str, Any]:
        """``verificationDetails`` exactly as the Connections API stores and returns it."""
        return {
            "checkedAt": _iso_z(self.checked_at),
            "durationMs": self.duration_ms,
            "checks": [step.to_check() for step in self.steps],
            "identity": dict(self.identity),
        }

    def to_public(self) -> dict[str, Any]:
        """The SSE ``done`` payload; faces add their own keys (e.g. ``source``)."""
        return {"success": self.success, "steps": [step.to_public() for step in self.steps]}
