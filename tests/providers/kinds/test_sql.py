"""providers.kinds.sql: the three SQL steps, the egress seam, session hygiene, open_session.

A fake adapter (registered as ``connhub.providers.custom.fakesql``) drives the kind's own
logic; the real PostgreSQL and MariaDB and a loopback black hole cover the network paths.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
import types
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from typing import Any

import psycopg
import pytest

from connhub.errors import BadRequest, UpstreamError
from connhub.kit.egress import EgressPolicy
from connhub.kit.threads import run_blocking
from connhub.providers.kinds.sql import (
    close_session,
    open_session,
    refuse_options,
    require_host,
    require_port,
    sql_steps,
)
from connhub.providers.kinds.sql_driver import ConnectRequest, ConnectTarget
from connhub.verification.codes import ErrorCode
from connhub.verification.result import StepFailed, StepStatus
from connhub.verification.runner import run_steps

LOOPBACK = EgressPolicy(["127.0.0.1"])
PASSWORD = "pa55-w0rd-Sekrit"


class FakeConn:
    def __init__(self) -> None:
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()


class FakeAdapter:
    name = "fakesql"
    dialect = "postgres"
    driver_module = "json"

    def __init__(self) -> None:
        self.connect_delay = 0.0
        self.connect_error: BaseException | None = None
        self.check_delay = 0.0
        self.check_error: BaseException | None = None
        self.requests: list[ConnectRequest] = []
        self.conns: list[FakeConn] = []

    def target(self, config: Mapping[str, Any]) -> ConnectTarget:
        return ConnectTarget(require_host(config), require_port(config, 5432))

    def validate_options(self, config: Mapping[str, Any]) -> None:
        refuse_options(config, ["sslrootcert"], why="reads a file")

    def connect(self, request: ConnectRequest) -> FakeConn:
        self.requests.append(request)
        time.sleep(self.connect_delay)
        if self.connect_error is not None:
            raise self.connect_error
        conn = FakeConn()
        self.conns.append(conn)
        return conn

    def permission_checks(self, conn: Any, config: Mapping[str, Any]) -> str:
        time.sleep(self.check_delay)
        if self.check_error is not None:
            raise self.check_error
        return "fine"

    def classify(self, exc: BaseException) -> str:
        return "invalid_credentials" if "password" in str(exc) else "provider_error"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAdapter:
    adapter = FakeAdapter()
    module = types.ModuleType("connhub.providers.custom.fakesql")
    module.ADAPTER = adapter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "connhub.providers.custom.fakesql", module)
    return adapter


@pytest.fixture
def listener() -> Iterator[int]:
    """A loopback port that accepts (the fake adapter never talks to it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def config(port: int, **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "database": "db", "username": "u", **extra}


# --- option helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["a.example,b.example", "/var/run/postgresql", "user@db", "db example", "", "x\x00"]
)
def test_require_host_refuses_lists_sockets_and_userinfo(host: str) -> None:
    with pytest.raises(BadRequest) as info:
        require_host({"host": host})
    assert info.value.code == "invalid_config"


def test_require_port() -> None:
    assert require_port({}, 5432) == 5432
    assert require_port({"port": "6543"}, 5432) == 6543
    for bad in (0, 70000, True, "x", 3.5):
        with pytest.raises(BadRequest):
            require_port({"port": bad}, 5432)


@pytest.mark.parametrize("key", ["sslrootcert", "sslRootCert", "ssl_root_cert", "SSL-ROOT-CERT"])
def test_refuse_options_ignores_case_and_separators(key: str) -> None:
    with pytest.raises(BadRequest) as info:
        refuse_options({key: "/etc/passwd"}, ["sslrootcert"], why="reads a file")
    assert info.value.field == f"config.{key}"


# --- steps with the fake adapter -----------------------------------------------------------


async def test_three_steps_pass_and_the_session_is_closed(fake: FakeAdapter, listener: int) -> None:
    steps = sql_steps("fakesql", config(listener), {"password": PASSWORD}, egress=LOOPBACK)
    outcome = await run_steps(steps, budget_s=2)
    assert outcome.success, outcome
    assert [s.name for s in outcome.steps] == ["connectivity", "authentication", "permissions"]
    assert outcome.steps[0].message == f"Successfully connected to fakesql at 127.0.0.1:{listener}"
    assert outcome.identity["address"] == "127.0.0.1"
    request = fake.requests[0]
    assert request.address == "127.0.0.1"  # the checked address, handed to the driver
    assert request.target == ConnectTarget("127.0.0.1", listener)
    assert 0 < request.timeout_s <= 2
    assert fake.conns[0].closed.is_set()


async def test_a_failed_permission_check_still_closes_the_session(
    fake: FakeAdapter, listener: int
) -> None:
    fake.check_error = StepFailed(ErrorCode.PERMISSION_DENIED, "no USAGE on schema s")
    steps = sql_steps("fakesql", config(listener), {}, egress=LOOPBACK)
    outcome = await run_steps(steps, budget_s=2)
    assert outcome.code == "permission_denied"
    assert [s.status for s in outcome.steps][1:] == [StepStatus.PASSED, StepStatus.FAILED]
    assert fake.conns[0].closed.wait(2)


async def test_dangerous_option_fails_connectivity(fake: FakeAdapter, listener: int) -> None:
    cfg = config(listener, sslRootCert="/etc/ssl/private/key.pem")
    outcome = await run_steps(sql_steps("fakesql", cfg, {}, egress=LOOPBACK), budget_s=1)
    assert outcome.code == "invalid_config"
    assert outcome.steps[0].status is StepStatus.FAILED
    assert fake.requests == []


async def test_egress_policy_blocks_loopback(fake: FakeAdapter, listener: int) -> None:
    steps = sql_steps("fakesql", config(listener), {}, egress=EgressPolicy())
    outcome = await run_steps(steps, budget_s=1)
    assert outcome.code == "network_unreachable"
    assert "egress policy" in outcome.message
    assert fake.requests == []


async def test_refused_port_is_network_unreachable(fake: FakeAdapter) -> None:
    # A real driver cannot log in to a refused port either; the login's failure makes the
    # kind probe TCP, and the probe's refusal decides the step.
    fake.connect_error = ConnectionRefusedError(111, "Connection refused")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        outcome = await run_steps(
            sql_steps("fakesql", config(port), {}, egress=LOOPBACK), budget_s=1
        )
    assert outcome.code == "network_unreachable"
    assert "Could not reach" in outcome.message


async def test_driver_errors_are_classified_and_redacted(fake: FakeAdapter, listener: int) -> None:
    fake.connect_error = RuntimeError(
        f"FATAL: password authentication failed (dsn postgresql://u:{PASSWORD}@h/db)"
    )
    steps = sql_steps("fakesql", config(listener), {"password": PASSWORD}, egress=LOOPBACK)
    outcome = await run_steps(steps, budget_s=1, secrets=[PASSWORD])
    assert outcome.code == "invalid_credentials"
    assert outcome.message.startswith("Authentication failed: FATAL: password authentication")
    assert outcome.raw_error and "RuntimeError" in outcome.raw_error
    assert PASSWORD not in repr(asdict(outcome))


async def test_a_login_that_arrives_after_the_budget_is_closed(
    fake: FakeAdapter, listener: int
) -> None:
    fake.connect_delay = 0.4
    steps = sql_steps("fakesql", config(listener), {}, egress=LOOPBACK)
    started = time.monotonic()
    outcome = await run_steps(steps, budget_s=0.2)
    assert time.monotonic() - started < 0.2 * 1.1
    assert outcome.code == "timeout"
    await asyncio.sleep(0.4)
    assert len(fake.conns) == 1 and fake.conns[0].closed.wait(1)


async def test_a_session_left_by_a_skipped_permission_step_is_closed(
    fake: FakeAdapter, listener: int
) -> None:
    fake.check_delay = 0.5
    steps = sql_steps("fakesql", config(listener), {}, egress=LOOPBACK)
    outcome = await run_steps(steps, budget_s=0.3)
    assert outcome.code == "timeout" and outcome.steps[2].status is StepStatus.FAILED
    assert fake.conns[0].closed.wait(1)  # the abandoned check thread closes it


# --- real servers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "extra"),
    [("postgres", {"sslMode": "disable"}), ("mysql", {"ssl": "disabled"})],
)
async def test_a_silent_server_times_out_within_the_budget(
    blackhole: int, provider: str, extra: dict[str, Any]
) -> None:
    cfg = {"host": "127.0.0.1", "port": blackhole, "database": "d", "username": "u", **extra}
    steps = sql_steps(provider, cfg, {"password": PASSWORD}, egress=LOOPBACK)
    started = time.monotonic()
    outcome = await run_steps(steps, budget_s=1.0)
    elapsed = time.monotonic() - started
    assert outcome.code == "timeout", outcome
    assert elapsed <= 1.1
    assert [s.status for s in outcome.steps] == [
        StepStatus.PASSED,
        StepStatus.FAILED,
        StepStatus.SKIPPED,
    ]


PG_CONFIG = {"host": "127.0.0.1", "port": 5432, "database": "postgres", "username": "postgres"}


async def test_open_session_is_read_only() -> None:
    conn = await open_session(
        "postgres", PG_CONFIG, {"password": "x"}, egress=LOOPBACK, timeout_s=5
    )
    try:

        def write() -> None:
            conn.execute("CREATE TEMP TABLE t (x int)")

        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            await run_blocking(write)
    finally:
        await close_session(conn)
    assert conn.closed


async def test_open_session_failures_are_upstream_errors() -> None:
    bad = {**PG_CONFIG, "database": "no_such_db_connhub"}
    with pytest.raises(UpstreamError) as info:
        await open_session("postgres", bad, {"password": "x"}, egress=LOOPBACK, timeout_s=5)
    assert info.value.code == "invalid_config"
    with pytest.raises(UpstreamError) as info:
        await open_session("postgres", PG_CONFIG, {}, egress=EgressPolicy(), timeout_s=5)
    assert info.value.code == "network_unreachable" and "egress policy" in info.value.message
    with pytest.raises(BadRequest):
        await open_session(
            "postgres", {**PG_CONFIG, "passfile": "/x"}, {}, egress=LOOPBACK, timeout_s=5
        )


async def test_open_session_times_out(blackhole: int) -> None:
    cfg = {**PG_CONFIG, "port": blackhole, "sslMode": "disable"}
    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        await open_session("postgres", cfg, {}, egress=LOOPBACK, timeout_s=0.5)
    assert info.value.code == "timeout"
    assert time.monotonic() - started < 0.6
