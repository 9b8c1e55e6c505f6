"""The private key never appears in any response of any endpoint, nor in the logs."""

from __future__ import annotations

import io
import logging
import uuid

import httpx
from wh_support import base, body, item, probe_url

from connhub.connections import service as core
from connhub.kit import logs
from connhub.models import Connection
from connhub.runtime import Runtime
from support.fakesnow_server import (
    FakesnowServer,
    create_objects,
    fakesnow_server_fixture,  # noqa: F401 - registers the fixture
    unique_name,
)


async def test_private_key_never_leaves(
    wh: httpx.AsyncClient, admin, runtime: Runtime, fakesnow_server: FakesnowServer
) -> None:
    database = unique_name()
    create_objects(fakesnow_server, database, "ANALYTICS")  # no stage: the test fails
    stream = io.StringIO()
    previous = logging.getLogger().level
    handler = logs.configure("DEBUG", stream)
    bodies: list[str] = []
    org = admin.workspace_slug
    try:

        async def call(method: str, url: str, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
            resp = await wh.request(method, url, headers=admin.headers, **kw)
            bodies.append(resp.text)
            bodies.extend(f"{k}: {v}" for k, v in resp.headers.items())
            return resp

        payload = body(
            account_identifier="fakeacct",
            database=database,
            host=fakesnow_server.host,
            port=fakesnow_server.port,
            protocol="http",
        )
        created = (await call("POST", base(org), json=payload)).json()
        cid = created["id"]
        await call("POST", base(org), json=payload)  # 409
        await call("POST", base(org), json={**payload, "privateKey": "x"})  # 400
        await call("GET", base(org))
        await call("GET", item(org, cid))
        await call("POST", probe_url(org, cid), json={})  # fails: missing stage
        await call("PATCH", item(org, cid), json={"role": "OTHER_ROLE"})
        await call("PUT", item(org, cid), json=payload)
        await call("PATCH", item(org, cid), json={"type": "snowflake"})
        await call("GET", "/api/v1/connections")
        await call("GET", f"/api/v1/connections/{cid}")
        await call("GET", f"/api/v1/connections/{cid}/edit-settings")
        await call("POST", f"/api/v1/connections/{cid}/verify")
        async with runtime.sessions() as session:
            conn = await session.get(Connection, uuid.UUID(cid))
            assert conn is not None
            pem = (await core.load_credentials(session, runtime.envelope, conn))["privateKey"]
        await call("DELETE", item(org, cid))
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(previous)
    everything = "\n".join(bodies) + stream.getvalue()
    assert "PRIVATE KEY" not in everything
    body_lines = [line for line in pem.splitlines() if line and "-----" not in line]
    assert len(body_lines) > 10
    for line in body_lines:
        assert line not in everything
    assert "".join(body_lines) not in everything
    assert stream.getvalue(), "the access log should have recorded the requests"
