"""Stand-ins for a driver at the adapter seam, shared by the SQL adapter tests.

Where no real server is available, a test replaces the driver's ``connect`` with a
:class:`Recorder` (to see the exact arguments an adapter passes, or to make it raise the
driver's real exception classes for ``classify``) and runs ``permission_checks`` on a
:class:`RecordingConnection` (to see the exact statements). Driver-specific answers live in
subclasses in each test module.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import pytest

from connhub.errors import BadRequest
from connhub.providers.kinds.sql_driver import SqlAdapter
from connhub.verification.codes import ErrorCode


class Recorder:
    """Replaces a driver's ``connect(**kwargs)``: records each call, then raises or returns."""

    def __init__(self, raises: BaseException | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.raises = raises

    def record(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """What to keep of one call; a subclass reads what would be gone after the call."""
        return kwargs

    def __call__(self, **kwargs: Any) -> object:
        self.calls.append(self.record(kwargs))
        if self.raises is not None:
            raise self.raises
        return object()


class RecordingCursor:
    """A DB-API cursor that records statements; subclasses decide what ``fetchone`` returns."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, sql: str) -> None:
        self.statements.append(sql)

    def fetchone(self) -> tuple[Any, ...]:
        return (1,)

    def close(self) -> None:
        pass


CursorT = TypeVar("CursorT", bound=RecordingCursor)


class RecordingConnection(Generic[CursorT]):
    """Hands out one cursor, so a test can read its statements after the adapter closed it."""

    def __init__(self, cursor: CursorT) -> None:
        self._cursor = cursor

    def cursor(self) -> CursorT:
        return self._cursor


def assert_option_refused(adapter: SqlAdapter, config: dict[str, Any], field: str) -> None:
    """``validate_options`` refuses ``config`` as ``invalid_config``, naming ``field``."""
    with pytest.raises(BadRequest) as info:
        adapter.validate_options(config)
    assert info.value.code == ErrorCode.INVALID_CONFIG
    assert info.value.field == field
