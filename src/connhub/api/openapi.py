"""The OpenAPI document, as FastAPI makes it, with the error shapes we actually send.

FastAPI's ``ValidationError`` schema lists Pydantic's ``input`` and ``ctx``; our 422 items
carry ``loc``, ``msg`` and ``type`` only (``input`` would echo submitted credentials), so a
client generated from the document must not expect them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_NOT_SENT = ("input", "ctx")


def install(app: FastAPI) -> None:
    generate = app.openapi  # FastAPI's own: builds the document once and caches it on the app

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = generate()
        if fresh:
            item = schema.get("components", {}).get("schemas", {}).get("ValidationError", {})
            for name in _NOT_SENT:
                item.get("properties", {}).pop(name, None)
            if "required" in item:
                item["required"] = [r for r in item["required"] if r not in _NOT_SENT]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
