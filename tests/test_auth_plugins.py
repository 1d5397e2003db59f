"""One plugin registry, entry points as the single source: every name setup.py registers is
found and loads the object it names; unknown names are refused with the known ones listed."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from forcebeam.auth import ConfigError, Connection, SecretError, secrets, subject_tokens
from forcebeam.auth.errors import AuthError
from forcebeam.auth.flows import FLOWS
from forcebeam.stages.registry import STAGES, UnknownStageError, get_stage

SETUP = Path(__file__).resolve().parents[1] / "setup.py"
REGISTRIES = {"forcebeam.auth_flows": FLOWS, "forcebeam.secret_providers": secrets.PROVIDERS,
              "forcebeam.subject_tokens": subject_tokens.SOURCES, "forcebeam.stages": STAGES}


def setup_py_entry_points() -> dict[str, dict[str, str]]:
    """group -> {name: "module:attr"} as written in setup.py (read, not imported)."""
    tree = ast.parse(SETUP.read_text())
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "setup")
    value = next(keyword.value for keyword in call.keywords if keyword.arg == "entry_points")
    groups = ast.literal_eval(value)
    return {group: dict((part.strip() for part in line.split("=", 1)) for line in lines)
            for group, lines in groups.items() if group in REGISTRIES}


def test_every_entry_point_in_setup_py_resolves_through_its_registry():
    declared = setup_py_entry_points()
    assert set(declared) == set(REGISTRIES)
    for group, entries in declared.items():
        registry = REGISTRIES[group]
        assert set(entries) <= set(registry.names()), group
        for name, target in entries.items():
            module, _, attribute = target.partition(":")
            expected = getattr(importlib.import_module(module), attribute)
            assert registry.entry_points()[name].load() is expected
            if registry is not STAGES:
                assert registry.load(name) is expected


def test_unknown_names_are_refused_with_the_known_ones_and_the_fix():
    with pytest.raises(ConfigError) as flow:
        Connection.from_mapping({"login_url": "https://acme.my.salesforce.com",
                                 "auth": {"type": "jwt-bearer"}})
    assert "jwt_bearer" in flow.value.suggestion
    with pytest.raises(SecretError) as scheme:
        secrets.get_provider("vault")
    assert "known: env, file, gcp-sm" in str(scheme.value)
    with pytest.raises(AuthError) as source:
        subject_tokens.source_for("okta-token", "https://acme.my.salesforce.com")
    assert "google-id-token" in source.value.fix
    with pytest.raises(UnknownStageError) as stage:
        get_stage("WriteToSalesforse")
    assert "Did you mean WriteToSalesforce?" in str(stage.value)
