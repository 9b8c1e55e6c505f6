"""URL and body helpers shared by the Warehouse API tests (imported as ``wh_support``)."""

from __future__ import annotations

from typing import Any

ORG_PATH = "/api/v1/organisations/{org}/integrations/warehouse-connections/"


def base(org: str) -> str:
    return ORG_PATH.format(org=org)


def item(org: str, cid: str) -> str:
    return f"{base(org)}{cid}/"


def probe_url(org: str, cid: str) -> str:
    return f"{base(org)}{cid}/test/"


def body(**overrides: Any) -> dict[str, Any]:
    return {"type": "snowflake", "account_identifier": "xy12345.us-east-1", **overrides}
