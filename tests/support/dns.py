"""A resolver for the egress policy that answers from a table (no DNS traffic)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

Resolver = Callable[[str, int], Awaitable[list[str]]]


def fake_dns(table: dict[str, list[str]], calls: list[str] | None = None) -> Resolver:
    """A resolver answering from ``table``; unknown names fail like a real NXDOMAIN."""

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[host])

    return resolve
