"""Helpers for the Sources API tests: URLs, headers, valid bodies per source type."""

from __future__ import annotations

from typing import Any

SECRET = "s3cr3t-Sources-" + "x" * 8  # never expected in any response body


def sources_url(caller: Any, suffix: str = "") -> str:
    return f"/api/v1/workspaces/{caller.workspace_id}/sources{suffix}"


def source_headers(caller: Any) -> dict[str, str]:
    return {**caller.headers, "X-Workspace-ID": str(caller.workspace_id)}


def snowflake_config(**extra: Any) -> dict[str, Any]:
    return {
        "account": "xy12345.us-east-1",
        "warehouse": "COMPUTE_WH",
        "database": "ANALYTICS",
        "schema": "PUBLIC",
        "username": "cdp_user",
        "password": SECRET,
        **extra,
    }


def body(
    source_type: str = "snowflake", name: str = "Production Snowflake", **config: Any
) -> dict[str, Any]:
    configs = {
        "snowflake": snowflake_config(),
        "bigquery": {
            "project_id": "acme-analytics",
            "dataset": "analytics",
            "credentials_json": '{"type": "service_account", "k": "' + SECRET + '"}',
        },
        "databricks": {
            "host": "adb-1234567890.azuredatabricks.net",
            "http_path": "/sql/1.0/warehouses/abc123",
            "token": "dapi" + SECRET,
            "catalog": "main",
            "schema": "default",
        },
    }
    merged = {**configs[source_type], **config}
    return {
        "name": name,
        "source_type": source_type,
        "config": {k: v for k, v in merged.items() if v is not ...},
    }
