"""``q`` search beyond ASCII: case-insensitive on both stores (SQLite's own lower() is not)."""

from __future__ import annotations


async def test_search_folds_case_beyond_ascii(client, admin) -> None:  # type: ignore[no-untyped-def]
    for name in ("Café Étoile", "ÜNÏCÖDÉ Warehouse", "Plain"):
        body = {
            "name": name,
            "provider": "postgres",
            "config": {"host": "db.example.com", "database": "d", "username": "u"},
            "credentials": {"password": "pw"},
        }
        created = await client.post("/api/v1/connections", json=body, headers=admin.headers)
        assert created.status_code == 201, created.text
    for q, expected in (
        ("étoile", {"Café Étoile"}),
        ("ÉTOILE", {"Café Étoile"}),
        ("ünïcödé", {"ÜNÏCÖDÉ Warehouse"}),
        ("plain", {"Plain"}),
    ):
        found = await client.get("/api/v1/connections", params={"q": q}, headers=admin.headers)
        assert {c["name"] for c in found.json()["connections"]} == expected, q
        assert found.json()["total"] == len(expected)
