"""Scrub secrets from every text that leaves the service (errors, logs, event streams).

Two nets, because neither is enough alone:

- *known values*: the credentials in play (``secret_scope`` puts them in a ContextVar for the
  current request or task) are removed raw and in the encodings they turn up in after being
  pasted into a URL, a JSON body or a ``repr`` — drivers echo them in all of those;
- *shapes*: DSN passwords, ``password=``-style pairs, ``Authorization`` headers and PEM private
  keys are removed even when nobody told us the value (a typo'd DSN in a config field).

Values shorter than four characters are never treated as secrets: redacting every "a" or "ab"
would destroy messages and protect nothing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "***"
MIN_SECRET_LENGTH = 4
# Each pass of the value scrubber shortens the text; this only bounds adversarial inputs.
_MAX_PASSES = 64

# The patterns are written to stay linear on hostile input (a log line is attacker-influenced):
# starts are anchored by lookbehinds rather than \b, so a run like "a.a.a..." is scanned from
# one position only; unbounded "scan to the closing marker" steps are done with str.find-style
# searches in code rather than backtracking regexes; the rest are bounded.
_PEM_BEGIN = re.compile(r"-----BEGIN (?P<label>[A-Z0-9 ]{0,40})PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----")
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=\s\\]*+")  # a truncated block: eat what looks like key
# scheme://user:PASSWORD@host — the password runs to the *last* '@' of the token, since raw
# '@' in passwords is common; over-redacting a host beats leaking half a password.
_URL_PASSWORD = re.compile(
    r"(?P<pre>(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*+://[^\s:/?#@\"'<>]*+:)"
    r"[^\s\"<>]{0,1024}@"
)
_AUTH_HEADER = re.compile(
    r"(?P<pre>\bauthorization[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?:bearer|basic|digest|token|negotiate|ntlm)\s+)?)[^\s\"',;]+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<pre>\bbearer\s+)[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
# key=value / key: value, found as "any key, then a separator" and kept only if the key names
# a secret (matching the keyword inside the regex would rescan long keys quadratically).
_KEY_SEP = re.compile(r"(?<![\w.-])(?P<key>[\w.-]++)[\"']?[ \t]*+[=:][ \t]*+")
_SENSITIVE_KEY = re.compile(
    r"password|passwd|pwd|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key",
    re.IGNORECASE,
)
_VALUE = re.compile(
    r"\"(?:[^\"\\\n]|\\.){0,4096}\"|'(?:[^'\\\n]|\\.){0,4096}'|\{[^}\n]{0,4096}\}"
    r"|[\"'{]?[^\s,;&\"'<>)\]}]++"
)
# Cheap substring test before the key=value scan: most log lines have none of these.
_KEY_WORDS = ("pass", "pwd", "secret", "token", "key")

# Keys inside a JSON credential (e.g. a service-account file) whose values are secret; the
# rest of such a document (project id, client email) is not, and redacting it would only
# garble messages.
_SENSITIVE_JSON_KEYS = frozenset(
    {
        "private_key",
        "private_key_id",
        "client_secret",
        "refresh_token",
        "access_token",
        "password",
        "secret",
        "token",
        "api_key",
    }
)

_live_secrets: ContextVar[tuple[str, ...]] = ContextVar("connhub_live_secrets", default=())


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the given secret values (in any common encoding) or secret shapes."""
    forms = _forms_of_all(tuple(secrets))
    if forms:
        text = _scrub_values(text, forms)
    text = _scrub_shapes(text)
    if forms:
        # A shape replacement can never add a secret, but checking again keeps the guarantee
        # "no form of a given secret survives" independent of the shape patterns.
        text = _scrub_values(text, forms)
    return text


def redact_exception(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """``"ExcType: message"`` with the message scrubbed (driver errors often embed the DSN).

    The live secrets of the current scope are included, so callers cannot forget them.
    """
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not turn error reporting into a crash
        message = ""
    name = type(exc).__name__
    if not message:
        return name
    return f"{name}: {redact(message, (*current_secrets(), *secrets))}"


def secret_values(credentials: Mapping[str, object]) -> list[str]:
    """Every secret string in a credential mapping, plus the fragments drivers may echo.

    Pass only the secret fields: every string found here is redacted wherever it appears.
    JSON documents (a service-account key) contribute themselves and their sensitive keys;
    PEM keys also contribute each body line and the joined body.
    """
    found: dict[str, None] = {}

    def add(value: str) -> None:
        if len(value) >= MIN_SECRET_LENGTH:
            found.setdefault(value, None)
        if "-----BEGIN" in value:
            for fragment in _pem_fragments(value):
                found.setdefault(fragment, None)

    def walk_json(node: object) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if isinstance(value, str) and str(key).lower() in _SENSITIVE_JSON_KEYS:
                    add(value)
                else:
                    walk_json(value)
        elif isinstance(node, list):
            for item in node:
                walk_json(item)

    def walk(node: object) -> None:
        if isinstance(node, str):
            add(node)
            if node.lstrip()[:1] in ("{", "["):
                try:
                    walk_json(json.loads(node))
                except ValueError:
                    pass
        elif isinstance(node, Mapping):
            for value in node.values():
                walk(value)
        elif isinstance(node, list | tuple | set | frozenset):
            for item in node:
                walk(item)

    walk(credentials)
    return list(found)


@contextmanager
def secret_scope(values: Iterable[str]) -> Iterator[None]:
    """Make ``values`` live secrets for this task/request; nested scopes accumulate.

    A ContextVar, so tasks started inside the scope inherit it and sibling requests never see
    each other's secrets.
    """
    current = _live_secrets.get()
    added = tuple(
        v for v in dict.fromkeys(values) if len(v) >= MIN_SECRET_LENGTH and v not in current
    )
    token = _live_secrets.set(current + added)
    try:
        yield
    finally:
        _live_secrets.reset(token)


def current_secrets() -> tuple[str, ...]:
    """The secrets live in the current context."""
    return _live_secrets.get()


class RedactingFilter(logging.Filter):
    """Scrub a record before a handler formats it; attach to every handler that writes out.

    The message is formatted here and stored back with ``args=()`` (args may hold secrets);
    the traceback is rendered to ``exc_text`` and ``exc_info`` dropped, so no formatter can
    re-render the raw exception.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = current_secrets()
        try:
            message = record.getMessage()
        except Exception:  # bad %-args: keep what we can rather than drop the record
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message, secrets)
        record.args = ()
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = _FORMATTER.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not isinstance(value, int | float | None):
                # ``extra=`` fields: a JSON formatter writes them out as they are.
                record.__dict__[key] = _scrubbed(value, secrets)
        return True


_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}


def _scrubbed(value: Any, secrets: tuple[str, ...]) -> Any:
    """An ``extra=`` value without secrets: strings redacted, containers walked, anything
    else by its text."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, int | float | None):  # bool is an int
        return value
    if isinstance(value, dict):
        return {str(k): _scrubbed(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrubbed(item, secrets) for item in value]
    return redact(str(value), secrets)


_FORMATTER = logging.Formatter()


@lru_cache(maxsize=1024)
def _forms_of(secret: str) -> tuple[str, ...]:
    """The spellings of one secret that end up in messages: raw, URL, JSON and repr escaped."""
    if len(secret) < MIN_SECRET_LENGTH:
        return ()
    json_escaped = json.dumps(secret)[1:-1]
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json_escaped,
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        repr(json_escaped)[1:-1],  # JSON body shown by repr(), e.g. in a traceback
        json.dumps(json_escaped)[1:-1],  # JSON string inside JSON
    }
    return tuple(f for f in forms if len(f) >= MIN_SECRET_LENGTH)


@lru_cache(maxsize=256)
def _forms_of_all(secrets: tuple[str, ...]) -> tuple[str, ...]:
    forms = {form for secret in secrets for form in _forms_of(secret)}
    return tuple(sorted(forms, key=len, reverse=True))


def _scrub_values(text: str, forms: tuple[str, ...]) -> str:
    """Replace the union of all occurrences (overlaps included) until none is left."""
    for _ in range(_MAX_PASSES):
        spans: list[tuple[int, int]] = []
        for form in forms:
            start = text.find(form)
            while start != -1:
                spans.append((start, start + len(form)))
                start = text.find(form, start + 1)
        if not spans:
            return text
        spans.sort()
        pieces: list[str] = []
        cursor = 0
        span_start, span_end = spans[0]
        for start, end in spans[1:]:
            if start <= span_end:
                span_end = max(span_end, end)
                continue
            pieces += (text[cursor:span_start], REDACTED)
            cursor = span_end
            span_start, span_end = start, end
        pieces += (text[cursor:span_start], REDACTED, text[span_end:])
        text = "".join(pieces)
    return REDACTED  # unreachable short of a hostile secret; failing closed is the safe side


def _scrub_shapes(text: str) -> str:
    if "PRIVATE KEY-----" in text:
        text = _scrub_pem(text)
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\g<pre>{REDACTED}@", text)
    lowered = text.lower()
    if "authorization" in lowered:
        text = _AUTH_HEADER.sub(rf"\g<pre>{REDACTED}", text)
    if "bearer" in lowered:
        text = _BEARER.sub(rf"\g<pre>{REDACTED}", text)
    if ("=" in text or ":" in text) and any(word in lowered for word in _KEY_WORDS):
        text = _scrub_key_values(text)
    return text


def _scrub_pem(text: str) -> str:
    """Each BEGIN ... END private-key block (or BEGIN and the key-like text after it)."""
    pieces: list[str] = []
    cursor = 0
    end_seen = True  # once no END follows a BEGIN, none follows any later BEGIN either
    while (begin := _PEM_BEGIN.search(text, cursor)) is not None:
        end = _PEM_END.search(text, begin.end()) if end_seen else None
        if end is None:
            end_seen = False
            stop = _PEM_BODY.match(text, begin.end())
            assert stop is not None  # the body pattern matches the empty string
            cursor_next = stop.end()
        else:
            cursor_next = end.end()
        label = begin.group("label")
        pieces += (
            text[cursor : begin.start()],
            f"-----BEGIN {label}PRIVATE KEY-----{REDACTED}-----END {label}PRIVATE KEY-----",
        )
        cursor = cursor_next
    pieces.append(text[cursor:])
    return "".join(pieces)


def _scrub_key_values(text: str) -> str:
    """Mask the value after every key that names a secret, keeping quotes or braces."""
    pieces: list[str] = []
    cursor = position = 0
    while (pair := _KEY_SEP.search(text, position)) is not None:
        position = pair.end()
        # Only the last dotted part names the field: "db.password" yes, "secret.example.com" no.
        if not _SENSITIVE_KEY.search(pair.group("key").rsplit(".", 1)[-1]):
            continue
        value = _VALUE.match(text, position)
        if value is None:
            continue
        raw = value.group()
        if raw[0] == "{":
            masked = f"{{{REDACTED}}}" if raw.endswith("}") else "{" + REDACTED
        elif raw[0] in "\"'":
            masked = raw[0] + REDACTED + (raw[0] if len(raw) > 1 and raw[-1] == raw[0] else "")
        else:
            masked = REDACTED
        pieces += (text[cursor:position], masked)
        cursor = position = value.end()
    pieces.append(text[cursor:])
    return "".join(pieces)


def _pem_fragments(value: str) -> list[str]:
    """Body lines of a PEM (real or escaped newlines) and the joined body."""
    lines = re.split(r"\r?\n|\\n", value)
    body = [line.strip() for line in lines if line.strip() and "-----" not in line]
    fragments = [line for line in body if len(line) >= MIN_SECRET_LENGTH]
    joined = "".join(body)
    if len(joined) >= MIN_SECRET_LENGTH:
        fragments.append(joined)
    return fragments
