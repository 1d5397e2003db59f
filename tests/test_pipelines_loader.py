"""Reading pipeline files: `${VAR}` placeholders, line numbers of every field, duplicate keys."""

from __future__ import annotations

import pytest

from forcebeam.pipelines.loader import parse_text
from forcebeam.pipelines.problems import PipelineFileError

TEXT = """\
defaults: &defaults
  api_version: "62.0"
connections:
  prod:
    <<: *defaults
    login_url: ${SF_URL}
    note: "${MISSING:-fallback} and $${LITERAL}"
pipeline:
  transforms:
    - type: ReadFromSalesforce
      config: {connection: prod, sobject: Account}
"""


def test_placeholders_defaults_escapes_and_merge_keys():
    loaded = parse_text(TEXT, "p.yaml", env={"SF_URL": "https://acme.my.salesforce.com"})
    prod = loaded.data["connections"]["prod"]
    assert prod["login_url"] == "https://acme.my.salesforce.com"
    assert prod["note"] == "fallback and ${LITERAL}"
    assert prod["api_version"] == "62.0"


def test_every_field_knows_its_line():
    loaded = parse_text(TEXT, "p.yaml", env={"SF_URL": "x"})
    assert loaded.line_of(("connections", "prod", "login_url")) == 6
    assert loaded.line_of(("pipeline", "transforms", 0, "config", "sobject")) == 11
    # A field that is not in the file points at its nearest enclosing one.
    assert loaded.line_of(("pipeline", "transforms", 0, "config", "fields")) == 11


def test_a_placeholder_value_cannot_inject_yaml():
    loaded = parse_text("a: ${V}\nb: 2\n", "p.yaml", env={"V": "1\nb: 3"})
    assert loaded.data == {"a": "1\nb: 3", "b": 2}


def test_duplicate_keys_are_reported():
    with pytest.raises(PipelineFileError) as raised:
        parse_text("connections: {}\npipeline: {}\nconnections: {}\n", "p.yaml", env={})
    assert "p.yaml:3: connections: duplicate key" in str(raised.value)


def test_empty_and_non_mapping_files():
    with pytest.raises(PipelineFileError, match="p.yaml:1: .*the file is empty"):
        parse_text("", "p.yaml", env={})
    with pytest.raises(PipelineFileError, match="must be a mapping"):
        parse_text("- a\n- b\n", "p.yaml", env={})
