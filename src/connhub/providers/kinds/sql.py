"""The SQL kind: three verification steps and a session opener, once for every SQL provider.

Each provider brings a small adapter (``providers/custom/<name>.py``, ``ADAPTER``; see
``sql_driver.py``). This module owns what they share:

``connectivity``
    the adapter refuses dangerous options; the egress policy resolves the host once, checks
    every address and opens TCP to a checked one (the address is remembered);
``authentication``
    the adapter opens a session to *that* address (no second lookup) in a worker thread,
    with the driver's connect timeout set to what is left of the budget; an adapter with a
    non-blocking login (``LoopLogin``) opens it on the event loop instead;
``permissions``
    the adapter's read-only checks (``SELECT 1`` in the configured scope, ...) in the same
    worker thread (or on the loop), which then closes the session.

Driver errors are classified by the adapter, shown as a short message and kept verbatim (after
redaction by the runner) as ``raw_error``. An adapter may also define
``identity(conn, config) -> Mapping`` (who we are connected as, server version); it is
optional and its failure never fails a check.

A session opened in a worker thread whose caller has gone (budget expired, client left) is
closed by that thread as soon as the driver returns it; see ``_Holder``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from connhub.errors import BadRequest, ConnhubError, UpstreamError
from connhub.kit import egress_pins
from connhub.kit.egress import EgressBlocked, EgressPolicy, ResolvedTarget
from connhub.kit.redact import redact, redact_exception, secret_values
from connhub.kit.threads import run_blocking
from connhub.providers.kinds.sql_driver import (
    ConnectRequest,
    ConnectTarget,
    LoopLogin,
    SqlAdapter,
)
from connhub.verification.codes import ErrorCode
from connhub.verification.result import StepFailed
from connhub.verification.runner import Step, StepContext

log = logging.getLogger(__name__)
T = TypeVar("T")

_DISPLAY = {
    "postgres": "PostgreSQL",
    "mysql": "MySQL",
    "sqlserver": "SQL Server",
    "snowflake": "Snowflake",
    "bigquery": "BigQuery",
    "databricks": "Databricks",
}
_SHORT_DETAIL = 300
_CODES = frozenset(code.value for code in ErrorCode)
_SUMMARY = {
    ErrorCode.INVALID_CREDENTIALS: "Authentication failed",
    ErrorCode.PERMISSION_DENIED: "Permission denied",
    ErrorCode.NETWORK_UNREACHABLE: "Could not reach the server",
    ErrorCode.TIMEOUT: "Timed out",
    ErrorCode.INVALID_CONFIG: "Invalid configuration",
    ErrorCode.TOKEN_EXPIRED: "The token has expired",
    ErrorCode.PROVIDER_ERROR: "The server returned an error",
}


# --- option checks shared by the adapters -------------------------------------------------


def invalid_option(message: str, key: str) -> BadRequest:
    return BadRequest(message, code=ErrorCode.INVALID_CONFIG, field=f"config.{key}")


def _normal_key(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def refuse_options(config: Mapping[str, Any], denied: Iterable[str], *, why: str) -> None:
    """Refuse config keys that name driver options we never let a tenant set.

    Keys compare without case, ``_`` or ``-``, so ``sslRootCert``, ``ssl_root_cert`` and
    ``sslrootcert`` are the same option.
    """
    blocked = {_normal_key(name) for name in denied}
    for key in config:
        if _normal_key(str(key)) in blocked:
            raise invalid_option(f"config.{key} is not allowed: {why}", str(key))


def require_host(config: Mapping[str, Any], key: str = "host") -> str:
    """A single TCP host name or IP: no lists, socket paths, user-info or whitespace.

    Drivers read ``a,b`` as several hosts and ``/path`` as a Unix socket, either of which
    would connect somewhere the egress policy never checked.
    """
    host = config.get(key)
    if not isinstance(host, str) or not host.strip():
        raise invalid_option(f"config.{key} is required", key)
    if len(host) > 253 or any(ch.isspace() or ch in ",/\\@;'\"=\x00" for ch in host):
        raise invalid_option(f"config.{key} must be a single host name or IP address", key)
    return host


def require_port(config: Mapping[str, Any], default: int, key: str = "port") -> int:
    value = config.get(key, default)
    if value is None:
        value = default
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise invalid_option(f"config.{key} must be a port number (1-65535)", key)
    return value


def require_text(config: Mapping[str, Any], key: str, *, max_len: int = 255) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value:
        raise invalid_option(f"config.{key} is required", key)
    if len(value) > max_len or "\x00" in value:
        raise invalid_option(f"config.{key} must be at most {max_len} characters, without NUL", key)
    return value


def optional_text(config: Mapping[str, Any], key: str, *, max_len: int = 255) -> str | None:
    if config.get(key) in (None, ""):
        return None
    return require_text(config, key, max_len=max_len)


def load_adapter(provider: str) -> SqlAdapter:
    """The provider's adapter, imported on first use (drivers are heavy and optional)."""
    if not provider.isidentifier():
        raise ConnhubError(f"unknown SQL provider {provider!r}", code=ErrorCode.PROVIDER_ERROR)
    module = importlib.import_module(f"connhub.providers.custom.{provider}")
    return cast(SqlAdapter, module.ADAPTER)


def display_name(provider: str, adapter: SqlAdapter | None = None) -> str:
    named = getattr(adapter, "display_name", None)
    return named if isinstance(named, str) else _DISPLAY.get(provider, provider)


def _close_quietly(conn: Any) -> None:
    with suppress(Exception):
        conn.close()


def extra_targets(
    adapter: SqlAdapter, config: Mapping[str, Any], credentials: Mapping[str, str]
) -> list[ConnectTarget]:
    """Other hosts the adapter's driver reaches (``extra_targets``: e.g. an OAuth token
    endpoint), which pass the egress policy too."""
    extra = getattr(adapter, "extra_targets", None)
    return [] if extra is None else list(extra(config, credentials))


def close_in_background(conn: Any) -> None:
    """Close a driver connection without blocking the caller (close may do network I/O, by
    name for HTTPS drivers: the thread runs in the caller's context, with its pins)."""
    threading.Thread(
        target=contextvars.copy_context().run,
        args=(_close_quietly, conn),
        name="connhub-sql-close",
        daemon=True,
    ).start()


class _Holder:
    """Hands a connection from a worker thread to the async side, unless the side gave up.

    Once ``abandon`` has run, a connection the driver returns later is closed by the worker
    thread itself: a late login must not leave a session open on the customer's database.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: Any = None
        self._abandoned = False

    def open(self, adapter: SqlAdapter, request: ConnectRequest) -> None:
        """Worker thread: connect and keep the connection, or close it if nobody waits."""
        conn = adapter.connect(request)
        with self._lock:
            if not self._abandoned:
                self._conn = conn
                return
        _close_quietly(conn)

    def take(self) -> Any:
        with self._lock:
            conn, self._conn = self._conn, None
        return conn

    def abandon(self) -> None:
        """Event loop: stop waiting; close whatever was already handed over (off the loop)."""
        with self._lock:
            self._abandoned = True
            conn, self._conn = self._conn, None
        if conn is not None:
            close_in_background(conn)


def _classify(adapter: SqlAdapter, exc: BaseException) -> ErrorCode:
    try:
        code = adapter.classify(exc)
    except Exception:
        log.exception("%s adapter failed to classify %s", adapter.name, type(exc).__name__)
        return ErrorCode.PROVIDER_ERROR
    return ErrorCode.coerce(code)


def _detail(adapter: SqlAdapter, exc: BaseException) -> str:
    """One short line for people; the full text stays in ``raw_error``.

    An adapter may define ``error_message(exc) -> str`` to pick the useful part of its
    driver's wording (libpq prefixes every login error with the address it tried).
    """
    text = ""
    describe = getattr(adapter, "error_message", None)
    if describe is not None:
        with suppress(Exception):
            text = str(describe(exc))
    args = exc.args
    if not text and len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        text = f"{args[1]} (error {args[0]})"  # DB-API drivers' (errno, message) pairs
    if not text:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        text = lines[0] if lines else type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= _SHORT_DETAIL else text[: _SHORT_DETAIL - 3] + "..."


def _driver_failure(adapter: SqlAdapter, exc: BaseException) -> StepFailed:
    code = _classify(adapter, exc)
    return StepFailed(
        code, f"{_SUMMARY[code]}: {_detail(adapter, exc)}", raw_error=redact_exception(exc)
    )


def _config_failure(exc: ConnhubError) -> StepFailed:
    code = exc.code if exc.code in _CODES else ErrorCode.INVALID_CONFIG
    return StepFailed(code, exc.message)


@dataclass(frozen=True)
class _Checked:
    """What the login thread found after logging in: the checks' result or their error."""

    result: tuple[str, dict[str, Any]] | None = None
    error: BaseException | None = None


async def _within(seconds: float, call: Awaitable[T]) -> T:
    """``call``, or ``TimeoutError`` after ``seconds`` (no extra task, unlike ``wait_for``)."""
    async with asyncio.timeout(seconds):
        return await call


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# How long the login may take before a separate TCP probe runs to tell the network from the
# login (a healthy server logs in well within this).
_PROBE_AFTER_S = 0.25


def _consume_outcome(future: asyncio.Future[Any]) -> None:
    """An abandoned speculative login's error is not news: read it so asyncio stays quiet."""
    if not future.cancelled():
        future.exception()


class _SqlRun:
    """The steps of one verification, sharing the checked address and the open session."""

    def __init__(
        self,
        provider: str,
        adapter: SqlAdapter,
        config: Mapping[str, Any],
        credentials: Mapping[str, str],
        egress: EgressPolicy,
    ) -> None:
        self.provider = provider
        self.adapter = adapter
        self.config = config
        self.credentials = credentials
        self.egress = egress
        self.display = display_name(provider, adapter)
        self.target: ConnectTarget | None = None  # set by connectivity
        self.address: str | None = None
        self.holder = _Holder()
        self._login: asyncio.Future[_Checked] | None = None  # started by connectivity
        self._connected: asyncio.Future[None] | None = None

    async def _blocking(self, doing: str, fn: Callable[..., T], *args: Any, ctx: StepContext) -> T:
        """Run an adapter call in a worker thread; turn what it raises into a StepFailed."""
        return await self._driver_call(doing, run_blocking(fn, *args, timeout=ctx.remaining()))

    async def _driver_call(self, doing: str, call: Awaitable[T]) -> T:
        """Await a driver call that stops at the budget; turn what it raises into a StepFailed."""
        try:
            return await call
        except StepFailed:
            raise
        except ConnhubError as exc:
            raise _config_failure(exc) from None
        except TimeoutError:
            raise StepFailed(
                ErrorCode.TIMEOUT, f"Timed out {doing}: the verification budget ran out"
            ) from None
        except Exception as exc:
            raise _driver_failure(self.adapter, exc) from None

    def steps(self) -> list[Step]:
        return [
            Step("connectivity", self.connectivity),
            Step("authentication", self.authentication),
            Step("permissions", self.permissions),
        ]

    async def connectivity(self, ctx: StepContext) -> str:
        """Resolve and check the target once, then show TCP reaches the checked address.

        The login starts as soon as the address is checked. A healthy server answers it
        within moments, and that login is the proof that TCP works: a separate probe would
        cost the server another process (PostgreSQL forks one per connection). Only when the
        login fails or is slow does a TCP probe run, to tell the network from the login.
        """
        ctx.defer(self.holder.abandon)
        ctx.defer(self._cancel_login)  # a login still running when the run ends
        try:
            self.adapter.validate_options(self.config)
            target = self.adapter.target(self.config)
        except ConnhubError as exc:
            raise _config_failure(exc) from None
        self.target = target
        if target is None:
            return f"Configuration is valid; {self.display} is reached over HTTPS by its driver"
        where = f"{target.host}:{target.port}"
        try:
            # The runner's timeout around this step bounds the lookup (no extra task here).
            resolved = await self.egress.resolve(target.host, target.port)
            others = await self._check_extra_targets(ctx)
            self.address = resolved.address
            # Drivers that connect by name (TLS) get the checked addresses too: the login
            # task and its worker threads start from this context.
            ctx.defer(functools.partial(egress_pins.unpin, egress_pins.pin([resolved, *others])))
            connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._connected = connected
            self._login = asyncio.ensure_future(self._login_now(ctx))
            self._login.add_done_callback(_consume_outcome)
            first: set[asyncio.Future[Any]] = {connected, self._login}
            await asyncio.wait(
                first,
                timeout=min(_PROBE_AFTER_S, ctx.remaining()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if connected.done():
                ctx.identity.update(host=target.host, port=target.port, address=resolved.address)
                return f"Successfully connected to {self.display} at {where}"
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(resolved.address, target.port), ctx.remaining()
            )
        except EgressBlocked as exc:
            self._cancel_login()
            raise StepFailed(
                ErrorCode.NETWORK_UNREACHABLE,
                f"The egress policy blocked the connection to {exc.host}: {exc.reason}",
            ) from None
        except TimeoutError:
            self._cancel_login()
            raise StepFailed(ErrorCode.TIMEOUT, f"Timed out connecting to {where}") from None
        except OSError as exc:
            self._cancel_login()
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise StepFailed(
                ErrorCode.NETWORK_UNREACHABLE,
                f"Could not reach {where}: {reason}",
                raw_error=redact_exception(exc),
            ) from None
        except BaseException:
            self._cancel_login()
            raise
        # Closed on the next loop turn; nothing to flush, so waiting for it only adds latency.
        writer.close()
        ctx.identity.update(host=target.host, port=target.port, address=resolved.address)
        return f"Successfully connected to {self.display} at {where}"

    def _cancel_login(self) -> None:
        if self._login is not None:
            self._login.cancel()
            self._login = None

    async def _login_now(self, ctx: StepContext) -> _Checked:
        """Log in and run the permission checks in one worker-thread call.

        ``self._connected`` resolves the moment the session is open, so authentication
        reports then; the checks' outcome is this task's result, for the permissions step.
        One thread hand-off instead of two: each costs more than the ``SELECT 1`` itself.
        An adapter with a non-blocking login (``LoopLogin``) needs no thread at all.
        """
        loop = asyncio.get_running_loop()
        connected = self._connected or loop.create_future()
        self._connected = connected
        request = ConnectRequest(
            config=self.config,
            credentials=self.credentials,
            target=self.target,
            address=self.address,
            timeout_s=ctx.remaining(),
        )
        on_loop = self._loop_login()
        if on_loop is not None:
            return await self._login_on_loop(on_loop, request, connected, ctx)

        def signal() -> None:  # worker thread
            loop.call_soon_threadsafe(_set_done, connected)

        return await self._blocking(
            f"logging in to {self.display}", self._open_and_check, request, signal, ctx=ctx
        )

    def _loop_login(self) -> LoopLogin | None:
        """The adapter's event-loop login, when it has one and this config allows it."""
        allowed = getattr(self.adapter, "login_on_loop", None)
        if allowed is None or not allowed(self.config):
            return None
        return cast(LoopLogin, self.adapter)

    async def _login_on_loop(
        self,
        login: LoopLogin,
        request: ConnectRequest,
        connected: asyncio.Future[None],
        ctx: StepContext,
    ) -> _Checked:
        """The thread path's contract, on the loop: a login failure raises, a check's is kept.

        Both halves stop at the budget. Cancelled (the run ended or the client left), a
        half-open login is dropped by the driver and an open session is closed here.
        """
        login_call = _within(ctx.remaining(), login.connect_async(request))
        conn = await self._driver_call(f"logging in to {self.display}", login_call)
        _set_done(connected)
        try:
            async with asyncio.timeout(ctx.remaining()):
                message = await login.permission_checks_async(conn, self.config)
            return _Checked(result=(message, self._identity(conn)))
        except TimeoutError:
            failure = StepFailed(
                ErrorCode.TIMEOUT, "Timed out checking permissions: the verification budget ran out"
            )
            return _Checked(error=failure)
        except Exception as exc:  # reported by the permissions step
            return _Checked(error=exc)
        finally:
            await login.close_async(conn)

    def _open_and_check(self, request: ConnectRequest, signal: Callable[[], None]) -> _Checked:
        """Worker thread: a login failure raises; a check failure is returned, not raised."""
        self.holder.open(self.adapter, request)
        signal()
        try:
            return _Checked(result=self._check_and_close())
        except BaseException as exc:  # reported by the permissions step
            return _Checked(error=exc)

    async def _check_extra_targets(self, ctx: StepContext) -> list[ResolvedTarget]:
        """Other hosts the driver will reach (e.g. an OAuth token endpoint) pass the policy too."""
        try:
            targets = extra_targets(self.adapter, self.config, self.credentials)
        except ConnhubError as exc:
            raise _config_failure(exc) from None
        checked: list[ResolvedTarget] = []
        for other in targets:
            try:
                checked.append(
                    await asyncio.wait_for(
                        self.egress.resolve(other.host, other.port), ctx.remaining()
                    )
                )
            except EgressBlocked as exc:
                raise StepFailed(
                    ErrorCode.NETWORK_UNREACHABLE,
                    f"The egress policy blocked the connection to {exc.host}: {exc.reason}",
                ) from None
            except TimeoutError:
                raise StepFailed(ErrorCode.TIMEOUT, f"Timed out resolving {other.host}") from None
            except OSError as exc:
                raise StepFailed(
                    ErrorCode.NETWORK_UNREACHABLE, f"Could not resolve {other.host}: {exc}"
                ) from None
        return checked

    async def authentication(self, ctx: StepContext) -> str:
        if self._login is None:
            self._login = asyncio.ensure_future(self._login_now(ctx))
            self._login.add_done_callback(_consume_outcome)
        login = self._login
        connected = self._connected
        waiting: set[asyncio.Future[Any]] = {login}
        if connected is not None:
            waiting.add(connected)
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if self._connected is not None and self._connected.done():
            return "Credentials verified"
        login.result()  # the login failed: raises its StepFailed
        return "Credentials verified"

    def _check_and_close(self) -> tuple[str, dict[str, Any]]:
        """Worker thread: run the checks, read the identity, always close the session."""
        conn = self.holder.take()
        if conn is None:
            raise StepFailed(ErrorCode.PROVIDER_ERROR, "No session to check permissions with")
        try:
            return self.adapter.permission_checks(conn, self.config), self._identity(conn)
        finally:
            _close_quietly(conn)

    def _identity(self, conn: Any) -> dict[str, Any]:
        """Who we are connected as, if the adapter can tell; never fails a check."""
        describe = getattr(self.adapter, "identity", None)
        if describe is None:
            return {}
        try:
            return dict(describe(conn, self.config))
        except Exception:
            log.debug("%s identity lookup failed", self.adapter.name, exc_info=True)
            return {}

    async def permissions(self, ctx: StepContext) -> str:
        login, self._login = self._login, None
        if login is None:
            raise StepFailed(ErrorCode.PROVIDER_ERROR, "No session to check permissions with")
        checked = await login
        if checked.error is not None:
            raise self._failure(checked.error)
        assert checked.result is not None
        message, identity = checked.result
        ctx.identity.update(identity)
        return message

    def _failure(self, exc: BaseException) -> StepFailed:
        if isinstance(exc, StepFailed):
            return exc
        if isinstance(exc, ConnhubError):
            return _config_failure(exc)
        return _driver_failure(self.adapter, exc)


def sql_steps(
    provider: str,
    config: Mapping[str, Any],
    credentials: Mapping[str, str],
    *,
    egress: EgressPolicy,
) -> list[Step]:
    """``connectivity``, ``authentication``, ``permissions`` for one SQL provider.

    The budget is the runner's: each step reads ``ctx.remaining()`` when it starts.
    """
    run = _SqlRun(provider, load_adapter(provider), config, credentials, egress)
    return run.steps()


async def open_session(
    provider: str,
    config: Mapping[str, Any],
    credentials: Mapping[str, str],
    *,
    egress: EgressPolicy,
    timeout_s: float,
    read_only: bool = True,
) -> Any:
    """Open a DB-API connection through the egress policy, without blocking the loop.

    For schema browsing and read-only queries. The caller owns the connection and must use it
    and close it in worker threads (``run_blocking``; ``close_session``), from the task that
    opened it: the checked addresses stay pinned there (``kit.egress_pins``). Failures raise
    ``UpstreamError`` whose ``code`` is a verification code (``invalid_credentials``,
    ``network_unreachable``, ``timeout``...) and whose message is redacted; bad options raise
    the adapter's ``BadRequest``.
    """
    adapter = load_adapter(provider)
    deadline = time.monotonic() + timeout_s
    secrets = secret_values(credentials)
    adapter.validate_options(config)
    target = adapter.target(config)
    wanted = [target] if target is not None else []
    wanted += extra_targets(adapter, config, credentials)
    checked: list[ResolvedTarget] = []
    try:
        async with asyncio.timeout(timeout_s):
            for each in wanted:
                checked.append(await egress.resolve(each.host, each.port))
    except EgressBlocked as exc:
        raise UpstreamError(
            f"The egress policy blocked the connection to {exc.host}: {exc.reason}",
            code=ErrorCode.NETWORK_UNREACHABLE,
        ) from None
    except TimeoutError:
        raise UpstreamError("Timed out resolving the host", code=ErrorCode.TIMEOUT) from None
    except OSError as exc:
        raise UpstreamError(
            redact(
                f"Could not resolve a host of {display_name(provider, adapter)}: {exc}", secrets
            ),
            code=ErrorCode.NETWORK_UNREACHABLE,
        ) from None
    address = checked[0].address if target is not None else None
    # Kept for the rest of the caller's task, whose later calls on the session (worker
    # threads started from its context) reach the same hosts by name.
    egress_pins.pin(checked)
    remaining = max(0.0, deadline - time.monotonic())
    request = ConnectRequest(
        config=config,
        credentials=credentials,
        target=target,
        address=address,
        timeout_s=remaining,
        read_only=read_only,
    )
    holder = _Holder()
    try:
        await run_blocking(holder.open, adapter, request, timeout=remaining)
    except BaseException as exc:
        holder.abandon()
        if isinstance(exc, ConnhubError | asyncio.CancelledError):
            raise
        if isinstance(exc, TimeoutError):
            raise UpstreamError(
                f"Timed out connecting to {display_name(provider, adapter)}", code=ErrorCode.TIMEOUT
            ) from None
        if isinstance(exc, Exception):
            failure = _driver_failure(adapter, exc)
            raise UpstreamError(redact(failure.message, secrets), code=failure.code) from None
        raise
    return holder.take()


async def close_session(conn: Any) -> None:
    """Close a connection from ``open_session`` in a worker thread."""
    await run_blocking(_close_quietly, conn)
