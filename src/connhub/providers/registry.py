"""The provider catalogue: every ``definitions/*.yaml``, loaded and validated once.

Modelled on fsspec's ``registry.py``: the catalogue itself is plain data, read eagerly so a
broken definition stops start-up, while each provider's driver module is imported lazily by
:func:`import_driver`. A missing optional driver (snowflake, bigquery, databricks...) costs
nothing until a connection of that provider is used, and then fails with an install hint
instead of an ``ImportError`` deep inside a request.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Iterator
from importlib.resources import files
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import ValidationError

from connhub.errors import BadRequest, ConfigurationError
from connhub.providers.spec import ProviderSpec

_PACKAGE = "connhub.providers"


def _duplicate_keys(node: Any) -> list[str]:
    """Keys repeated within one mapping, which plain YAML loading silently overwrites."""
    found: list[str] = []
    if isinstance(node, yaml.MappingNode):
        keys = [key.value for key, _ in node.value if isinstance(key, yaml.ScalarNode)]
        found.extend(sorted({k for k in keys if keys.count(k) > 1}))
        children = [value for _, value in node.value]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    else:
        children = []
    for child in children:
        found.extend(_duplicate_keys(child))
    return found


def parse_definition(filename: str, text: str) -> ProviderSpec:
    """Parse one definition; its ``name`` must equal the file name without ``.yaml``."""
    try:
        duplicates = _duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"Provider definition {filename}: invalid YAML: {exc}") from exc
    if duplicates:
        raise ConfigurationError(f"Provider definition {filename}: duplicate keys {duplicates}")
    if not isinstance(data, dict):
        raise ConfigurationError(f"Provider definition {filename}: expected a mapping")
    stem = filename.removesuffix(".yaml")
    if data.get("name") != stem:
        raise ConfigurationError(
            f"Provider definition {filename}: name must be '{stem}' (the file name)"
        )
    try:
        return ProviderSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"Provider definition {filename}: {exc}") from exc


class ProviderRegistry:
    """Provider specs by name; the one place a face or kind looks a provider up."""

    def __init__(self, specs: Iterable[ProviderSpec]) -> None:
        self._specs: dict[str, ProviderSpec] = {}
        for spec in sorted(specs, key=lambda s: s.name):
            if spec.name in self._specs:
                raise ConfigurationError(f"Provider '{spec.name}' is defined twice")
            self._specs[spec.name] = spec

    @classmethod
    def load(cls, directory: Path | None = None) -> ProviderRegistry:
        """Read ``directory/*.yaml``, by default the definitions shipped in the package."""
        if directory is None:
            root = files(_PACKAGE).joinpath("definitions")
            sources = [
                (p.name, p.read_text(encoding="utf-8"))
                for p in root.iterdir()
                if p.name.endswith(".yaml")
            ]
        else:
            sources = [
                (p.name, p.read_text(encoding="utf-8")) for p in Path(directory).glob("*.yaml")
            ]
        return cls(parse_definition(name, text) for name, text in sources)

    def get(self, name: str) -> ProviderSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise BadRequest(
                f"Unknown provider '{name}'", code="unknown_provider", field="provider"
            ) from None

    def names(self) -> list[str]:
        return list(self._specs)

    def all(self) -> list[ProviderSpec]:
        return list(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ProviderSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)


@functools.cache
def default_registry() -> ProviderRegistry:
    """The packaged catalogue, loaded once per process."""
    return ProviderRegistry.load()


def import_driver(spec: ProviderSpec) -> ModuleType:
    """Import the provider's driver module, or refuse with how to install it."""
    if spec.driver is None:
        raise ConfigurationError(
            f"Provider '{spec.name}' declares no driver", code="driver_missing"
        )
    try:
        return importlib.import_module(spec.driver)
    except ImportError as exc:
        hint = spec.install_hint or f"install the package that provides '{spec.driver}'"
        raise ConfigurationError(
            f"Provider '{spec.name}' needs the Python module '{spec.driver}', "
            f"which is not installed: {hint}",
            code="driver_missing",
        ) from exc
