"""verification.result and codes: the public shapes every face relies on."""

from __future__ import annotations

from datetime import UTC, datetime

from connhub.verification.codes import ErrorCode
from connhub.verification.result import StepFailed, StepResult, StepStatus, VerificationOutcome


def test_the_seven_codes() -> None:
    assert {c.value for c in ErrorCode} == {
        "invalid_credentials",
        "permission_denied",
        "network_unreachable",
        "timeout",
        "invalid_config",
        "token_expired",
        "provider_error",
    }
    assert ErrorCode.coerce("timeout") is ErrorCode.TIMEOUT
    assert ErrorCode.coerce("made_up") is ErrorCode.PROVIDER_ERROR
    assert StepFailed("nonsense", "m").code is ErrorCode.PROVIDER_ERROR


def test_step_public_shape() -> None:
    passed = StepResult("connectivity", StepStatus.PASSED, None, "ok", 12)
    failed = StepResult("authentication", StepStatus.FAILED, "invalid_credentials", "no", 3, "raw")
    assert passed.to_public() == {
        "name": "connectivity",
        "status": "passed",
        "message": "ok",
        "durationMs": 12,
    }
    assert failed.to_public() == {
        "name": "authentication",
        "status": "failed",
        "message": "no",
        "code": "invalid_credentials",
        "durationMs": 3,
    }
    assert "raw" not in str(failed.to_public())


def test_outcome_details_are_the_api_shape() -> None:
    steps = [
        StepResult("connectivity", StepStatus.PASSED, None, "ok", 5),
        StepResult("authentication", StepStatus.FAILED, "timeout", "slow", 7),
        StepResult("permissions", StepStatus.SKIPPED, None, "skipped", 0),
    ]
    outcome = VerificationOutcome(
        success=False,
        steps=steps,
        code="timeout",
        message="slow",
        raw_error=None,
        checked_at=datetime(2026, 4, 17, 10, 5, tzinfo=UTC),
        duration_ms=412,
        identity={"user": "reader"},
    )
    assert outcome.details() == {
        "checkedAt": "2026-04-17T10:05:00.000Z",
        "durationMs": 412,
        "checks": [
            {"name": "connectivity", "status": "passed", "message": "ok"},
            {"name": "authentication", "status": "failed", "message": "slow", "code": "timeout"},
            {"name": "permissions", "status": "skipped", "message": "skipped"},
        ],
        "identity": {"user": "reader"},
    }
    assert outcome.to_public()["success"] is False
    assert [s["name"] for s in outcome.to_public()["steps"]] == [
        "connectivity",
        "authentication",
        "permissions",
    ]
