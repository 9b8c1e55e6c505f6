"""verification.runner: order, budget, skip rule, live callbacks, redaction, cancellation."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import asdict
from typing import Any

import pytest

from connhub.errors import BadRequest
from connhub.kit.threads import run_blocking
from connhub.verification.result import StepFailed, StepResult, StepStatus, VerificationOutcome
from connhub.verification.runner import Step, StepContext, run_steps, stream_steps

PASSWORD = "hunter2-Sup3rSecret!"


def ok(message: str, delay: float = 0.0) -> Any:
    async def run(ctx: StepContext) -> str:
        await asyncio.sleep(delay)
        return message

    return run


def fails(exc: BaseException) -> Any:
    async def run(ctx: StepContext) -> str:
        raise exc

    return run


async def test_all_steps_pass() -> None:
    steps = [Step("connectivity", ok("a")), Step("authentication", ok("b"))]
    outcome = await run_steps(steps, budget_s=1)
    assert outcome.success and outcome.code is None and outcome.raw_error is None
    assert [(s.name, s.status, s.message) for s in outcome.steps] == [
        ("connectivity", StepStatus.PASSED, "a"),
        ("authentication", StepStatus.PASSED, "b"),
    ]
    assert outcome.checked_at.tzinfo is not None


async def test_first_failure_skips_the_rest() -> None:
    called: list[str] = []

    async def never(ctx: StepContext) -> str:
        called.append("permissions")
        return "no"

    steps = [
        Step("connectivity", ok("a")),
        Step("authentication", fails(StepFailed("invalid_credentials", "bad login", "raw 28P01"))),
        Step("permissions", never),
    ]
    outcome = await run_steps(steps, budget_s=1)
    assert not outcome.success
    assert [s.status for s in outcome.steps] == [
        StepStatus.PASSED,
        StepStatus.FAILED,
        StepStatus.SKIPPED,
    ]
    assert outcome.code == "invalid_credentials"
    assert outcome.message == "bad login"
    assert outcome.raw_error == "raw 28P01"
    assert outcome.steps[2].code is None and "authentication" in outcome.steps[2].message
    assert called == []


async def test_on_step_is_called_as_each_step_finishes() -> None:
    seen: list[tuple[str, float]] = []
    last_finished: list[float] = []

    async def on_step(result: StepResult) -> None:
        seen.append((result.name, time.monotonic()))

    async def last(ctx: StepContext) -> str:
        await asyncio.sleep(0.1)
        last_finished.append(time.monotonic())
        return "done"

    steps = [Step("one", ok("1", 0.05)), Step("two", ok("2", 0.05)), Step("three", last)]
    await run_steps(steps, budget_s=2, on_step=on_step)
    assert [name for name, _ in seen] == ["one", "two", "three"]
    stamps = [t for _, t in seen]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    assert stamps[0] < last_finished[0]  # streamed before the run ended


async def test_a_step_that_overruns_the_budget_is_a_timeout() -> None:
    steps = [
        Step("connectivity", ok("a")),
        Step("authentication", ok("never", 10)),
        Step("permissions", ok("c")),
    ]
    started = time.monotonic()
    outcome = await run_steps(steps, budget_s=0.3)
    elapsed = time.monotonic() - started
    assert elapsed < 0.3 * 1.1
    assert outcome.code == "timeout"
    assert "0.3 s verification budget" in outcome.message
    assert outcome.steps[2].status is StepStatus.SKIPPED


async def test_each_step_gets_what_is_left_of_the_budget() -> None:
    seen: list[float] = []

    async def record(ctx: StepContext) -> str:
        seen.append(ctx.remaining())
        await asyncio.sleep(0.1)
        return "ok"

    await run_steps([Step("a", record), Step("b", record)], budget_s=1)
    assert 0.95 < seen[0] <= 1
    assert 0.8 < seen[1] < 0.91


async def test_no_budget_left_fails_without_running_the_step() -> None:
    ran: list[str] = []

    async def step(ctx: StepContext) -> str:
        ran.append("x")
        return "ok"

    ctx = StepContext(deadline=time.monotonic() - 1)
    outcome = await run_steps([Step("connectivity", step)], ctx, budget_s=5)
    assert outcome.code == "timeout" and ran == []
    assert "before the connectivity check could start" in outcome.message


async def test_unexpected_errors_are_provider_errors() -> None:
    outcome = await run_steps([Step("connectivity", fails(ZeroDivisionError("x")))], budget_s=1)
    assert outcome.code == "provider_error"
    assert "ZeroDivisionError" in outcome.message
    assert outcome.raw_error is not None and outcome.raw_error.startswith("ZeroDivisionError")


async def test_a_bad_request_is_invalid_config() -> None:
    error = BadRequest("config.sslMode must be one of ...", code="invalid_config")
    outcome = await run_steps([Step("connectivity", fails(error))], budget_s=1)
    assert outcome.code == "invalid_config" and "sslMode" in outcome.message
    outcome = await run_steps([Step("connectivity", fails(BadRequest("odd")))], budget_s=1)
    assert outcome.code == "invalid_config"


async def test_a_step_s_own_timeout_error_is_a_timeout_too() -> None:
    outcome = await run_steps([Step("authentication", fails(TimeoutError("socket")))], budget_s=1)
    assert outcome.code == "timeout"
    assert outcome.message == "Timed out during the authentication check"


def _all_text(outcome: VerificationOutcome) -> str:
    return repr(asdict(outcome)) + repr(outcome.details()) + repr(outcome.to_public())


@pytest.mark.parametrize(
    "failure",
    [
        StepFailed(
            "invalid_credentials",
            f"login as reader:{PASSWORD} failed",
            f'FATAL: password "{PASSWORD}" rejected; dsn=postgresql://reader:{PASSWORD}@db/x',
        ),
        RuntimeError(f"driver exploded near password={PASSWORD} and {PASSWORD.upper()}"),
    ],
)
async def test_secrets_never_reach_a_result(failure: BaseException) -> None:
    async def leaky(ctx: StepContext) -> str:
        ctx.identity["note"] = f"user reader / {PASSWORD}"
        return f"connected with {PASSWORD}"

    collected: list[StepResult] = []

    async def on_step(result: StepResult) -> None:
        collected.append(result)

    steps = [Step("connectivity", leaky), Step("authentication", fails(failure))]
    outcome = await run_steps(steps, budget_s=1, on_step=on_step, secrets=[PASSWORD])
    assert not outcome.success
    assert PASSWORD not in _all_text(outcome)
    assert all(PASSWORD not in repr(asdict(r)) for r in collected)
    assert outcome.raw_error  # still something useful for the operator


async def test_cleanups_run_even_when_cancelled() -> None:
    cleaned: list[str] = []

    async def opener(ctx: StepContext) -> str:
        ctx.defer(lambda: cleaned.append("closed"))
        await asyncio.sleep(10)
        return "never"

    task = asyncio.create_task(run_steps([Step("authentication", opener)], budget_s=30))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["closed"]


async def test_stream_yields_steps_then_the_outcome() -> None:
    steps = [
        Step("one", ok("1")),
        Step("two", fails(StepFailed("timeout", "slow"))),
        Step("x", ok("3")),
    ]
    items = [item async for item in stream_steps(steps, budget_s=1)]
    assert [type(i).__name__ for i in items] == [
        "StepResult",
        "StepResult",
        "StepResult",
        "VerificationOutcome",
    ]
    outcome = items[-1]
    assert isinstance(outcome, VerificationOutcome) and outcome.code == "timeout"


async def test_closing_the_stream_cancels_the_running_step_and_abandons_its_thread() -> None:
    thread_done = threading.Event()
    cancelled = asyncio.Event()

    def blocking_login() -> str:
        time.sleep(0.5)
        thread_done.set()
        return "late"

    async def login(ctx: StepContext) -> str:
        try:
            return await run_blocking(blocking_login)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    stream = stream_steps(
        [Step("connectivity", ok("a")), Step("authentication", login)], budget_s=5
    )
    first = await anext(stream)
    assert isinstance(first, StepResult) and first.name == "connectivity"
    await asyncio.sleep(0.05)  # the login is now running in its thread
    started = time.monotonic()
    await stream.aclose()
    assert time.monotonic() - started < 0.2
    assert cancelled.is_set()
    assert not thread_done.is_set()  # abandoned, still running; its result will be ignored
    await asyncio.sleep(0.6)
    assert thread_done.is_set()


def test_context_remaining_is_never_negative() -> None:
    assert StepContext(deadline=time.monotonic() - 5).remaining() == 0
    assert StepContext().remaining() == math.inf
