"""Run an ordered list of named checks under one time budget.

Rules (DESIGN.md convention 4, API.md sections 2 and 3):

* steps run in order; each gets what is left of the budget (``ctx.remaining()``) and is
  wrapped in ``asyncio.timeout`` so a stuck driver turns into a ``timeout`` failure;
* the first failure marks every later step ``skipped``;
* a step's known failure is :class:`StepFailed`; any other exception is ``provider_error``
  (a ``ConnhubError`` keeps its code when it is one of ours; a ``BadRequest`` is bad input,
  so ``invalid_config``);
* every message and raw error goes through :func:`connhub.kit.redact.redact` with the run's
  secrets before anyone sees it, because driver errors sometimes echo connection strings;
* ``on_step`` is awaited as each step finishes, which is what makes the SSE stream live.

Cancellation (client disconnect) propagates into the running step; blocking drivers run via
``kit.threads.run_blocking`` which abandons the worker thread, so cancellation is immediate
and the thread's late result is ignored. Callbacks registered with ``ctx.defer`` run in every
case, so a session opened by one step and never used by the next is still closed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from connhub.errors import BadRequest, ConnhubError
from connhub.kit.redact import redact, redact_exception, secret_scope
from connhub.verification.codes import ErrorCode
from connhub.verification.result import StepFailed, StepResult, StepStatus, VerificationOutcome

log = logging.getLogger(__name__)

_CODES = frozenset(code.value for code in ErrorCode)


@dataclass
class StepContext:
    """State shared by the steps of one run: the deadline, the identity found, cleanups."""

    deadline: float = math.inf  # time.monotonic() value; set by run_steps from the budget
    identity: dict[str, Any] = field(default_factory=dict)
    _cleanups: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def remaining(self) -> float:
        """Seconds left of the budget (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def defer(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the run ends, whatever the outcome.

        It must not block: it runs on the event loop, possibly while the run is being
        cancelled. Hand blocking work (closing a driver connection) to a thread.
        """
        self._cleanups.append(callback)

    def run_cleanups(self) -> None:
        while self._cleanups:
            callback = self._cleanups.pop()
            try:
                callback()
            except Exception:  # a failing cleanup must not hide the verification result
                log.exception("verification cleanup failed")


StepFn = Callable[[StepContext], Awaitable[str]]
OnStep = Callable[[StepResult], Awaitable[None]]


class Step(NamedTuple):
    """A named check: returns its success message or raises :class:`StepFailed`."""

    name: str
    run: StepFn


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _public_code(exc: ConnhubError) -> ErrorCode:
    if exc.code in _CODES:
        return ErrorCode(exc.code)
    if isinstance(exc, BadRequest):
        return ErrorCode.INVALID_CONFIG
    return ErrorCode.PROVIDER_ERROR


async def _run_one(
    step: Step, ctx: StepContext, budget_s: float, secrets: Sequence[str]
) -> StepResult:
    started = time.monotonic()
    code: ErrorCode | None = None
    raw: str | None = None
    remaining = ctx.remaining()
    if remaining <= 0:
        code = ErrorCode.TIMEOUT
        message = (
            f"Timed out: the {budget_s:g} s verification budget was used up "
            f"before the {step.name} check could start"
        )
    else:
        scope = asyncio.timeout(remaining)
        try:
            async with scope:
                message = await step.run(ctx)
        except StepFailed as exc:
            code, message, raw = exc.code, exc.message, exc.raw_error
        except TimeoutError as exc:
            code = ErrorCode.TIMEOUT
            if scope.expired():
                message = (
                    f"Timed out: the {budget_s:g} s verification budget ran out "
                    f"during the {step.name} check"
                )
            else:
                message = f"Timed out during the {step.name} check"
                raw = redact_exception(exc, secrets)
        except ConnhubError as exc:
            code, message = _public_code(exc), exc.message
        except Exception as exc:
            log.debug("unexpected error in verification step %s", step.name, exc_info=True)
            code = ErrorCode.PROVIDER_ERROR
            message = f"Unexpected error during the {step.name} check ({type(exc).__name__})"
            raw = redact_exception(exc, secrets)
    duration = _ms(time.monotonic() - started)
    if code is None:
        return StepResult(step.name, StepStatus.PASSED, None, redact(message, secrets), duration)
    return StepResult(
        step.name,
        StepStatus.FAILED,
        str(code),
        redact(message, secrets),
        duration,
        redact(raw, secrets) if raw is not None else None,
    )


def _skipped(step: Step, failed: StepResult) -> StepResult:
    return StepResult(
        step.name, StepStatus.SKIPPED, None, f"Skipped because the {failed.name} check failed", 0
    )


def _redact_identity(identity: dict[str, Any], secrets: Sequence[str]) -> dict[str, Any]:
    return {k: redact(v, secrets) if isinstance(v, str) else v for k, v in identity.items()}


async def run_steps(
    steps: Sequence[Step],
    ctx: StepContext | None = None,
    *,
    budget_s: float,
    on_step: OnStep | None = None,
    secrets: Iterable[str] = (),
) -> VerificationOutcome:
    """Run ``steps`` in order within ``budget_s`` seconds and return the outcome."""
    ctx = ctx if ctx is not None else StepContext()
    secret_list = [s for s in secrets if s]
    checked_at = datetime.now(UTC)
    started = time.monotonic()
    ctx.deadline = min(ctx.deadline, started + budget_s)
    results: list[StepResult] = []
    failure: StepResult | None = None
    # Live secrets for this task: log records written by drivers and steps are scrubbed too.
    with secret_scope(secret_list):
        try:
            for step in steps:
                if failure is None:
                    result = await _run_one(step, ctx, budget_s, secret_list)
                    if result.status is StepStatus.FAILED:
                        failure = result
                else:
                    result = _skipped(step, failure)
                results.append(result)
                if on_step is not None:
                    await on_step(result)
        finally:
            ctx.run_cleanups()
    duration = _ms(time.monotonic() - started)
    identity = _redact_identity(ctx.identity, secret_list)
    if failure is None:
        return VerificationOutcome(
            success=True,
            steps=results,
            code=None,
            message=f"All {len(results)} checks passed",
            raw_error=None,
            checked_at=checked_at,
            duration_ms=duration,
            identity=identity,
        )
    return VerificationOutcome(
        success=False,
        steps=results,
        code=failure.code,
        message=failure.message,
        raw_error=failure.raw_error,
        checked_at=checked_at,
        duration_ms=duration,
        identity=identity,
    )


_END = object()


async def stream_steps(
    steps: Sequence[Step],
    ctx: StepContext | None = None,
    *,
    budget_s: float,
    secrets: Iterable[str] = (),
) -> AsyncGenerator[StepResult | VerificationOutcome, None]:
    """Yield each :class:`StepResult` as it finishes, then the :class:`VerificationOutcome`.

    The run is a task fed into a queue, so a slow consumer never delays the checks. If the
    consumer stops early (``aclose()``, or the generator is cancelled on client disconnect),
    the run is cancelled: the running step stops at once and its worker thread is abandoned.
    """
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def feed(result: StepResult) -> None:
        queue.put_nowait(result)

    task = asyncio.create_task(
        run_steps(steps, ctx, budget_s=budget_s, on_step=feed, secrets=secrets),
        name="connhub-verification",
    )
    task.add_done_callback(lambda _t: queue.put_nowait(_END))
    try:
        while True:
            item = await queue.get()
            if item is _END:
                break
            assert isinstance(item, StepResult)
            yield item
        yield task.result()
    finally:
        if not task.done():
            task.cancel()
            # Wait for the cancellation to land (immediate: threads are abandoned) without
            # swallowing a cancellation aimed at us.
            await asyncio.wait([task])
