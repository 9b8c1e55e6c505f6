"""Reading a driver exception, shared by the SQL adapters' ``classify`` methods.

Drivers rarely raise the socket error itself: the connector wraps it in its own error class
(often two or three layers deep, via ``raise ... from`` or an ``except`` block), so adapters
judge *the whole chain*. What each driver's wrappers are called and which numbers or messages
mean what stays in the adapter; this module only holds the walking and matching that was the
same in every adapter.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from connhub.verification.codes import ErrorCode

# (pattern, code) pairs, most specific first: the first pattern found in the message wins.
MessagePatterns = Sequence[tuple[re.Pattern[str], ErrorCode]]

# Class names meaning "could not reach the host" in clients built on requests and urllib3 (the
# Snowflake connector's vendored copies, google-auth's transport). urllib3's do not derive from
# OSError, so they are matched by name, which also covers vendored copies of the classes.
REQUESTS_UNREACHABLE = ("ConnectionError", "NewConnectionError", "MaxRetryError")

# Real chains are a few links long; the cap keeps a pathological one cheap to walk.
_MAX_CHAIN = 20


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything it was raised from or during, outermost first.

    Follows ``__cause__`` before ``__context__`` (an explicit ``raise ... from`` says more than
    an implicit one) and stops at a repeat, since a chain can loop back on itself.
    """
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen) and len(seen) < _MAX_CHAIN:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def network_code(exc: BaseException, *, unreachable_names: Collection[str]) -> ErrorCode | None:
    """Timeout or unreachable, judged from the socket-level errors anywhere in the chain.

    A timeout anywhere wins over an unreachable reading (a retry loop that ran out of time often
    wraps the refused connections it retried). Timeouts are recognised by type *name* too,
    because urllib3's and the drivers' timeout classes do not derive from ``TimeoutError``.
    ``unreachable_names`` are the driver's own class names that mean "could not reach the host"
    without deriving from ``OSError`` (urllib3's ``MaxRetryError``, ...); each adapter names its
    own so that a class one driver raises for a dropped connection does not change another's
    verdicts. ``None`` when nothing in the chain is about the network.
    """
    chain = exception_chain(exc)
    for cause in chain:
        if isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__:
            return ErrorCode.TIMEOUT
    for cause in chain:
        if isinstance(cause, OSError) or type(cause).__name__ in unreachable_names:
            return ErrorCode.NETWORK_UNREACHABLE
    return None


def first_match(patterns: MessagePatterns, text: str) -> ErrorCode | None:
    """The code of the first pattern found in ``text`` (for errors without a useful number)."""
    for pattern, code in patterns:
        if pattern.search(text):
            return code
    return None
