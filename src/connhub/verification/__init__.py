"""Verification: ordered named checks under one time budget (DESIGN.md convention 4).

``service.verify``/``verify_stream`` are the entry points; ``runner`` runs steps with the
budget, skip rule, redaction and cancellation; ``result`` holds the public shapes; ``codes``
the machine-readable error codes.
"""

from connhub.verification.codes import ErrorCode
from connhub.verification.result import StepFailed, StepResult, StepStatus, VerificationOutcome

__all__ = ["ErrorCode", "StepFailed", "StepResult", "StepStatus", "VerificationOutcome"]
