"""Health, readiness, OpenAPI and the provider catalogue endpoint."""

from __future__ import annotations


async def test_health_and_ready(client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["store"] is True


async def test_request_id_echoed(client) -> None:
    resp = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123"
    assert len((await client.get("/healthz")).headers["x-request-id"]) == 32


async def test_openapi_lists_the_contract_paths(client) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = set(spec["paths"])
    for path in [
        "/api/v1/connections/",
        "/api/v1/connections/{connection_id}",
        "/api/v1/connections/slug/{slug}",
        "/api/v1/connections/{connection_id}/disable",
        "/api/v1/connections/{connection_id}/reactivate",
        "/api/v1/connections/{connection_id}/set-default",
        "/api/v1/connections/{connection_id}/edit-settings",
        "/api/v1/providers",
    ]:
        assert path in paths


async def test_openapi_validation_items_match_what_is_sent(client) -> None:
    """422 items carry loc, msg and type only; the document must not promise ``input``."""
    spec = (await client.get("/openapi.json")).json()
    item = spec["components"]["schemas"]["ValidationError"]
    assert set(item["properties"]) == {"loc", "msg", "type"}
    assert set(item["required"]) <= {"loc", "msg", "type"}


async def test_providers_catalogue(client, admin) -> None:
    data = (await client.get("/api/v1/providers", headers=admin.headers)).json()
    names = {p["name"] for p in data["providers"]}
    assert len(names) == 25 and {"postgres", "snowflake", "s3", "shopify"} <= names
    pg = next(p for p in data["providers"] if p["name"] == "postgres")
    assert "password" in pg["credentials"]["properties"]
    assert "host" in pg["config"]["properties"]
