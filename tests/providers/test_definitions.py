"""The gate: every provider definition is schema-valid, marks its secrets, declares steps and
a driver, and the catalogue matches the API contract (API.md sections 3 and 4)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import sqlglot
import yaml

import connhub.providers
from connhub.errors import BadRequest, ConfigurationError
from connhub.providers.registry import (
    ProviderRegistry,
    default_registry,
    import_driver,
    parse_definition,
)
from connhub.providers.spec import (
    CAPABILITIES,
    CREDENTIAL_TYPES,
    KNOWN_STEPS,
    FieldSpec,
    ProviderSpec,
    looks_secret,
    render,
    template_fields,
    to_camel,
    to_snake,
)

DEFINITIONS = Path(connhub.providers.__file__).parent / "definitions"
FILES = sorted(DEFINITIONS.glob("*.yaml"))

CONNECTIONS_API_PROVIDERS = {  # API.md section 3, the `provider` enum
    "shopify", "http_api", "flexiroam", "starlink", "s3", "google_drive", "msft_sharepoint",
    "klaviyo", "amazon_sp", "salesforce", "netsuite", "sqlserver", "postgres", "mlflow", "sftp",
    "gmail_inbox", "dropbox", "rydership", "gorgias", "redo", "bullhorn",
}  # fmt: skip
EXPECTED = CONNECTIONS_API_PROVIDERS | {"snowflake", "bigquery", "databricks", "mysql"}
KINDS = {
    "sql": {"postgres", "mysql", "sqlserver", "snowflake", "bigquery", "databricks"},
    "files": {"s3", "sftp", "google_drive", "msft_sharepoint", "dropbox", "gmail_inbox"},
}
DRIVERS = {
    "postgres": "psycopg", "mysql": "pymysql", "sqlserver": "pytds",
    "snowflake": "snowflake.connector", "bigquery": "google.cloud.bigquery",
    "databricks": "databricks.sql", "s3": "boto3", "sftp": "asyncssh",
}  # fmt: skip

REQ = "required"
# API.md section 4: {field: REQ | ("optional", default)}; credentials likewise.
SECTION_4: dict[str, dict[str, Any]] = {
    "postgres": {
        "config": {"host": REQ, "port": ("optional", 5432), "database": REQ,
                   "username": REQ, "sslMode": ("optional", None)},
        "credentials": {"password": REQ},
    },
    "mysql": {
        "config": {"host": REQ, "port": ("optional", 3306), "database": REQ,
                   "username": REQ, "ssl": ("optional", None)},
        "credentials": {"password": REQ},
    },
    "sqlserver": {
        "config": {"host": REQ, "port": ("optional", 1433), "database": REQ,
                   "username": REQ, "encrypt": ("optional", None)},
        "credentials": {"password": REQ},
    },
    "snowflake": {
        "config": {"account": REQ, "warehouse": REQ, "database": REQ, "schema": REQ,
                   "username": REQ, "role": ("optional", None), "stage": ("optional", None),
                   "host": ("optional", None), "port": ("optional", None),
                   "protocol": ("optional", None)},
        "credentials": {"password": ("optional", None), "privateKey": ("optional", None),
                        "privateKeyPassphrase": ("optional", None)},
        "modes": [("password", []), ("privateKey", ["privateKeyPassphrase"])],
    },
    "bigquery": {
        # apiEndpoint: our optional addition (regional / Private Service Connect endpoints)
        "config": {"projectId": REQ, "dataset": REQ, "location": ("optional", None),
                   "apiEndpoint": ("optional", None)},
        "credentials": {"credentialsJson": REQ},
    },
    "databricks": {
        "config": {"host": REQ, "httpPath": REQ, "catalog": REQ, "schema": REQ},
        "credentials": {"token": REQ},
    },
    "s3": {
        "config": {"bucket": REQ, "region": REQ, "prefix": ("optional", None),
                   "endpointUrl": ("optional", None)},
        "credentials": {"accessKeyId": REQ, "secretAccessKey": REQ},
    },
    "sftp": {
        "config": {"host": REQ, "port": ("optional", 22), "username": REQ,
                   "root": ("optional", "/")},
        "credentials": {"password": ("optional", None), "privateKey": ("optional", None),
                        "privateKeyPassphrase": ("optional", None)},
        "modes": [("password", []), ("privateKey", ["privateKeyPassphrase"])],
    },
    "http_api": {
        "config": {"baseUrl": REQ, "authMode": ("optional", "header"),
                   "authHeader": ("optional", "Authorization"), "verifyPath": ("optional", "/"),
                   "username": ("optional", None)},
        "credentials": {"apiKey": ("optional", None), "password": ("optional", None)},
    },
}  # fmt: skip

SAMPLE_CREDENTIAL = {
    "string": "sample-value",
    "text": "line one\nline two",
    "pem": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    "json": '{"type": "service_account", "project_id": "acme-analytics"}',
}


def _spec(path: Path) -> ProviderSpec:
    return parse_definition(path.name, path.read_text(encoding="utf-8"))


def sample_config(spec: ProviderSpec) -> dict[str, Any]:
    """A complete, valid config built from each field's example or default."""
    out: dict[str, Any] = {}
    for f in spec.config:
        if f.example is not None:
            out[f.name] = f.example
        elif f.default is not None:
            out[f.name] = f.default
        elif f.type == "enum":
            assert f.choices
            out[f.name] = f.choices[0]
        elif f.type == "boolean":
            out[f.name] = True
        elif f.type == "integer":
            out[f.name] = f.minimum if f.minimum is not None else 1
        else:
            assert f.pattern is None, f"{spec.name}.{f.name}: add an example"
            out[f.name] = "https://example.com" if f.type == "url" else "sample"
    return out


def sample_credentials(spec: ProviderSpec) -> dict[str, str]:
    """A complete credential set: required fields plus the first auth mode's."""
    wanted = {f.name for f in spec.credentials if f.required}
    if spec.auth_modes:
        wanted |= set(spec.auth_modes[0].credentials)
    return {f.name: SAMPLE_CREDENTIAL[f.type] for f in spec.credentials if f.name in wanted}


# -- the catalogue ---------------------------------------------------------------------------


def test_catalogue_is_exactly_the_25_providers() -> None:
    assert {p.stem for p in FILES} == EXPECTED
    registry = default_registry()
    assert set(registry.names()) == EXPECTED
    assert registry.names() == sorted(EXPECTED)
    assert len(registry) == 25
    assert [s.name for s in registry.all()] == registry.names()


def test_connections_api_enum_is_covered() -> None:
    assert CONNECTIONS_API_PROVIDERS <= set(default_registry().names())


def test_kinds_match_the_plan() -> None:
    for spec in default_registry():
        expected = next((k for k, names in KINDS.items() if spec.name in names), "http")
        assert spec.kind == expected, spec.name


# -- one definition at a time ----------------------------------------------------------------


@pytest.fixture(params=FILES, ids=[p.stem for p in FILES])
def spec(request: pytest.FixtureRequest) -> ProviderSpec:
    path: Path = request.param
    return _spec(path)


def test_loads_and_is_named_after_its_file(spec: ProviderSpec) -> None:
    raw = yaml.safe_load((DEFINITIONS / f"{spec.name}.yaml").read_text(encoding="utf-8"))
    assert raw["name"] == spec.name
    assert ProviderSpec.model_validate(raw) == spec
    assert spec.display_name.strip() and spec.docs_url.startswith("https://")


def test_secrets_are_marked(spec: ProviderSpec) -> None:
    for f in spec.credentials:
        assert f.secret, f"credentials.{f.name} must be secret: true"
        assert f.type in CREDENTIAL_TYPES
        assert f.default is None and f.example is None
    for f in spec.config:
        assert not f.secret, f"config.{f.name} must not be secret"
        assert not looks_secret(f.name), f"config.{f.name} looks secret"


def test_field_names_are_camel_case_and_round_trip(spec: ProviderSpec) -> None:
    names = [f.name for f in (*spec.config, *spec.credentials)]
    assert len(set(names)) == len(names)
    assert len({to_snake(n) for n in names}) == len(names)
    for name in names:
        assert to_camel(to_snake(name)) == name


def test_defaults_and_examples_satisfy_their_own_field(spec: ProviderSpec) -> None:
    for f in spec.config:
        assert not (f.required and f.default is not None), f.name
        for value in (f.default, f.example):
            if value is not None:
                coerced = f.coerce(value, f"config.{f.name}")
                assert coerced == value and type(coerced) is type(value)


def test_auth_modes_reference_credential_fields(spec: ProviderSpec) -> None:
    names = {f.name for f in spec.credentials}
    for mode in spec.auth_modes:
        assert mode.fields <= names, mode.name
        assert not set(mode.credentials) & set(mode.optional)


def test_steps_are_known_and_fit_the_kind(spec: ProviderSpec) -> None:
    assert spec.steps and spec.steps[0] == "connectivity"
    assert "authentication" in spec.steps
    assert [s for s in KNOWN_STEPS if s in spec.steps] == list(spec.steps)
    assert ("list_files" in spec.steps) == (spec.kind == "files")
    if spec.kind == "sql":
        assert "permissions" in spec.steps


def test_capabilities_fit_the_kind(spec: ProviderSpec) -> None:
    assert set(spec.capabilities) <= CAPABILITIES
    assert spec.supports("schema_browsing") == (spec.kind == "sql")
    assert spec.supports("query") == (spec.kind == "sql")
    assert spec.supports("file_listing") == (spec.kind == "files")


def test_sql_dialect_is_known_to_sqlglot(spec: ProviderSpec) -> None:
    if spec.kind != "sql":
        assert spec.dialect is None
        return
    assert spec.dialect is not None
    sqlglot.Dialect.get_or_raise(spec.dialect)
    sqlglot.parse_one("SELECT 1", read=spec.dialect)


def test_driver_is_importable_or_has_an_install_hint(spec: ProviderSpec) -> None:
    assert spec.driver == DRIVERS.get(spec.name, "httpx")
    assert spec.install_hint and spec.install_hint.startswith("pip install ")
    try:
        found = importlib.util.find_spec(spec.driver) is not None
    except ImportError:
        found = False
    assert spec.driver_available() == found
    if found:
        assert import_driver(spec).__name__ == spec.driver
    else:
        with pytest.raises(ConfigurationError) as info:
            import_driver(spec)
        assert spec.install_hint in info.value.message


def test_public_schema_is_valid_json_schema(spec: ProviderSpec) -> None:
    public = spec.public_schema()
    assert set(public) == {
        "name", "kind", "displayName", "docsUrl", "authModes", "config", "credentials",
        "steps", "capabilities",
    }  # fmt: skip
    for section in ("config", "credentials"):
        schema = public[section]
        jsonschema_rs.meta.validate(schema)  # draft 2020-12, from "$schema"
        assert schema["additionalProperties"] is False
    for name, prop in public["credentials"]["properties"].items():
        assert prop["writeOnly"] is True, name
        assert "examples" not in prop and "default" not in prop
    for name, prop in public["config"]["properties"].items():
        assert "writeOnly" not in prop, name
    for key in public["capabilities"]:
        assert key == to_camel(key) and "_" not in key


def test_sample_values_pass_both_validators(spec: ProviderSpec) -> None:
    """Python validation and the published JSON Schema agree on a complete example."""
    public = spec.public_schema()
    config = sample_config(spec)
    clean = spec.validate_config(config)
    assert jsonschema_rs.validator_for(public["config"]).is_valid(clean)
    credentials = sample_credentials(spec)
    assert spec.validate_credentials(credentials) == credentials
    assert jsonschema_rs.validator_for(public["credentials"]).is_valid(credentials)


def test_http_section(spec: ProviderSpec) -> None:
    if spec.kind == "http" or spec.driver == "httpx":
        assert spec.http is not None, "HTTP-backed providers declare base_url/verify/auth"
    if spec.http is None:
        return
    http = spec.http
    config_fields = {f.name: f for f in spec.config}
    for template in http.templates():
        for name in template_fields(template):
            f = config_fields[name]
            assert f.required or f.default is not None
            assert f.pattern or f.choices or f.type in ("url", "integer")
    known = config_fields.keys() | {f.name for f in spec.credentials}
    for auth in http.all_auth():
        assert set(auth.fields.values()) <= known
        # Tokens come from credentials, never from config.
        for role in ("token", "password", "client_secret", "refresh_token", "token_secret"):
            if role in auth.fields:
                assert auth.fields[role] in {f.name for f in spec.credentials}
    config = spec.validate_config(sample_config(spec))
    url = http.verify_url(config)
    assert url.startswith("https://") and "{" not in url
    mode = spec.active_auth_mode(sample_credentials(spec))
    auth = http.select_auth(config, mode.name if mode else None)
    if auth.token_url:
        assert render(auth.token_url, config).startswith("https://")


def test_section_4_fields_are_exactly_as_written() -> None:
    registry = default_registry()
    for name, expected in SECTION_4.items():
        spec = registry.get(name)
        for section in ("config", "credentials"):
            fields: tuple[FieldSpec, ...] = getattr(spec, section)
            assert [f.name for f in fields] == list(expected[section]), (name, section)
            for f in fields:
                want = expected[section][f.name]
                if want == REQ:
                    assert f.required and f.default is None, (name, f.name)
                else:
                    assert not f.required and f.default == want[1], (name, f.name)
        modes = expected.get("modes")
        if modes is None:
            assert spec.auth_modes == (), name
        else:
            got = [(*m.credentials, list(m.optional)) for m in spec.auth_modes]
            assert got == modes, name
    types = {
        ("postgres", "port"): "integer", ("sftp", "port"): "integer", ("mysql", "ssl"): "boolean",
        ("sqlserver", "encrypt"): "boolean", ("snowflake", "port"): "integer",
        ("http_api", "baseUrl"): "url", ("http_api", "authMode"): "enum",
    }  # fmt: skip
    for (provider, field), type_ in types.items():
        field_spec = registry.get(provider).config_field(field)
        assert field_spec is not None and field_spec.type == type_
    for provider, field, type_ in [
        ("snowflake", "privateKey", "pem"), ("sftp", "privateKey", "pem"),
        ("bigquery", "credentialsJson", "json"),
    ]:  # fmt: skip
        secret_spec = registry.get(provider).credential_field(field)
        assert secret_spec is not None and secret_spec.type == type_


def test_sources_api_snake_names() -> None:
    """API.md section 2 spells these fields in snake_case; the mapping is mechanical."""
    registry = default_registry()
    assert {to_snake(f.name) for f in registry.get("bigquery").config} >= {"project_id"}
    assert to_snake("credentialsJson") == "credentials_json"
    assert to_snake("httpPath") == "http_path"
    assert to_snake("privateKeyPassphrase") == "private_key_passphrase"
    assert to_camel("private_key") == "privateKey"


# -- the registry ----------------------------------------------------------------------------


def test_registry_lookups() -> None:
    registry = default_registry()
    assert registry is default_registry()
    assert "postgres" in registry and "oracle" not in registry and 3 not in registry
    assert registry.get("postgres").kind == "sql"
    with pytest.raises(BadRequest) as info:
        registry.get("oracle")
    assert info.value.code == "unknown_provider"
    assert info.value.field == "provider"
    assert info.value.message == "Unknown provider 'oracle'"


def test_registry_loads_a_directory(tmp_path: Path) -> None:
    (tmp_path / "postgres.yaml").write_text(
        (DEFINITIONS / "postgres.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tmp_path / "README.md").write_text("not a definition", encoding="utf-8")
    registry = ProviderRegistry.load(tmp_path)
    assert registry.names() == ["postgres"]


@pytest.mark.parametrize(
    ("filename", "text", "needle"),
    [
        ("x.yaml", "name: y\nkind: http\n", "name must be 'x'"),
        ("x.yaml", "- just\n- a list\n", "expected a mapping"),
        ("x.yaml", "name: x\nkind: [unclosed\n", "invalid YAML"),
        ("x.yaml", "name: x\nname: x\n", "duplicate keys ['name']"),
        ("x.yaml", "name: x\nkind: sql\ndisplay_name: X\n", "x.yaml"),
    ],
)
def test_broken_definitions_refuse_to_load(filename: str, text: str, needle: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_definition(filename, text)
    assert needle in info.value.message


def test_broken_directory_stops_loading(tmp_path: Path) -> None:
    text = (DEFINITIONS / "postgres.yaml").read_text(encoding="utf-8")
    (tmp_path / "postgres.yaml").write_text(text.replace("secret: true", "secret: false"))
    with pytest.raises(ConfigurationError, match="postgres.yaml"):
        ProviderRegistry.load(tmp_path)


def test_duplicate_names_refused() -> None:
    spec = default_registry().get("postgres")
    with pytest.raises(ConfigurationError, match="defined twice"):
        ProviderRegistry([spec, spec])


def test_missing_driver_gives_install_hint() -> None:
    spec = (
        default_registry()
        .get("postgres")
        .model_copy(
            update={"driver": "connhub_no_such_driver.sub", "install_hint": "pip install nothing"}
        )
    )
    assert spec.driver_available() is False
    with pytest.raises(ConfigurationError) as info:
        import_driver(spec)
    assert info.value.code == "driver_missing"
    assert "pip install nothing" in info.value.message
    assert "connhub_no_such_driver.sub" in info.value.message
