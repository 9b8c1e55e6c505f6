"""Streamed connection tests over a real socket against a real uvicorn server.

Targets are real: fakesnow's Snowflake server driven by the unpatched connector, the BigQuery
fake driven by google-cloud-bigquery, a closed loopback port (refused at once) and a loopback
server that accepts TCP and never answers (connectivity passes at once, the login then runs
into the budget: the first ``step`` must reach the client long before ``done``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sources_support import SECRET, body, snowflake_config, source_headers, sources_url
from sse_client import read_events

from connhub.models import Connection
from connhub.runtime import Runtime
from connhub.workspaces.principal import Role
from support.bigquery_fake import (  # noqa: F401 - registers the fixtures
    BigQueryFake,
    _bigquery_fake_server,
    bigquery_fake_fixture,
)
from support.fakesnow_server import (  # noqa: F401 - fakesnow_server_fixture registers it
    FakesnowServer,
    closed_port,
    create_objects,
    fakesnow_server_fixture,
    silent_server,
    unique_name,
)
from support.live import LiveServer

STEP_NAMES = ["connectivity", "authentication", "permissions"]


@pytest.fixture
async def http(live_server: LiveServer) -> Any:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as client:
        yield client


@pytest.fixture
def fakesnow_db(fakesnow_server: FakesnowServer) -> str:
    name = unique_name("SRC")
    create_objects(fakesnow_server, name, "ANALYTICS")
    return name


@pytest.fixture
def silent_port() -> Iterator[int]:
    with silent_server() as port:
        yield port


def fakesnow_config(server: FakesnowServer, database: str, **extra: Any) -> dict[str, Any]:
    return {**server.config(database, "ANALYTICS"), "password": SECRET, **extra}


def loopback_snowflake(port: int) -> dict[str, Any]:
    return snowflake_config(host="127.0.0.1", port=port, protocol="http")


def assert_step_shape(step: dict[str, Any]) -> None:
    assert {"name", "status", "message"} <= step.keys()
    assert step["status"] in ("passed", "failed", "skipped")
    assert isinstance(step["message"], str) and step["message"]


async def test_new_connection_passes_against_fakesnow(
    http, admin, fakesnow_server, fakesnow_db
) -> None:
    payload = {"source_type": "snowflake", "config": fakesnow_config(fakesnow_server, fakesnow_db)}
    stream = await read_events(
        http, sources_url(admin, "/test"), headers=source_headers(admin), json_body=payload
    )
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache"
    assert [e.name for e in stream.events] == ["step", "step", "step", "done"]
    for step in stream.steps:
        assert_step_shape(step)
    assert [s["name"] for s in stream.steps] == STEP_NAMES
    assert all(s["status"] == "passed" for s in stream.steps), stream.steps
    assert stream.steps[0]["message"].startswith("Successfully connected to Snowflake")
    assert stream.steps[1]["message"] == "Credentials verified"
    assert stream.done["success"] is True
    assert stream.done["steps"] == stream.steps
    assert set(stream.done) == {"success", "steps"}
    assert SECRET not in str(stream.events)
    listing = await http.get(sources_url(admin), headers=source_headers(admin))
    assert listing.json() == []  # nothing persisted


async def test_new_connection_unreachable_fails_then_skips(http, admin) -> None:
    port = closed_port()
    payload = {"source_type": "snowflake", "config": loopback_snowflake(port)}
    stream = await read_events(
        http, sources_url(admin, "/test"), headers=source_headers(admin), json_body=payload
    )
    assert [s["status"] for s in stream.steps] == ["failed", "skipped", "skipped"]
    assert stream.steps[0]["code"] == "network_unreachable"
    assert f"127.0.0.1:{port}" in stream.steps[0]["message"]
    assert stream.done == {"success": False, "steps": stream.steps}


async def test_databricks_refused_port_is_a_failed_step(http, admin) -> None:
    payload = body("databricks", host="127.0.0.1")  # nothing listens on 127.0.0.1:443
    stream = await read_events(
        http,
        sources_url(admin, "/test"),
        headers=source_headers(admin),
        json_body={k: payload[k] for k in ("source_type", "config")},
    )
    assert [s["status"] for s in stream.steps] == ["failed", "skipped", "skipped"]
    assert stream.done["success"] is False
    assert SECRET not in str(stream.events)


async def test_steps_stream_as_they_finish(http, admin, silent_port) -> None:
    """Connectivity passes at once; the login hangs until the 3 s budget. The first event must
    not wait for the last: a buffered stream would deliver both at the end."""
    payload = {"source_type": "snowflake", "config": loopback_snowflake(silent_port)}
    stream = await read_events(
        http, sources_url(admin, "/test"), headers=source_headers(admin), json_body=payload
    )
    first, done = stream.events[0], stream.named("done")[0]
    assert first.name == "step" and first.data["name"] == "connectivity"
    assert first.data["status"] == "passed"
    assert first.at < 1.0, first.at
    assert done.at - first.at > 1.0, (first.at, done.at)
    assert done.at < 3.0 + 2.0  # the budget holds
    assert [s["status"] for s in stream.steps] == ["passed", "failed", "skipped"]
    assert stream.steps[1]["code"] == "timeout"


async def test_invalid_test_body_is_json_400_before_streaming(http, admin) -> None:
    cases = [
        ({"config": snowflake_config()}, "source_type is required"),
        ({"source_type": "snowflake"}, "config is required"),
        (
            {"source_type": "postgres", "config": {}},
            "source_type must be one of: snowflake, bigquery, databricks",
        ),
        (
            {"source_type": "snowflake", "config": snowflake_config(account=None)},
            "config.account is required",
        ),
    ]
    for payload, message in cases:
        stream = await read_events(
            http, sources_url(admin, "/test"), headers=source_headers(admin), json_body=payload
        )
        assert stream.status == 400, payload
        assert stream.headers["content-type"] == "application/json"
        assert stream.events == []
        assert stream.body == f'{{"error":"{message}"}}'
        assert SECRET not in stream.body


async def test_viewer_cannot_run_tests(http, make_caller, admin, make_source) -> None:
    viewer = await make_caller(Role.viewer, workspace=admin.workspace_slug)
    payload = {"source_type": "snowflake", "config": snowflake_config()}
    resp = await http.post(
        sources_url(viewer, "/test"), json=payload, headers=source_headers(viewer)
    )
    assert resp.status_code == 403
    source = await make_source(admin)
    resp = await http.post(
        sources_url(viewer, f"/{source['id']}/test"), headers=source_headers(viewer)
    )
    assert resp.status_code == 403
    assert resp.json() == {"error": "This action needs the member role"}


async def test_existing_source_connects_then_errors(
    http, admin, fakesnow_server, fakesnow_db, make_source
) -> None:
    source = await make_source(
        admin,
        {
            "name": "fake",
            "source_type": "snowflake",
            "config": fakesnow_config(fakesnow_server, fakesnow_db),
        },
    )
    url = sources_url(admin, f"/{source['id']}/test")
    stream = await read_events(http, url, headers=source_headers(admin))
    assert stream.status == 200
    assert [s["status"] for s in stream.steps] == ["passed"] * 3
    done = stream.done
    assert set(done) == {"success", "source", "steps"}
    assert done["success"] is True and done["steps"] == stream.steps
    assert done["source"]["status"] == "connected"
    assert done["source"]["status_error"] == ""
    assert done["source"]["config"]["password"] == "********"
    assert done["source"]["id"] == source["id"]
    got = (
        await http.get(sources_url(admin, f"/{source['id']}"), headers=source_headers(admin))
    ).json()
    assert got["status"] == "connected"

    # Point it at a closed port: a config change makes it pending, the test makes it error.
    port = closed_port()
    new_config = {**got["config"], "port": port}
    resp = await http.put(
        sources_url(admin, f"/{source['id']}"),
        headers=source_headers(admin),
        json={"config": new_config},
    )
    assert resp.json()["status"] == "pending"
    stream = await read_events(http, url, headers=source_headers(admin))
    done = stream.done
    assert done["success"] is False
    assert done["source"]["status"] == "error"
    assert done["source"]["status_error"] == stream.steps[0]["message"]
    assert f"127.0.0.1:{port}" in done["source"]["status_error"]
    assert SECRET not in str(stream.events)


async def test_bigquery_against_the_fake(http, admin, bigquery_fake: BigQueryFake) -> None:
    bigquery_fake.datasets.add(("acme-analytics", "marts"))
    config = {
        "project_id": "acme-analytics",
        "dataset": "marts",
        "api_endpoint": bigquery_fake.endpoint,
        "credentials_json": bigquery_fake.credentials_json(),
    }
    stream = await read_events(
        http,
        sources_url(admin, "/test"),
        headers=source_headers(admin),
        json_body={"source_type": "bigquery", "config": config},
    )
    assert [s["status"] for s in stream.steps] == ["passed"] * 3, stream.steps
    assert stream.done["success"] is True
    assert "PRIVATE KEY" not in str(stream.events)


async def test_existing_source_unknown_or_disabled_is_json(http, admin, make_source) -> None:
    missing = sources_url(admin, "/00000000-0000-4000-8000-000000000000/test")
    resp = await http.post(missing, headers=source_headers(admin))
    assert resp.status_code == 404 and resp.json() == {"error": "Source not found"}
    source = await make_source(admin)
    await http.post(f"/api/v1/connections/{source['id']}/disable", headers=admin.headers)
    resp = await http.post(
        sources_url(admin, f"/{source['id']}/test"), headers=source_headers(admin)
    )
    assert resp.status_code == 400
    assert resp.json() == {"error": "Connection is disabled; reactivate it first"}


def _verification_tasks() -> list[asyncio.Task[Any]]:
    return [
        t for t in asyncio.all_tasks() if t.get_name() == "connhub-verification" and not t.done()
    ]


async def _wait_no_verification(deadline_s: float) -> float:
    started = time.monotonic()
    while _verification_tasks():
        assert time.monotonic() - started < deadline_s, "verification still running"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_client_leaving_cancels_the_stored_test(
    http, admin, silent_port, make_source, runtime: Runtime
) -> None:
    """Read the first step, hang up: the server (same event loop as this test) cancels the
    check at once and records nothing, so the source stays pending after the budget."""
    source = await make_source(admin, body(**loopback_snowflake(silent_port)))
    started = time.monotonic()
    stream = await read_events(
        http,
        sources_url(admin, f"/{source['id']}/test"),
        headers=source_headers(admin),
        stop_after=1,
    )
    assert stream.steps[0]["name"] == "connectivity"
    assert _verification_tasks(), "the check should still be running when we hang up"
    assert await _wait_no_verification(1.0) < 1.0
    # Past the point where the abandoned check would have timed out and been recorded.
    await asyncio.sleep(max(0.0, 3.0 + 0.7 - (time.monotonic() - started)))
    got = (
        await http.get(sources_url(admin, f"/{source['id']}"), headers=source_headers(admin))
    ).json()
    assert got["status"] == "pending" and got["status_error"] == ""
    async with runtime.sessions() as session:
        conn = await session.get(Connection, uuid.UUID(source["id"]))
        assert conn is not None and conn.last_verified_at is None
        assert conn.verification_details == {}


async def test_client_leaving_cancels_the_unsaved_test(http, admin, silent_port) -> None:
    payload = {"source_type": "snowflake", "config": loopback_snowflake(silent_port)}
    stream = await read_events(
        http,
        sources_url(admin, "/test"),
        headers=source_headers(admin),
        json_body=payload,
        stop_after=1,
    )
    assert stream.steps[0]["status"] == "passed"
    assert await _wait_no_verification(1.5) < 1.5
