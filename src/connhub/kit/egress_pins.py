"""The checked address for HTTP clients that look a host name up themselves.

Drivers that speak HTTPS (Snowflake, BigQuery and its token endpoint, Databricks) must connect
*by name*: TLS sends it (SNI) and checks the certificate against it. They resolve the name
again after the egress check, through urllib3's ``create_connection``, which left a DNS
rebinding window: a name that passed the check could answer with a blocked address the
second time. Inside ``pin(...)`` that lookup is replaced by the address the policy checked,
for the names it checked; urllib3 still sends and verifies the name over TLS (it passes it
separately), so nothing about the certificate check changes. Names that were not checked
resolve as before.

Pins live in a ContextVar: they follow a verification or a session into its worker threads
(``kit.threads.run_blocking`` runs calls in a copy of the caller's context) and no other
request sees them. A pooled session takes its pins along to the requests that lease it
later (``current`` and ``applied``; ``query.pool.Session``).

``install`` wraps each copy of urllib3 once (the one requests and the Databricks connector
use, and the Snowflake connector's vendored copy once it is imported); with no pins in the
context the wrapper only adds a dictionary lookup.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from connhub.kit.egress import ResolvedTarget

Pins = Mapping[tuple[str, int], str]

_pins: ContextVar[Pins | None] = ContextVar("connhub_egress_pins", default=None)

#: urllib3's lookup-and-connect function, in every copy our drivers use.
_LOOKUP_MODULES = (
    "urllib3.util.connection",
    "snowflake.connector.vendored.urllib3.util.connection",
)


_installing = threading.Lock()


def _key(host: str, port: int) -> tuple[str, int]:
    return host.strip("[]").rstrip(".").lower(), int(port)


def pin(targets: Iterable[ResolvedTarget]) -> Token[Pins | None]:
    """From now on in this context, connecting to each target's ``host:port`` by name goes
    to its checked ``address``. Returns the token ``unpin`` takes."""
    install()
    pins = dict(_pins.get() or {})
    for target in targets:
        pins[_key(target.host, target.port)] = target.address
    return _pins.set(pins)


def unpin(token: Token[Pins | None]) -> None:
    _pins.reset(token)


def current() -> Pins | None:
    """This context's pins, for work that later runs from another context (a pooled
    session used by the next request) to take along (``applied``)."""
    return _pins.get()


@contextmanager
def applied(pins: Pins | None) -> Iterator[None]:
    """``pins`` (from ``current()``) in force for the block, whatever this context had."""
    token = _pins.set(pins)
    try:
        yield
    finally:
        _pins.reset(token)


def install() -> None:
    """Route urllib3's lookups through the pins, in each copy imported so far (idempotent).

    Plain urllib3 is imported here; the Snowflake connector's vendored copy only once the
    connector is (its adapter calls this again after importing it).
    """
    importlib.import_module(_LOOKUP_MODULES[0])
    with _installing:
        for name in _LOOKUP_MODULES:
            module: Any = sys.modules.get(name)
            lookup = getattr(module, "create_connection", None)
            if lookup is not None and not getattr(lookup, "_connhub_pins", False):
                module.create_connection = _pinning(lookup)


def _pinning(create_connection: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(create_connection)
    def pinned_create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        pins = _pins.get()
        if pins:
            host, port = address
            checked = pins.get(_key(host, port))
            if checked is not None:
                address = (checked, port)
        return create_connection(address, *args, **kwargs)

    pinned_create_connection._connhub_pins = True  # type: ignore[attr-defined]
    return pinned_create_connection
