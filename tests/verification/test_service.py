"""verification.service end to end: catalogue dispatch, budget, streaming into SSE."""

from __future__ import annotations

import time
from typing import Any

import pytest

from connhub.config import Settings
from connhub.errors import BadRequest
from connhub.kit.egress import EgressPolicy
from connhub.kit.sse import sse_stream
from connhub.providers.registry import ProviderRegistry, default_registry
from connhub.providers.spec import ProviderSpec
from connhub.verification.result import StepResult, StepStatus, VerificationOutcome
from connhub.verification.service import sse_events, verify, verify_stream

SETTINGS = Settings(verify_budget_s=5.0, egress_allow=["127.0.0.1"])
LOOPBACK = EgressPolicy.from_settings(SETTINGS)
PG = {"host": "127.0.0.1", "port": 5432, "database": "postgres", "username": "postgres"}
CREDS = {"password": "trusted-anyway"}


async def test_postgres_passes_and_details_are_stored_shape() -> None:
    outcome = await verify("postgres", PG, CREDS, settings=SETTINGS, egress=LOOPBACK)
    assert outcome.success, outcome
    details = outcome.details()
    assert [c["name"] for c in details["checks"]] == [
        "connectivity",
        "authentication",
        "permissions",
    ]
    assert details["identity"]["user"] == "postgres"
    assert details["checkedAt"].endswith("Z")


async def test_mysql_passes() -> None:
    cfg = {"host": "127.0.0.1", "port": 3306, "database": "mysql", "username": "root"}
    outcome = await verify("mysql", cfg, {"password": ""}, settings=SETTINGS, egress=LOOPBACK)
    assert outcome.success, outcome


async def test_on_step_sees_each_step_live() -> None:
    seen: list[tuple[str, float]] = []

    async def on_step(result: StepResult) -> None:
        seen.append((result.name, time.monotonic()))

    outcome = await verify(
        "postgres", PG, CREDS, settings=SETTINGS, egress=LOOPBACK, on_step=on_step
    )
    finished = time.monotonic()
    assert [name for name, _ in seen] == [s.name for s in outcome.steps]
    stamps = [t for _, t in seen]
    assert stamps == sorted(stamps) and stamps[-1] <= finished


async def test_egress_block_is_network_unreachable() -> None:
    outcome = await verify("postgres", PG, CREDS, settings=SETTINGS, egress=EgressPolicy())
    assert outcome.code == "network_unreachable"
    assert "egress policy" in outcome.message


async def test_a_silent_host_times_out_within_the_budget(blackhole: int) -> None:
    cfg = {**PG, "port": blackhole}
    started = time.monotonic()
    outcome = await verify("postgres", cfg, CREDS, settings=SETTINGS, egress=LOOPBACK, budget_s=1.0)
    elapsed = time.monotonic() - started
    assert outcome.code == "timeout"
    assert elapsed <= 1.0 * 1.1, elapsed
    assert outcome.duration_ms <= 1100


class _SlowCatalogue(ProviderRegistry):
    """A catalogue that takes 0.4 s to answer, like the first load in a fresh process."""

    def get(self, name: str) -> ProviderSpec:
        time.sleep(0.4)
        return super().get(name)


@pytest.mark.parametrize("streamed", [False, True])
async def test_loading_the_provider_counts_against_the_budget(streamed: bool) -> None:
    """A budget shorter than the catalogue's answer is spent before the first check: the
    reachable database is never contacted."""
    catalogue = _SlowCatalogue(default_registry().all())
    args = ("postgres", PG, CREDS)
    options: dict[str, Any] = {
        "settings": SETTINGS,
        "egress": LOOPBACK,
        "registry": catalogue,
        "budget_s": 0.2,
    }
    if streamed:
        outcome = [item async for item in verify_stream(*args, **options)][-1]
        assert isinstance(outcome, VerificationOutcome)
    else:
        outcome = await verify(*args, **options)
    assert outcome.code == "timeout"
    first = outcome.steps[0]
    assert (first.name, first.status) == ("connectivity", StepStatus.FAILED)
    assert first.message.endswith("used up before the connectivity check could start")


async def test_the_budget_comes_from_settings(blackhole: int) -> None:
    quick = SETTINGS.model_copy(update={"verify_budget_s": 0.5})
    started = time.monotonic()
    outcome = await verify(
        "mysql", {**PG, "port": blackhole}, CREDS, settings=quick, egress=LOOPBACK
    )
    assert outcome.code == "timeout"
    assert time.monotonic() - started <= 0.55


async def test_unknown_provider_and_unimplemented_kinds() -> None:
    with pytest.raises(BadRequest):
        await verify("nosuchdb", {}, {}, settings=SETTINGS, egress=LOOPBACK)
    with pytest.raises(BadRequest) as info:  # not valid for this provider: 400, not a 500
        await verify("s3", {}, {}, settings=SETTINGS, egress=LOOPBACK)
    assert (info.value.status_code, info.value.code) == (400, "not_supported")
    assert "'s3' cannot be verified yet" in info.value.message


async def test_stream_feeds_sse_step_and_done_events() -> None:
    stream = verify_stream("postgres", PG, CREDS, settings=SETTINGS, egress=LOOPBACK)
    frames = [frame.decode() async for frame in sse_stream(sse_events(stream), None)]
    assert [f.split("\n", 1)[0] for f in frames] == [
        "event: step",
        "event: step",
        "event: step",
        "event: done",
    ]
    assert '"name":"connectivity","status":"passed"' in frames[0]
    assert frames[-1].startswith('event: done\ndata: {"success":true,"steps":[')


async def test_stream_items_are_results_then_outcome() -> None:
    bad = {**PG, "database": "connhub_missing_db"}
    items: list[Any] = [
        item
        async for item in verify_stream("postgres", bad, CREDS, settings=SETTINGS, egress=LOOPBACK)
    ]
    assert [i.status for i in items[:3]] == [
        StepStatus.PASSED,
        StepStatus.FAILED,
        StepStatus.SKIPPED,
    ]
    assert isinstance(items[3], VerificationOutcome) and items[3].code == "invalid_config"
