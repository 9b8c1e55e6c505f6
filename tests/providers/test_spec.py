"""Validation behaviour of provider specs: unknown and missing keys, coercion, patterns,
defaults, partial (PATCH) mode, auth modes, the public schema, and that no submitted value
ever appears in an error."""

from __future__ import annotations

import itertools
from typing import Any

import jsonschema_rs
import pytest
from pydantic import ValidationError

from connhub.errors import InvalidProviderFields
from connhub.providers.registry import default_registry
from connhub.providers.spec import (
    FieldSpec,
    HttpAuth,
    ProviderSpec,
    looks_secret,
    render,
    template_fields,
    to_camel,
    to_snake,
)

PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n"
PLANT = "Pl4nted-S3cret-Value-9f2c"


def spec(name: str) -> ProviderSpec:
    return default_registry().get(name)


def pg_config(**extra: Any) -> dict[str, Any]:
    return {"host": "db.example.com", "database": "app", "username": "reader", **extra}


def raises(call: Any, *args: Any, **kwargs: Any) -> InvalidProviderFields:
    with pytest.raises(InvalidProviderFields) as info:
        call(*args, **kwargs)
    assert info.value.status_code == 400 and info.value.code == "invalid_fields"
    return info.value


# -- config ----------------------------------------------------------------------------------


def test_unknown_config_key_is_named() -> None:
    exc = raises(spec("postgres").validate_config, pg_config(x=1))
    assert exc.message == "Unknown config key 'x' for provider 'postgres'"
    assert exc.field == "config.x"


def test_missing_required_config() -> None:
    exc = raises(spec("postgres").validate_config, {"database": "app", "username": "u"})
    assert (exc.message, exc.field) == ("config.host is required", "config.host")
    exc = raises(spec("postgres").validate_config, pg_config(host=""))
    assert exc.field == "config.host"


def test_defaults_are_applied_and_order_is_the_definitions() -> None:
    clean = spec("postgres").validate_config(pg_config())
    assert clean == {"host": "db.example.com", "port": 5432, "database": "app",
                     "username": "reader"}  # fmt: skip
    assert list(clean) == ["host", "port", "database", "username"]
    assert spec("sftp").validate_config({"host": "h", "username": "u"}) == {
        "host": "h",
        "port": 22,
        "username": "u",
        "root": "/",
    }
    assert spec("http_api").validate_config({"baseUrl": "https://api.example.com"}) == {
        "baseUrl": "https://api.example.com", "authMode": "header",
        "authHeader": "Authorization", "verifyPath": "/",
    }  # fmt: skip


@pytest.mark.parametrize(("given", "expected"), [(5433, 5433), ("5433", 5433), ("+15", 15)])
def test_integer_coercion(given: Any, expected: int) -> None:
    assert spec("postgres").validate_config(pg_config(port=given))["port"] == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (True, "config.port must be an integer"),
        ("54a", "config.port must be an integer"),
        (5432.0, "config.port must be an integer"),
        ([5432], "config.port must be an integer"),
        (0, "config.port must be at least 1"),
        ("70000", "config.port must be at most 65535"),
    ],
)
def test_integer_refusals(given: Any, message: str) -> None:
    exc = raises(spec("postgres").validate_config, pg_config(port=given))
    assert (exc.message, exc.field) == (message, "config.port")


@pytest.mark.parametrize(("given", "expected"), [(True, True), ("true", True), ("FALSE", False)])
def test_boolean_coercion(given: Any, expected: bool) -> None:
    clean = spec("mysql").validate_config(pg_config(ssl=given))
    assert clean["ssl"] is expected


@pytest.mark.parametrize("given", ["yes", 1, "1", "on"])
def test_boolean_refusals(given: Any) -> None:
    exc = raises(spec("mysql").validate_config, pg_config(ssl=given))
    assert (exc.message, exc.field) == ("config.ssl must be a boolean", "config.ssl")


def test_strings_must_be_strings_on_one_line() -> None:
    exc = raises(spec("postgres").validate_config, pg_config(database=5))
    assert exc.message == "config.database must be a string"
    exc = raises(spec("postgres").validate_config, pg_config(username="a\nb"))
    assert exc.message == "config.username must not contain control characters"
    exc = raises(spec("postgres").validate_config, pg_config(database="d" * 64))
    assert exc.message == "config.database must be at most 63 characters"


def test_pattern_and_enum() -> None:
    shopify = spec("shopify")
    assert shopify.validate_config({"shopDomain": "acme.myshopify.com"})["apiVersion"]
    for bad in ("acme.com", "evil.com/x.myshopify.com", "ACME.myshopify.com"):
        exc = raises(shopify.validate_config, {"shopDomain": bad})
        assert exc.field == "config.shopDomain"
        assert exc.message.startswith("config.shopDomain must match ^")
    exc = raises(spec("postgres").validate_config, pg_config(sslMode="always"))
    assert exc.message.startswith("config.sslMode must be one of: disable, allow")
    exc = raises(spec("postgres").validate_config, pg_config(host="db.example.com:5432/x"))
    assert exc.field == "config.host"


def test_urls() -> None:
    s3 = spec("s3")
    base = {"bucket": "acme-data", "region": "us-east-1"}
    assert s3.validate_config({**base, "endpointUrl": "http://127.0.0.1:9000"})["endpointUrl"]
    for bad in ("ftp://files.example.com", "not a url", "https://", "http://[::1"):
        exc = raises(s3.validate_config, {**base, "endpointUrl": bad})
        assert exc.message == "config.endpointUrl must be an http(s) URL"
    exc = raises(s3.validate_config, {**base, "endpointUrl": f"https://u:{PLANT}@minio.local"})
    assert "must not embed credentials" in exc.message
    assert PLANT not in str(exc)


def test_partial_config_checks_keys_and_types_only() -> None:
    pg = spec("postgres")
    assert pg.validate_config({"port": "6543"}, partial=True) == {"port": 6543}
    assert pg.validate_config({"sslMode": None, "host": ""}, partial=True) == {
        "host": None, "sslMode": None,
    }  # fmt: skip
    assert pg.validate_config({}, partial=True) == {}
    raises(pg.validate_config, {"nope": 1}, partial=True)
    raises(pg.validate_config, {"port": "x"}, partial=True)


def test_config_must_be_an_object() -> None:
    exc = raises(spec("postgres").validate_config, ["host"])
    assert exc.field == "config"


# -- credentials -----------------------------------------------------------------------------


def test_credentials_happy_path_and_unknown_key() -> None:
    pg = spec("postgres")
    assert pg.validate_credentials({"password": "pw"}) == {"password": "pw"}
    exc = raises(pg.validate_credentials, {"password": "pw", "apiKey": PLANT})
    assert exc.message == "Unknown credentials key 'apiKey' for provider 'postgres'"
    assert exc.field == "credentials.apiKey"
    exc = raises(pg.validate_credentials, {})
    assert (exc.message, exc.field) == ("credentials.password is required", "credentials.password")


def test_credential_values_must_be_strings() -> None:
    exc = raises(spec("postgres").validate_credentials, {"password": 12345})
    assert exc.message == "credentials.password must be a string"


def test_typed_credentials() -> None:
    bq = spec("bigquery")
    assert bq.validate_credentials({"credentialsJson": '{"type": "service_account"}'})
    for bad in ("not json", "[1, 2]", '"a string"'):
        exc = raises(bq.validate_credentials, {"credentialsJson": bad})
        assert exc.message == "credentials.credentialsJson must be a JSON object"
    exc = raises(spec("snowflake").validate_credentials, {"privateKey": "MIIEvQIBADANBg"})
    assert exc.field == "credentials.privateKey" and "PEM" in exc.message


AUTH_CASES = [
    ({"password": "pw"}, "password"),
    ({"privateKey": PEM}, "key_pair"),
    ({"privateKey": PEM, "privateKeyPassphrase": "pp"}, "key_pair"),
    ({"password": "pw", "privateKey": "", "privateKeyPassphrase": None}, "password"),
]


@pytest.mark.parametrize("provider", ["snowflake", "sftp"])
@pytest.mark.parametrize(("credentials", "mode"), AUTH_CASES)
def test_auth_mode_satisfied(provider: str, credentials: dict[str, Any], mode: str) -> None:
    s = spec(provider)
    clean = s.validate_credentials(credentials)
    assert "" not in clean.values()
    active = s.active_auth_mode(clean)
    assert active is not None and active.name == mode


@pytest.mark.parametrize("provider", ["snowflake", "sftp"])
@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"password": "pw", "privateKey": PEM},
        {"password": "pw", "privateKeyPassphrase": "pp"},
        {"privateKeyPassphrase": "pp"},
        {"password": ""},
    ],
)
def test_auth_mode_exactly_one(provider: str, credentials: dict[str, Any]) -> None:
    exc = raises(spec(provider).validate_credentials, credentials)
    assert exc.message == "credentials: provide exactly one of: password, privateKey"
    assert exc.field == "credentials"


def test_partial_credentials_then_complete_check() -> None:
    sf = spec("snowflake")
    # PATCH: switching from password to key pair, clearing the password.
    patch = {"password": None, "privateKey": PEM}
    assert sf.validate_credentials(patch, partial=True) == {"password": "", "privateKey": PEM}
    stored = {"password": "old"}
    merged = {k: v for k, v in {**stored, **patch}.items() if v}
    sf.check_complete_credentials(merged)
    # Forgetting to clear the password leaves two modes: refused after the merge.
    exc = raises(sf.check_complete_credentials, {"password": "old", "privateKey": PEM})
    assert exc.field == "credentials"
    raises(sf.validate_credentials, {"nope": "x"}, partial=True)
    raises(sf.validate_credentials, {"password": 3}, partial=True)
    assert sf.validate_credentials({"password": ""}, partial=True) == {"password": ""}


def test_optional_credentials_without_modes() -> None:
    http_api = spec("http_api")
    assert http_api.validate_credentials({}) == {}
    assert http_api.validate_credentials({"apiKey": "k"}) == {"apiKey": "k"}
    assert http_api.active_auth_mode({"apiKey": "k"}) is None


def test_no_submitted_value_reaches_an_error() -> None:
    """Plant one value in every failing path and look for it in everything the error holds."""
    calls: list[tuple[Any, dict[str, Any]]] = [
        (spec("postgres").validate_credentials, {"password": [PLANT]}),
        (spec("postgres").validate_credentials, {"password": PLANT, "extra": PLANT}),
        (spec("postgres").validate_credentials, {"password": PLANT * 100}),
        (spec("postgres").validate_credentials, {"password": PLANT + "\x00"}),
        (spec("snowflake").validate_credentials, {"password": PLANT, "privateKey": PLANT}),
        (spec("snowflake").validate_credentials, {"privateKey": PLANT}),
        (spec("snowflake").validate_credentials, {"privateKeyPassphrase": PLANT}),
        (spec("bigquery").validate_credentials, {"credentialsJson": PLANT}),
        (spec("bigquery").validate_credentials, {"credentialsJson": '{"k": "' + PLANT}),
        (spec("snowflake").check_complete_credentials, {"privateKeyPassphrase": PLANT}),
        (spec("postgres").validate_config, pg_config(port=PLANT)),
        (spec("postgres").validate_config, pg_config(host=PLANT + "/")),
        (spec("postgres").validate_config, pg_config(sslMode=PLANT)),
        (spec("mysql").validate_config, pg_config(ssl=PLANT)),
        (spec("s3").validate_config, {"bucket": "b", "region": "r1",
                                      "endpointUrl": f"https://{PLANT}:{PLANT}@h"}),
    ]  # fmt: skip
    for call, payload in calls:
        exc = raises(call, payload)
        seen = " ".join([str(exc), repr(exc), repr(exc.args), exc.message, str(exc.field)])
        assert PLANT not in seen, (call, exc.message)


# -- spec invariants -------------------------------------------------------------------------


def test_naming_helpers() -> None:
    pairs = [
        ("privateKeyPassphrase", "private_key_passphrase"),
        ("credentialsJson", "credentials_json"),
        ("httpPath", "http_path"),
        ("projectId", "project_id"),
        ("host", "host"),
    ]
    for camel, snake in pairs:
        assert to_snake(camel) == snake
        assert to_camel(snake) == camel


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True), ("apiKey", True), ("privateKey", True), ("tokenId", True),
        ("clientSecret", True), ("privateKeyPassphrase", True), ("credentialsJson", True),
        ("keyPrefix", False), ("accessKeyId", False), ("host", False), ("authHeader", False),
        ("username", False),
    ],
)  # fmt: skip
def test_looks_secret(name: str, secret: bool) -> None:
    assert looks_secret(name) is secret


def _provider(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "demo", "kind": "sql", "display_name": "Demo", "dialect": "postgres",
        "docs_url": "https://example.com", "driver": "psycopg", "install_hint": "pip install x",
        "config": [{"name": "host", "type": "string", "title": "Host", "required": True}],
        "credentials": [{"name": "password", "type": "string", "title": "P", "secret": True}],
        "steps": ["connectivity", "authentication"],
    }  # fmt: skip
    return {**base, **overrides}


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"config": [{"name": "apiKey", "type": "string", "title": "K"}]}, "looks secret"),
        ({"config": [{"name": "host", "type": "string", "title": "H", "secret": True}]},
         "looks secret"),
        ({"credentials": [{"name": "password", "type": "string", "title": "P"}]}, "secret"),
        ({"credentials": [{"name": "n", "type": "integer", "title": "N", "secret": True}]},
         "secret string"),
        ({"config": [{"name": "p", "type": "integer", "title": "P", "default": "5"}]},
         "default must already"),
        ({"config": [{"name": "p", "type": "integer", "title": "P", "default": 0,
                      "minimum": 1}]}, "at least 1"),
        ({"config": [{"name": "p", "type": "string", "title": "P", "required": True,
                      "default": "x"}]}, "not required"),
        ({"config": [{"name": "p", "type": "string", "title": "P", "pattern": "[a-z]+"}]},
         "anchored"),
        ({"config": [{"name": "p", "type": "enum", "title": "P"}]}, "choices"),
        ({"config": [{"name": "p_q", "type": "string", "title": "P"}]}, "pattern"),
        ({"config": [{"name": "siteURL", "type": "string", "title": "P"}]}, "pattern"),
        ({"config": [{"name": "host", "type": "string", "title": "H"}],
          "credentials": [{"name": "host", "type": "string", "title": "H", "secret": True}]},
         "unique"),
        ({"steps": ["authentication", "connectivity"]}, "steps"),
        ({"steps": ["connectivity", "teleport"]}, "steps"),
        ({"steps": []}, "steps"),
        ({"dialect": None}, "dialect"),
        ({"kind": "http", "dialect": None}, "http"),
        ({"capabilities": {"time_travel": True}}, "capabilities"),
        ({"auth_modes": [{"name": "a", "credentials": ["nope"]}]}, "unknown"),
        ({"credentials": [{"name": "password", "type": "string", "title": "P", "secret": True,
                           "required": True}],
          "auth_modes": [{"name": "a", "credentials": ["password"]}]}, "must not be required"),
        ({"credentials": [
            {"name": "password", "type": "string", "title": "P", "secret": True},
            {"name": "otp", "type": "string", "title": "O", "secret": True}],
          "auth_modes": [{"name": "a", "credentials": ["password"], "optional": ["otp"]},
                         {"name": "b", "credentials": ["password", "otp"]}]}, "ambiguous"),
        ({"surprise": 1}, "surprise"),
    ],
)  # fmt: skip
def test_broken_specs_are_refused(overrides: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        ProviderSpec.model_validate(_provider(**overrides))


def _http_provider(http: dict[str, Any], config: list[dict[str, Any]] | None = None) -> Any:
    return _provider(
        kind="http", dialect=None, http=http,
        config=config or [{"name": "host", "type": "string", "title": "H", "required": True}],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("http", "needle"),
    [
        # An unconstrained field would let a value choose the request's host.
        ({"base_url": "https://{host}", "verify_path": "/", "auth": {"scheme": "none"}},
         "constrained"),
        ({"base_url": "https://{region}.x", "verify_path": "/", "auth": {"scheme": "none"}},
         "config field"),
        ({"base_url": "https://x", "verify_path": "/",
          "auth": {"scheme": "bearer", "fields": {"token": "nope"}}}, "unknown fields"),
        ({"base_url": "https://x", "verify_path": "/",
          "auth": {"scheme": "bearer", "fields": {}}}, "needs fields"),
        ({"base_url": "https://x", "verify_path": "/",
          "auth": {"scheme": "header", "fields": {"token": "password"}}}, "needs 'header'"),
        ({"base_url": "https://x", "verify_path": "/",
          "auth": {"scheme": "oauth2_refresh", "fields": {
              "client_id": "host", "client_secret": "password", "refresh_token": "password"}}},
         "token_url"),
        ({"base_url": "https://x", "verify_path": "/"}, "exactly one"),
        ({"base_url": "https://x", "verify_path": "x", "auth": {"scheme": "none"}}, "pattern"),
        ({"base_url": "https://x", "verify_path": "/", "auth_select": "host",
          "auth_variants": {"a": {"scheme": "none"}}}, "choices of auth_select"),
    ],
)  # fmt: skip
def test_broken_http_sections_are_refused(http: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        ProviderSpec.model_validate(_http_provider(http))


def test_templates() -> None:
    assert template_fields("https://{shopDomain}/admin/api/{apiVersion}/x") == {
        "shopDomain", "apiVersion",
    }  # fmt: skip
    assert render("https://{a}/{b}", {"a": "x", "b": "{a}"}) == "https://x/{a}"
    shopify = spec("shopify")
    assert shopify.http is not None
    config = shopify.validate_config({"shopDomain": "acme.myshopify.com", "apiVersion": "2025-04"})
    assert shopify.http.verify_url(config) == (
        "https://acme.myshopify.com/admin/api/2025-04/shop.json"
    )
    auth = shopify.http.select_auth(config)
    assert auth == HttpAuth(
        scheme="header", header="X-Shopify-Access-Token", prefix="",
        fields={"token": "accessToken"},
    )  # fmt: skip


def test_http_api_auth_follows_config() -> None:
    http_api = spec("http_api")
    assert http_api.http is not None
    for mode in ("header", "bearer", "basic", "none"):
        config = http_api.validate_config({"baseUrl": "https://api.example.com/", "authMode": mode})
        assert http_api.http.select_auth(config).scheme == mode
        assert http_api.http.verify_url(config) == "https://api.example.com/"
    config = http_api.validate_config({"baseUrl": "https://a.example.com", "verifyPath": "/me"})
    assert http_api.http.verify_url(config) == "https://a.example.com/me"


def test_http_api_selected_auth_needs_its_fields() -> None:
    """API.md section 4: ``apiKey`` and/or ``password``, with ``username`` for basic auth."""
    http_api = spec("http_api")

    def check(config: dict[str, Any], credentials: dict[str, str]) -> None:
        clean = http_api.validate_config({"baseUrl": "https://api.example.com", **config})
        http_api.check_selected_auth(clean, credentials)

    check({}, {"apiKey": "k"})  # header, the default
    check({"authMode": "bearer"}, {"apiKey": "k"})
    check({"authMode": "basic", "username": "u"}, {"password": "p"})
    check({"authMode": "none"}, {})
    for config, credentials, missing in (
        ({}, {}, "credentials.apiKey"),
        ({"authMode": "bearer"}, {"password": "p"}, "credentials.apiKey"),
        ({"authMode": "basic"}, {"password": "p"}, "config.username"),
        ({"authMode": "basic", "username": "u"}, {"apiKey": "k"}, "credentials.password"),
    ):
        with pytest.raises(InvalidProviderFields) as info:
            check(config, credentials)
        assert info.value.field == missing, (config, credentials)
    spec("postgres").check_selected_auth({}, {})  # no selector: nothing to check


# -- public schema ---------------------------------------------------------------------------


def test_public_schema_shape() -> None:
    public = spec("snowflake").public_schema()
    assert public["name"] == "snowflake" and public["kind"] == "sql"
    assert public["displayName"] == "Snowflake"
    assert public["steps"] == ["connectivity", "authentication", "permissions"]
    assert public["capabilities"] == {"query": True, "schemaBrowsing": True}
    assert public["authModes"] == [
        {"name": "password", "title": "Password", "credentials": ["password"], "optional": []},
        {"name": "key_pair", "title": "Key pair", "credentials": ["privateKey"],
         "optional": ["privateKeyPassphrase"]},
    ]  # fmt: skip
    config = public["config"]
    assert config["required"] == ["account", "warehouse", "database", "schema", "username"]
    assert config["properties"]["port"]["type"] == "integer"
    assert config["properties"]["protocol"]["enum"] == ["https", "http"]
    creds = public["credentials"]["properties"]
    assert creds["privateKey"]["contentMediaType"] == "application/x-pem-file"
    assert all(p["writeOnly"] is True for p in creds.values())
    pg = spec("postgres").public_schema()
    assert pg["config"]["properties"]["port"]["default"] == 5432
    assert pg["credentials"]["required"] == ["password"]


@pytest.mark.parametrize("provider", ["snowflake", "sftp"])
def test_public_schema_auth_rule_matches_python(provider: str) -> None:
    """The published oneOf accepts exactly the credential sets the validator accepts."""
    s = spec(provider)
    validator = jsonschema_rs.validator_for(s.public_schema()["credentials"])
    values = {"password": "pw", "privateKey": PEM, "privateKeyPassphrase": "pp"}
    for size in range(len(values) + 1):
        for keys in itertools.combinations(values, size):
            creds = {k: values[k] for k in keys}
            try:
                s.validate_credentials(creds)
                accepted = True
            except InvalidProviderFields:
                accepted = False
            assert validator.is_valid(creds) is accepted, keys


def test_field_schema_for_form_widgets() -> None:
    f = FieldSpec(name="notes", type="text", title="Notes", required=True)
    schema = f.json_schema()
    assert schema["type"] == "string" and schema["x-fieldType"] == "text"
    assert schema["minLength"] == 1 and schema["maxLength"] == 65536
    assert f.coerce("a\nb\tc", "config.notes") == "a\nb\tc"
