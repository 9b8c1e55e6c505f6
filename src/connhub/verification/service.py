"""Verify a provider's settings: pick the steps for its kind and run them under the budget.

Faces call ``verify`` (synchronous endpoints, stored ``verificationDetails``) or
``verify_stream`` (SSE). Both run the same steps, so a connection tested over SSE and then
verified through the Connections API reports the same checks.

The kind comes from the provider catalogue (``providers.registry``); only ``sql`` is
implemented so far. The runner registers the credentials as live secrets for the run, so
logs written while it runs are scrubbed too, not only the results.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from connhub.errors import BadRequest, ConnhubError
from connhub.kit import threads
from connhub.kit.egress import EgressPolicy
from connhub.kit.redact import secret_values
from connhub.verification.result import StepResult, VerificationOutcome
from connhub.verification.runner import OnStep, Step, StepContext, run_steps, stream_steps

if TYPE_CHECKING:
    from connhub.config import Settings
    from connhub.providers.registry import ProviderRegistry

#: Used only when the catalogue cannot be loaded (it is the source of truth otherwise).
SQL_PROVIDERS = frozenset({"postgres", "mysql", "sqlserver", "snowflake", "bigquery", "databricks"})


def _kind_and_steps(
    provider: str, registry: ProviderRegistry | None
) -> tuple[str, tuple[str, ...] | None]:
    if registry is None:
        try:
            from connhub.providers.registry import default_registry
        except ImportError:  # a trimmed build without the catalogue
            if provider in SQL_PROVIDERS:
                return "sql", None
            raise ConnhubError(f"Unknown provider '{provider}'", code="unknown_provider") from None
        registry = default_registry()
    spec = registry.get(provider)  # BadRequest(unknown_provider) for a name it lacks
    return spec.kind, tuple(spec.steps)


def build_steps(
    provider: str,
    config: Mapping[str, Any],
    credentials: Mapping[str, str],
    *,
    egress: EgressPolicy,
    registry: ProviderRegistry | None = None,
) -> list[Step]:
    """The provider's checks, in the order its definition declares them."""
    kind, declared = _kind_and_steps(provider, registry)
    if kind == "sql":
        from connhub.providers.kinds.sql import sql_steps

        steps = sql_steps(provider, config, credentials, egress=egress)
    else:
        # Not valid for this provider (the contract's 400), not a server failure.
        raise BadRequest(
            f"Connections of provider {provider!r} cannot be verified yet: verification "
            "covers the database and warehouse providers",
            code="not_supported",
        )
    if declared is None:
        return steps
    by_name = {step.name: step for step in steps}
    return [by_name[name] for name in declared if name in by_name]


def _budget(settings: Settings, budget_s: float | None) -> tuple[float, StepContext]:
    """The budget, and a context whose deadline runs from now: loading the catalogue or a
    provider's module on a process's first verification counts against it too."""
    budget = budget_s if budget_s is not None else settings.verify_budget_s
    return budget, StepContext(deadline=time.monotonic() + budget)


async def verify(
    provider: str,
    config: Mapping[str, Any],
    credentials: Mapping[str, str],
    *,
    settings: Settings,
    egress: EgressPolicy,
    on_step: OnStep | None = None,
    registry: ProviderRegistry | None = None,
    budget_s: float | None = None,
) -> VerificationOutcome:
    """Run every check for ``provider`` within ``settings.verify_budget_s`` (or ``budget_s``).

    A failed check is a result, not an exception: ``ConnhubError`` is raised only when the
    request itself is wrong (unknown provider, kind without verification).
    """
    budget, ctx = _budget(settings, budget_s)
    steps = build_steps(provider, config, credentials, egress=egress, registry=registry)
    threads.configure(settings.verify_threads)
    return await run_steps(
        steps, ctx, budget_s=budget, on_step=on_step, secrets=secret_values(credentials)
    )


async def verify_stream(
    provider: str,
    config: Mapping[str, Any],
    credentials: Mapping[str, str],
    *,
    settings: Settings,
    egress: EgressPolicy,
    registry: ProviderRegistry | None = None,
    budget_s: float | None = None,
) -> AsyncGenerator[StepResult | VerificationOutcome, None]:
    """``verify`` as a stream: each ``StepResult`` when it finishes, then the outcome.

    Closing the iterator early (client disconnect) cancels the running check.
    """
    budget, ctx = _budget(settings, budget_s)
    steps = build_steps(provider, config, credentials, egress=egress, registry=registry)
    threads.configure(settings.verify_threads)
    stream = stream_steps(steps, ctx, budget_s=budget, secrets=secret_values(credentials))
    try:
        async for item in stream:
            yield item
    finally:
        await stream.aclose()


async def sse_events(
    stream: AsyncIterator[StepResult | VerificationOutcome],
) -> AsyncGenerator[tuple[str, Any], None]:
    """``("step", ...)`` per check and ``("done", {"success", "steps"})`` for ``kit.sse``.

    Faces that add keys to ``done`` (the Sources API's ``source``) map the stream themselves.
    """
    try:
        async for item in stream:
            if isinstance(item, StepResult):
                yield "step", item.to_public()
            else:
                yield "done", item.to_public()
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
