"""Redaction: shapes, planted values in every encoding, live-secret scopes, and logging."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import string
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connhub.kit.logs import JsonFormatter
from connhub.kit.redact import (
    REDACTED,
    RedactingFilter,
    current_secrets,
    redact,
    redact_exception,
    secret_scope,
    secret_values,
)
from connhub.kit.threads import run_blocking

PASSWORD = 'Pa$$ w/rd:"é@99\\'  # needs escaping in URLs, JSON and repr alike
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ\n"
    "-----END PRIVATE KEY-----\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "could not connect to postgresql://bob:hunter22@db.example.com:5432/app",
            "could not connect to postgresql://bob:***@db.example.com:5432/app",
        ),
        ("mysql+pymysql://root:p@ss@w0rd@10.0.0.1/db", "mysql+pymysql://root:***@10.0.0.1/db"),
        ("redis://:tok3n@cache:6379/0", "redis://:***@cache:6379/0"),
        ("host=db user=bob password=hunter22 port=5432", "host=db user=bob password=*** port=5432"),
        ("host=db password='two words' sslmode=require", "host=db password='***' sslmode=require"),
        ('{"password": "a\\"b", "user": "bob"}', '{"password": "***", "user": "bob"}'),
        ("{'password': 'hunter22', 'port': 5432}", "{'password': '***', 'port': 5432}"),
        ("Driver=x;UID=bob;PWD={se;cret};Server=db", "Driver=x;UID=bob;PWD={***};Server=db"),
        ("PWD=hunter22;UID=bob", "PWD=***;UID=bob"),
        ("passphrase: correct-horse", "passphrase: ***"),
        ("GET /cb?code=1&token=abc.def&x=2", "GET /cb?code=1&token=***&x=2"),
        ("client_secret=s3cr3tv4lue", "client_secret=***"),
        ("SECRET=abcd1234 next", "SECRET=*** next"),
        ("DB_PASSWORD=hunter22", "DB_PASSWORD=***"),
        ("spring.datasource.password=hunter22", "spring.datasource.password=***"),
        ("opts=password=hunter22", "opts=password=***"),
        ('password="unterminated value', 'password="*** value'),
        ("X-Api-Key: 0123456789abcdef", "X-Api-Key: ***"),
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig", "Authorization: Bearer ***"),
        ("authorization: Basic dXNlcjpwYXNz", "authorization: Basic ***"),
        ("{'Authorization': 'Bearer abc123def'}", "{'Authorization': 'Bearer ***'}"),
        ("sent header bearer abc123def=", "sent header bearer ***"),
        (
            f"key was {PEM}and then",
            "key was -----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY-----\nand then",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\\nMIIabc\\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----***-----END RSA PRIVATE KEY-----",
        ),
        (  # truncated block (message cut short): everything key-like after BEGIN goes
            "oops -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nb3Bl",
            "oops -----BEGIN OPENSSH PRIVATE KEY-----***-----END OPENSSH PRIVATE KEY-----",
        ),
    ],
)
def test_shapes_are_redacted_without_being_told_the_value(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        'FATAL: password authentication failed for user "bob"',
        "https://secret.example.com:443/path",
        "http://db.example.com:8080/status",
        "connection refused (host=db.example.com, port=5432)",
        "token expired",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: s,
        lambda s: quote(s, safe=""),
        lambda s: quote(s),
        quote_plus,
        lambda s: json.dumps(s),
        lambda s: json.dumps(s, ensure_ascii=False),
        repr,
        lambda s: repr(json.dumps(s)),
        lambda s: json.dumps({"nested": json.dumps(s)}),
    ],
    ids=[
        "raw",
        "quote",
        "quote-safe-slash",
        "quote_plus",
        "json",
        "json-utf8",
        "repr",
        "repr-of-json",
        "json-in-json",
    ],
)
def test_planted_password_in_any_encoding(encode: object) -> None:
    assert callable(encode)
    encoded: str = encode(PASSWORD)
    text = f"driver said: login failed ({encoded}) for user bob"
    out = redact(text, [PASSWORD])
    assert encoded.strip("'\"") not in out
    assert PASSWORD not in out
    assert REDACTED in out
    assert out.startswith("driver said: login failed (")
    assert out.endswith(") for user bob")


def test_longest_secret_wins_and_overlaps_are_covered() -> None:
    assert redact("x abcdefgh x", ["abcd", "abcdefgh"]) == "x *** x"
    assert redact("x abcdefgh x", ["abcdefgh", "abcd"]) == "x *** x"
    assert redact("[abcdef]", ["abcd", "cdef"]) == "[***]"


def test_secret_made_by_redaction_itself_is_removed() -> None:
    # Replacing "x***" inside "xx***" would leave "x***" again; the scrubber repeats.
    out = redact("xx*** end", ["x***"])
    assert "x***" not in out
    assert out.endswith(" end")


def test_short_values_are_not_secrets() -> None:
    assert redact("a ab abc", ["a", "ab", "abc"]) == "a ab abc"


@pytest.mark.parametrize(
    "hostile",
    [
        "a." * 20000 + " ://",
        "a://b:" * 7000,
        "password" * 5000,
        'password="' * 5000,
        "-----BEGIN PRIVATE KEY-----" * 1500,
        "a:" * 20000 + "token",
        "x://" + "@" * 40000,
        "bearer " * 6000,
    ],
    ids=["dotted", "urls", "keywords", "quotes", "pem", "colons", "ats", "bearer"],
)
def test_hostile_input_stays_linear(hostile: str) -> None:
    # Quadratic backtracking on 40 KB takes minutes; linear scanning takes milliseconds.
    started = time.perf_counter()
    redact(hostile, ["abcd"])
    assert time.perf_counter() - started < 1.0


def test_secret_values_flattens_credentials() -> None:
    values = secret_values(
        {
            "password": "hunter22",
            "port": 5432,
            "pin": "123",
            "nested": {"api_key": "k-0123456789", "list": ["tok-aaaa", None]},
        }
    )
    assert values == ["hunter22", "k-0123456789", "tok-aaaa"]


def test_secret_values_of_a_service_account_catch_fragments() -> None:
    document = json.dumps(
        {
            "type": "service_account",
            "project_id": "demo-project",
            "private_key_id": "0123456789abcdef0123",
            "private_key": PEM,
            "client_email": "svc@demo-project.iam.gserviceaccount.com",
        }
    )
    values = secret_values({"service_account_json": document})
    assert document in values
    assert PEM in values
    assert "0123456789abcdef0123" in values
    assert "demo-project" not in values and "service_account" not in values
    key_lines = PEM.splitlines()[1:-1]
    for line in key_lines:
        assert line in values
    # A driver error quoting one line of the key, or the body without breaks:
    assert key_lines[1] not in redact(f"bad base64 near {key_lines[1]!r}", values)
    assert "".join(key_lines) not in redact("body=" + "".join(key_lines), values)
    assert "demo-project" in redact("project demo-project not found", values)


def test_secret_scope_nests_and_unwinds() -> None:
    assert current_secrets() == ()
    with secret_scope(["outer-secret", "abc"]):
        assert current_secrets() == ("outer-secret",)
        with secret_scope(["inner-secret", "outer-secret"]):
            assert current_secrets() == ("outer-secret", "inner-secret")
        assert current_secrets() == ("outer-secret",)
    assert current_secrets() == ()


async def test_secret_scope_follows_asyncio_tasks() -> None:
    inner_entered = asyncio.Event()
    sibling_checked = asyncio.Event()
    seen: dict[str, tuple[str, ...]] = {}

    async def child() -> None:
        seen["child-start"] = current_secrets()
        with secret_scope(["child-only-secret"]):
            seen["child-inner"] = current_secrets()
            inner_entered.set()
            await sibling_checked.wait()
            seen["child-inner-later"] = current_secrets()

    async def sibling() -> None:
        await inner_entered.wait()
        seen["sibling"] = current_secrets()
        sibling_checked.set()

    with secret_scope(["request-secret"]):
        await asyncio.gather(asyncio.create_task(child()), asyncio.create_task(sibling()))
        seen["parent-after"] = current_secrets()
        seen["thread"] = await asyncio.to_thread(current_secrets)

    assert seen["child-start"] == ("request-secret",)
    assert seen["child-inner"] == ("request-secret", "child-only-secret")
    assert seen["child-inner-later"] == ("request-secret", "child-only-secret")
    assert seen["sibling"] == ("request-secret",)
    assert seen["parent-after"] == ("request-secret",)
    assert seen["thread"] == ("request-secret",)
    assert current_secrets() == ()


@pytest.fixture
def captured_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(f"connhub.test.redact.{uuid.uuid4().hex}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_logging_never_shows_the_secret(
    captured_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured_logger
    secret = "pl4nted-S3cret!"
    with secret_scope([secret]):
        logger.info("connecting with %s", secret)
        logger.warning("credentials %r", {"user": "bob", "pw": secret})
        logger.info("json body %s", json.dumps({"x": quote(secret, safe="")}))
        logger.error("dsn was %s", "postgresql://bob:n0t-in-scope@db/app")
        try:
            try:
                raise KeyError(secret)
            except KeyError as inner:
                raise ConnectionError(f"login failed with password {secret}") from inner
        except ConnectionError:
            logger.exception("verification failed for %s", "db.example.com")
    output = stream.getvalue()
    assert secret not in output
    assert quote(secret, safe="") not in output
    assert "n0t-in-scope" not in output
    assert "connecting with ***" in output
    assert "postgresql://bob:***@db/app" in output
    assert "Traceback (most recent call last)" in output
    assert "ConnectionError: login failed with password ***" in output
    assert "KeyError: '***'" in output
    assert "verification failed for db.example.com" in output


async def test_a_blocking_driver_logging_in_a_worker_thread_is_scrubbed_too(
    captured_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    """Blocking drivers run through ``run_blocking``; their log lines know the secrets too."""
    logger, stream = captured_logger
    secret = "thr3ad-S3cret!"

    def driver_login() -> str:
        logger.warning("login failed for user bob with %s", secret)
        return threading.current_thread().name

    with secret_scope([secret]):
        thread = await run_blocking(driver_login)
    assert thread.startswith("connhub-blocking")
    output = stream.getvalue()
    assert secret not in output
    assert "login failed for user bob with ***" in output


def test_extra_fields_are_scrubbed_and_keep_their_shape() -> None:
    """``extra=`` fields reach the JSON log as they are, unless the filter scrubs them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(f"connhub.test.redact.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(handler)
    secret = "extr4-S3cret!"
    try:
        with secret_scope([secret]):
            logger.error(
                "request failed",
                extra={
                    "error": f"login failed with {secret}",
                    "dsn": "postgresql://bob:n0t-in-scope@db/app",
                    "detail": {"attempts": [secret, 2], "ok": False},
                    "status": 502,
                },
            )
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert secret not in stream.getvalue() and "n0t-in-scope" not in stream.getvalue()
    assert line["error"] == "login failed with ***"
    assert line["dsn"] == "postgresql://bob:***@db/app"
    assert line["detail"] == {"attempts": ["***", 2], "ok": False}
    assert line["status"] == 502


def test_filter_handles_bad_format_args(
    captured_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured_logger
    with secret_scope(["hunter22"]):
        logger.info("two %s %s", "hunter22")  # one arg short: logging would complain
    output = stream.getvalue()
    assert "hunter22" not in output
    assert "two %s %s" in output


def test_redact_exception() -> None:
    exc = RuntimeError("could not connect to postgresql://bob:pw-12345@db:5432/app")
    assert (
        redact_exception(exc)
        == "RuntimeError: could not connect to postgresql://bob:***@db:5432/app"
    )
    assert redact_exception(ValueError("bad key k-0123456789"), ["k-0123456789"]) == (
        "ValueError: bad key ***"
    )
    with secret_scope(["live-secret-value"]):
        assert redact_exception(OSError("saw live-secret-value")) == "OSError: saw ***"
    assert redact_exception(TimeoutError()) == "TimeoutError"


printable_secret = st.text(alphabet=string.printable, min_size=4, max_size=40)
unicode_secret = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc")), min_size=4, max_size=40
)


@settings(max_examples=300, deadline=None)
@given(secret=printable_secret | unicode_secret, before=st.text(), after=st.text())
def test_property_embedded_secret_never_survives(secret: str, before: str, after: str) -> None:
    text = before + secret + after
    assert secret not in redact(text, [secret])
    as_json = json.dumps(text)
    assert json.dumps(secret)[1:-1] not in redact(as_json, [secret])
    assert quote(secret, safe="") not in redact(quote(text, safe=""), [secret])
