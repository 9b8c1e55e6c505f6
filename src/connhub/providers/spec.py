"""Provider specs: the typed form of ``providers/definitions/<name>.yaml``.

Providers are data (docs: DESIGN.md). A definition declares the provider's ``config`` fields
(non-secret, returned to clients) and ``credentials`` fields (secret, write-only), its auth
modes, verification steps and, for HTTP-backed providers, how a request is authenticated.
This module gives that data a strict shape and owns the single validator every face calls,
so ``config.port`` means the same thing to the Connections, Sources and Warehouse APIs.

Rules that keep secrets out of responses and logs:

* every credential field is ``secret: true``; no config field has a secret-looking name
  (:func:`looks_secret`), so a password cannot be filed under ``config`` by mistake;
* validation messages name fields (``credentials.password``), never submitted values;
* URL templates (``http.base_url``...) may only use constrained config fields, so a value
  cannot smuggle a different host or path into a request.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connhub.errors import InvalidProviderFields

FieldType = Literal["string", "integer", "boolean", "text", "pem", "json", "url", "enum"]
Kind = Literal["sql", "files", "http"]
AuthScheme = Literal[
    "none",
    "bearer",
    "header",
    "query",
    "basic",
    "oauth2_refresh",
    "oauth2_client_credentials",
    "oauth1",
    "custom",
]

#: Verification steps, in the only order they may run.
KNOWN_STEPS: tuple[str, ...] = ("connectivity", "authentication", "permissions", "list_files")
CAPABILITIES = frozenset({"schema_browsing", "query", "file_listing"})
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: Length cap per type when a field sets no ``max_length``: bounds what we encrypt and store.
DEFAULT_MAX_LENGTH: dict[str, int] = {
    "string": 1024,
    "url": 2048,
    "enum": 255,
    "text": 65536,
    "pem": 16384,
    "json": 65536,
}
CREDENTIAL_TYPES = frozenset({"string", "text", "pem", "json"})

_SECRET_WORDS = frozenset(
    {"password", "passwd", "secret", "token", "passphrase", "credential", "credentials"}
)
_NAME = r"^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]+)*$"  # camelCase that survives to_snake/to_camel
_INT = re.compile(r"[+-]?[0-9]{1,18}")
_SINGLE_LINE_BAD = re.compile(r"[\x00-\x1f\x7f]")
_MULTI_LINE_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z0-9]*)\}")
#: Credential roles each HTTP auth scheme reads (``None``: the custom module decides).
_ROLES: dict[str, frozenset[str] | None] = {
    "none": frozenset(),
    "bearer": frozenset({"token"}),
    "header": frozenset({"token"}),
    "query": frozenset({"token"}),
    "basic": frozenset({"username", "password"}),
    "oauth2_refresh": frozenset({"client_id", "client_secret", "refresh_token"}),
    "oauth2_client_credentials": frozenset({"client_id", "client_secret"}),
    "oauth1": frozenset({"consumer_key", "consumer_secret", "token", "token_secret"}),
    "custom": None,
}


def to_snake(name: str) -> str:
    """``privateKeyPassphrase`` -> ``private_key_passphrase`` (the Sources API's spelling)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def to_camel(name: str) -> str:
    """``credentials_json`` -> ``credentialsJson`` (the canonical, stored spelling)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def looks_secret(name: str) -> bool:
    """True for names a secret would have: a secret word anywhere, or ending in ``Key``.

    ``apiKey``/``privateKey``/``tokenId`` look secret; ``keyPrefix``/``accessKeyId`` do not.
    """
    words = to_snake(name).split("_")
    return bool(_SECRET_WORDS.intersection(words)) or words[-1] == "key"


def template_fields(template: str) -> set[str]:
    """Config field names a ``{placeholder}`` template reads."""
    return set(_PLACEHOLDER.findall(template))


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``{name}`` placeholders; values are not re-parsed (no format-spec injection)."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def _bad(message: str, path: str) -> InvalidProviderFields:
    return InvalidProviderFields(message, field=path)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldSpec(_Model):
    """One config or credential field, with enough schema to validate it and draw a form."""

    name: str = Field(pattern=_NAME)
    type: FieldType
    title: str
    description: str | None = None
    secret: bool = False
    required: bool = False
    default: Any = None
    example: Any = None
    pattern: str | None = None
    choices: tuple[str, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if (self.type == "enum") != (self.choices is not None):
            raise ValueError(f"{self.name}: 'choices' is for (and required by) type enum")
        if self.type != "integer" and (self.minimum is not None or self.maximum is not None):
            raise ValueError(f"{self.name}: minimum/maximum apply to integers only")
        if self.type in ("integer", "boolean") and (self.pattern or self.max_length):
            raise ValueError(f"{self.name}: pattern/max_length apply to strings only")
        if self.pattern is not None:
            # Anchored, so Python's re.search and JSON Schema's "pattern" agree on a value.
            if not (self.pattern.startswith("^") and self.pattern.endswith("$")):
                raise ValueError(f"{self.name}: pattern must be anchored with ^...$")
            re.compile(self.pattern)
        if self.required and self.default is not None:
            raise ValueError(f"{self.name}: a field with a default is not required")
        for label, value in (("default", self.default), ("example", self.example)):
            if value is None:
                continue
            try:
                coerced = self.coerce(value, f"{self.name} {label}")
            except InvalidProviderFields as exc:
                raise ValueError(exc.message) from None
            if type(coerced) is not type(value) or coerced != value:
                raise ValueError(f"{self.name}: {label} must already have the field's type")
        return self

    @property
    def effective_max_length(self) -> int | None:
        if self.type in ("integer", "boolean"):
            return None
        return self.max_length or DEFAULT_MAX_LENGTH[self.type]

    def coerce(self, value: Any, path: str) -> Any:
        """Return ``value`` in the field's type or raise naming ``path`` (never the value)."""
        if self.type == "integer":
            return self._coerce_int(value, path)
        if self.type == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise _bad(f"{path} must be a boolean", path)
        if not isinstance(value, str):
            raise _bad(f"{path} must be a string", path)
        limit = self.effective_max_length
        if limit is not None and len(value) > limit:
            raise _bad(f"{path} must be at most {limit} characters", path)
        bad_chars = _MULTI_LINE_BAD if self.type in ("text", "pem", "json") else _SINGLE_LINE_BAD
        if bad_chars.search(value):
            raise _bad(f"{path} must not contain control characters", path)
        if self.choices is not None and value not in self.choices:
            raise _bad(f"{path} must be one of: {', '.join(self.choices)}", path)
        if self.type == "url":
            _check_url(value, path)
        elif self.type == "pem":
            text = value.strip()
            if not (text.startswith("-----BEGIN ") and "-----END " in text):
                raise _bad(f"{path} must be PEM-encoded (-----BEGIN ...-----)", path)
        elif self.type == "json":
            try:
                document = json.loads(value)
            except ValueError:
                document = None
            if not isinstance(document, dict):
                raise _bad(f"{path} must be a JSON object", path)
        if self.pattern is not None and not re.search(self.pattern, value):
            raise _bad(f"{path} must match {self.pattern}", path)
        return value

    def _coerce_int(self, value: Any, path: str) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and _INT.fullmatch(value):
            number = int(value)
        else:
            raise _bad(f"{path} must be an integer", path)
        if self.minimum is not None and number < self.minimum:
            raise _bad(f"{path} must be at least {self.minimum}", path)
        if self.maximum is not None and number > self.maximum:
            raise _bad(f"{path} must be at most {self.maximum}", path)
        return number

    def json_schema(self) -> dict[str, Any]:
        """This field as a JSON Schema (draft 2020-12) property, for form generation."""
        schema: dict[str, Any] = {
            "type": self.type if self.type in ("integer", "boolean") else "string",
            "title": self.title,
            "x-fieldType": self.type,  # lets a UI pick a widget (textarea, file upload...)
        }
        if self.description:
            schema["description"] = self.description
        if self.choices is not None:
            schema["enum"] = list(self.choices)
        if self.type == "url":
            schema["format"] = "uri"
        elif self.type == "pem":
            schema["contentMediaType"] = "application/x-pem-file"
        elif self.type == "json":
            schema["contentMediaType"] = "application/json"
        if self.pattern is not None:
            schema["pattern"] = self.pattern
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.effective_max_length is not None:
            schema["maxLength"] = self.effective_max_length
            if self.required:
                schema["minLength"] = 1
        if self.default is not None:
            schema["default"] = self.default
        if self.secret:
            schema["writeOnly"] = True
        elif self.example is not None:
            schema["examples"] = [self.example]
        return schema


def _check_url(value: str, path: str) -> None:
    try:
        parts = urlsplit(value)
        host = parts.hostname
        has_userinfo = parts.username is not None or parts.password is not None
    except ValueError:
        raise _bad(f"{path} must be an http(s) URL", path) from None
    if parts.scheme not in ("http", "https") or not host:
        raise _bad(f"{path} must be an http(s) URL", path)
    if has_userinfo:
        raise _bad(f"{path} must not embed credentials; use the credential fields", path)


class AuthMode(_Model):
    """One accepted set of credentials; exactly one mode must be satisfied."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str | None = None
    credentials: tuple[str, ...] = Field(min_length=1)
    optional: tuple[str, ...] = ()

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(self.credentials) | frozenset(self.optional)


class HttpAuth(_Model):
    """How credentials are applied to a request; read by the generic HTTP machinery.

    ``fields`` maps a scheme's roles (``token``, ``username``, ``client_id``...) to config or
    credential field names. The resulting token goes in ``header`` (default
    ``Authorization``) after ``prefix`` (default ``"Bearer "`` for token schemes).
    """

    scheme: AuthScheme
    fields: dict[str, str] = Field(default_factory=dict)
    header: str | None = None
    prefix: str | None = None
    param: str | None = None
    token_url: str | None = None
    scope: str | None = None
    client_auth: Literal["body", "basic"] = "body"
    rotates_refresh_token: bool = False  # the refresh answer carries a new refresh token
    realm: str | None = None  # oauth1
    signature_method: Literal["HMAC-SHA256"] | None = None  # oauth1

    @model_validator(mode="after")
    def _roles(self) -> HttpAuth:
        roles = _ROLES[self.scheme]
        if roles is not None and set(self.fields) != roles:
            raise ValueError(f"auth scheme {self.scheme} needs fields {sorted(roles)}")
        if self.scheme == "header" and not self.header:
            raise ValueError("auth scheme header needs 'header'")
        if self.scheme == "query" and not self.param:
            raise ValueError("auth scheme query needs 'param'")
        if self.scheme.startswith("oauth2") and not self.token_url:
            raise ValueError(f"auth scheme {self.scheme} needs 'token_url'")
        if self.scheme == "oauth1" and not (self.realm and self.signature_method):
            raise ValueError("auth scheme oauth1 needs 'realm' and 'signature_method'")
        return self

    def templates(self) -> list[str]:
        return [t for t in (self.header, self.token_url, self.realm) if t]


class HttpSpec(_Model):
    """Where an HTTP-backed provider lives and the cheap authenticated call that proves it.

    Templates (``{shopDomain}``) read config fields only. ``auth_select`` names an enum
    config field whose value picks one of ``auth_variants``; without it, ``auth_variants``
    is keyed by auth-mode name. ``custom`` marks quirks handled in ``providers/custom/``.
    """

    base_url: str
    verify_path: str = Field(pattern=r"^[/{]")  # a path, or a template for one
    verify_method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    auth: HttpAuth | None = None
    auth_select: str | None = None
    auth_variants: dict[str, HttpAuth] = Field(default_factory=dict)
    custom: bool = False

    @model_validator(mode="after")
    def _one_auth(self) -> HttpSpec:
        if (self.auth is None) == (not self.auth_variants):
            raise ValueError("http needs exactly one of 'auth' or 'auth_variants'")
        if self.auth_select is not None and not self.auth_variants:
            raise ValueError("'auth_select' needs 'auth_variants'")
        return self

    def templates(self) -> list[str]:
        found = [self.base_url, self.verify_path, *self.headers.values()]
        for auth in self.all_auth():
            found.extend(auth.templates())
        return found

    def all_auth(self) -> list[HttpAuth]:
        return [self.auth] if self.auth is not None else list(self.auth_variants.values())

    def select_auth(self, config: Mapping[str, Any], auth_mode: str | None = None) -> HttpAuth:
        """The auth to apply for this (validated) config and satisfied auth mode."""
        if self.auth is not None:
            return self.auth
        key = str(config[self.auth_select]) if self.auth_select is not None else auth_mode
        if key is None or key not in self.auth_variants:
            raise InvalidProviderFields("No authentication variant applies", field="config")
        return self.auth_variants[key]

    def verify_url(self, config: Mapping[str, Any]) -> str:
        base = render(self.base_url, config).rstrip("/")
        return base + "/" + render(self.verify_path, config).lstrip("/")


class ProviderSpec(_Model):
    """A provider definition, validated at load so a broken YAML never reaches a request."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Kind
    display_name: str
    docs_url: str = Field(pattern=r"^https://")
    driver: str | None = None
    install_hint: str | None = None
    dialect: str | None = None
    config: tuple[FieldSpec, ...] = ()
    credentials: tuple[FieldSpec, ...] = ()
    auth_modes: tuple[AuthMode, ...] = ()
    steps: tuple[str, ...] = Field(min_length=1)
    http: HttpSpec | None = None
    capabilities: dict[str, bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ProviderSpec:
        names = [f.name for f in (*self.config, *self.credentials)]
        if len(set(names)) != len(names) or len({to_snake(n) for n in names}) != len(names):
            raise ValueError("field names must be unique across config and credentials")
        for f in self.config:
            if f.secret or looks_secret(f.name):
                raise ValueError(f"config.{f.name} is or looks secret; move it to credentials")
        for f in self.credentials:
            if not f.secret or f.type not in CREDENTIAL_TYPES or f.default is not None:
                raise ValueError(f"credentials.{f.name}: secret string without a default")
        self._check_auth_modes()
        if [s for s in KNOWN_STEPS if s in self.steps] != list(self.steps):
            raise ValueError(f"steps must be drawn from {KNOWN_STEPS}, in that order, once")
        if not CAPABILITIES.issuperset(self.capabilities):
            raise ValueError(f"capabilities must be among {sorted(CAPABILITIES)}")
        if (self.kind == "sql") != (self.dialect is not None):
            raise ValueError("'dialect' is required for, and only for, the sql kind")
        if self.kind == "http" and self.http is None:
            raise ValueError("an http provider needs an 'http' section")
        if self.http is not None:
            self._check_http(self.http)
        return self

    def _check_auth_modes(self) -> None:
        creds = {f.name: f for f in self.credentials}
        if len({m.name for m in self.auth_modes}) != len(self.auth_modes):
            raise ValueError("auth mode names must be unique")
        for mode in self.auth_modes:
            unknown = mode.fields - creds.keys()
            if unknown:
                raise ValueError(f"auth mode {mode.name} names unknown {sorted(unknown)}")
            if any(creds[n].required for n in mode.fields):
                raise ValueError(f"auth mode {mode.name}: its fields must not be required")
            # Each mode must be recognisable on its own, in its smallest and largest form.
            for present in (set(mode.credentials), set(mode.fields)):
                if [m.name for m in self._matching_modes(present)] != [mode.name]:
                    raise ValueError(f"auth mode {mode.name} is ambiguous")

    def _check_http(self, http: HttpSpec) -> None:
        config = {f.name: f for f in self.config}
        known = config.keys() | {f.name for f in self.credentials}
        for template in http.templates():
            for name in template_fields(template):
                f = config.get(name)
                if f is None or not (f.required or f.default is not None):
                    raise ValueError(
                        f"template {template!r}: {name} must be a config field that is always set"
                    )
                if f.pattern is None and f.type not in ("enum", "url", "integer"):
                    raise ValueError(f"template {template!r}: {name} must be constrained")
        for auth in http.all_auth():
            if not known.issuperset(auth.fields.values()):
                raise ValueError(f"http auth names unknown fields {sorted(auth.fields.values())}")
        if http.auth_select is not None:
            selector = config.get(http.auth_select)
            if selector is None or set(selector.choices or ()) != set(http.auth_variants):
                raise ValueError("auth_variants must be keyed by the choices of auth_select")
        elif http.auth_variants and set(http.auth_variants) != {m.name for m in self.auth_modes}:
            raise ValueError("auth_variants must be keyed by auth mode names")

    # -- lookups -------------------------------------------------------------------------

    def config_field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.config if f.name == name), None)

    def credential_field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.credentials if f.name == name), None)

    def supports(self, capability: str) -> bool:
        return self.capabilities.get(capability, False)

    def driver_available(self) -> bool:
        """Whether the driver module can be imported, without importing it (cheap)."""
        if self.driver is None:
            return False
        try:
            return importlib.util.find_spec(self.driver) is not None
        except (ImportError, ValueError):
            return False

    # -- validation ----------------------------------------------------------------------

    def validate_config(
        self, config: Mapping[str, Any], *, partial: bool = False
    ) -> dict[str, Any]:
        """Check and coerce a config object; apply defaults unless ``partial``.

        ``None`` or ``""`` count as absent; in ``partial`` mode (a PATCH body, merged by the
        caller) they are returned as ``None``, meaning "remove this key".
        """
        self._reject_unknown("config", config, self.config)
        clean: dict[str, Any] = {}
        for f in self.config:
            path = f"config.{f.name}"
            value = config.get(f.name)
            if value is None or value == "":
                if partial:
                    if f.name in config:
                        clean[f.name] = None
                elif f.default is not None:
                    clean[f.name] = f.default
                elif f.required:
                    raise _bad(f"{path} is required", path)
                continue
            clean[f.name] = f.coerce(value, path)
        return clean

    def validate_credentials(
        self, credentials: Mapping[str, Any], *, partial: bool = False
    ) -> dict[str, str]:
        """Check credential keys and values; complete sets must satisfy one auth mode.

        In ``partial`` mode only keys and value types are checked and ``None``/``""`` are
        returned as ``""`` ("clear this secret"); call :meth:`check_complete_credentials`
        on the merged result.
        """
        self._reject_unknown("credentials", credentials, self.credentials)
        clean: dict[str, str] = {}
        for f in self.credentials:
            if f.name not in credentials:
                continue
            value = credentials[f.name]
            if value is None or value == "":
                if partial:
                    clean[f.name] = ""
                continue
            clean[f.name] = f.coerce(value, f"credentials.{f.name}")
        if not partial:
            self.check_complete_credentials(clean)
        return clean

    def check_complete_credentials(self, credentials: Mapping[str, Any]) -> None:
        """Required credentials present and exactly one auth mode satisfied."""
        present = {k for k, v in credentials.items() if v is not None and v != ""}
        for f in self.credentials:
            if f.required and f.name not in present:
                raise _bad(f"credentials.{f.name} is required", f"credentials.{f.name}")
        if self.auth_modes and len(self._matching_modes(present)) != 1:
            choices = ", ".join(" + ".join(m.credentials) for m in self.auth_modes)
            raise _bad(f"credentials: provide exactly one of: {choices}", "credentials")

    @property
    def selects_auth(self) -> bool:
        """Whether a config field picks the auth variant (``http.auth_select``)."""
        return self.http is not None and self.http.auth_select is not None

    def check_selected_auth(
        self, config: Mapping[str, Any], credentials: Mapping[str, Any]
    ) -> None:
        """The fields the selected auth variant uses are present (e.g. http_api's
        ``authMode: basic`` needs ``config.username`` and ``credentials.password``). Checked
        on the stored whole, after defaults, so a PATCH cannot leave a half-set variant."""
        if not self.selects_auth:
            return
        assert self.http is not None and self.http.auth_select is not None
        selector = self.http.auth_select
        variant = self.http.select_auth(config)
        for name in variant.fields.values():
            in_config = self.config_field(name) is not None
            where, values = ("config", config) if in_config else ("credentials", credentials)
            if values.get(name) in (None, ""):
                raise _bad(
                    f"{where}.{name} is required when config.{selector} is {config[selector]}",
                    f"{where}.{name}",
                )

    def active_auth_mode(self, credentials: Mapping[str, Any]) -> AuthMode | None:
        """The auth mode a complete credential set satisfies (``None`` without modes)."""
        present = {k for k, v in credentials.items() if v is not None and v != ""}
        matches = self._matching_modes(present)
        return matches[0] if len(matches) == 1 else None

    def _matching_modes(self, present: Iterable[str]) -> list[AuthMode]:
        # A mode matches when all its credentials are present and no other mode's are.
        present = set(present)
        in_modes = frozenset().union(*(m.fields for m in self.auth_modes))
        return [
            m
            for m in self.auth_modes
            if set(m.credentials) <= present and (present & in_modes) <= m.fields
        ]

    def _reject_unknown(
        self, section: str, values: Mapping[str, Any], fields: tuple[FieldSpec, ...]
    ) -> None:
        if not isinstance(values, Mapping):
            raise _bad(f"{section} must be an object", section)
        known = {f.name for f in fields}
        unknown = sorted(str(k)[:100] for k in values if k not in known)
        if unknown:
            key = unknown[0]
            raise _bad(
                f"Unknown {section} key '{key}' for provider '{self.name}'", f"{section}.{key}"
            )

    # -- public description --------------------------------------------------------------

    def public_schema(self) -> dict[str, Any]:
        """The provider as ``GET /api/v1/providers`` shows it; a UI can build a form from it."""
        credentials = _object_schema(self.credentials)
        if self.auth_modes:
            in_modes = frozenset().union(*(m.fields for m in self.auth_modes))
            credentials["oneOf"] = [
                {
                    "title": m.title or m.name,
                    "required": list(m.credentials),
                    "properties": {n: False for n in sorted(in_modes - m.fields)},
                }
                for m in self.auth_modes
            ]
        return {
            "name": self.name,
            "kind": self.kind,
            "displayName": self.display_name,
            "docsUrl": self.docs_url,
            "authModes": [
                {
                    "name": m.name,
                    "title": m.title or m.name,
                    "credentials": list(m.credentials),
                    "optional": list(m.optional),
                }
                for m in self.auth_modes
            ],
            "config": _object_schema(self.config),
            "credentials": credentials,
            "steps": list(self.steps),
            "capabilities": {to_camel(k): v for k, v in sorted(self.capabilities.items())},
        }


def _object_schema(fields: tuple[FieldSpec, ...]) -> dict[str, Any]:
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "type": "object",
        "properties": {f.name: f.json_schema() for f in fields},
        "required": [f.name for f in fields if f.required],
        "additionalProperties": False,
    }
