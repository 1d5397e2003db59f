"""`pipelines/providers.yaml` lets plain Beam YAML (`python -m apache_beam.yaml.main`) use our
stages with an inline connection: no forcebeam CLI involved."""

from __future__ import annotations

import glob
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from apache_beam.utils.python_callable import PythonCallableWithSource
from apache_beam.yaml.yaml_provider import InlineProvider

from forcebeam.pipelines.catalog import PROVIDERS_FILE
from forcebeam.pipelines.emulator_env import env_from_info
from forcebeam.stages.salesforce.config import StageInputError
from forcebeam.stages.salesforce.read import ReadFromSalesforce
from forcebeam.stages.salesforce.replicate import ReplicateSalesforce
from forcebeam.stages.salesforce.write import WriteToSalesforce


def test_apache_beam_yaml_main_runs_our_stages(org, tmp_path):
    info = org.info
    out = tmp_path / "out"
    pipeline = {
        "pipeline": {"transforms": [
            {"type": "ReadFromSalesforce", "name": "ReadAccounts", "config": {
                "connection": {
                    "login_url": info["login_url"], "ca_bundle": info["ca_cert"],
                    "auth": {"type": "jwt_bearer", "username": info["username"],
                             "consumer_key": info["connected_app"]["consumer_key"],
                             # a reference: the key is fetched from Secret Manager on the worker
                             "private_key": info["connected_app"]["private_key_secret"]}},
                "sobject": "Account", "fields": ["Id", "Name"]}},
            {"type": "Filter", "input": "ReadAccounts", "config": {
                "language": "python", "keep": "Name is not None"}},
            {"type": "WriteToJson", "input": "Filter", "config": {"path": f"{out}/accounts"}},
        ]},
        "providers": [{"include": str(PROVIDERS_FILE)}],
    }
    path = tmp_path / "plain_beam.yaml"
    path.write_text(yaml.safe_dump(pipeline, sort_keys=False))
    env = {**os.environ, **env_from_info(info), "FORCEBEAM_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "apache_beam.yaml.main", f"--yaml_pipeline_file={path}",
         "--runner=FnApiRunner"], capture_output=True, text=True, timeout=300, env=env,
        cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for name in glob.glob(f"{out}/accounts*")
            for line in Path(name).read_text().splitlines()]
    assert len(rows) == info["records"]
    assert len({row["Id"] for row in rows}) == len(rows)
    assert all(set(row) == {"Id", "Name"} for row in rows)


def test_yaml_faces_are_registered_under_the_stage_names_with_the_stages_config():
    """A YAML file keeps `type: ReadFromSalesforce` and the stage's config fields; the type
    resolves to the stage's YAML face (its own name), never to a second class of that name."""
    listed = yaml.safe_load(PROVIDERS_FILE.read_text())[0]["transforms"]
    faces = {}
    for stage in (ReadFromSalesforce, WriteToSalesforce, ReplicateSalesforce):
        face = PythonCallableWithSource.load_from_source(listed[stage.__name__])
        assert face.__name__ != stage.__name__
        schema = InlineProvider.config_schema_from_callable(face)
        assert [field.name for field in schema.fields] == list(inspect.signature(stage).parameters)
        faces[stage.__name__] = face
    provider = InlineProvider(faces)
    assert not provider.requires_inputs("ReplicateSalesforce", {})   # no `input: {}` needed
    with pytest.raises(StageInputError, match="error_handling must be"):
        faces["WriteToSalesforce"](connection={}, sobject="Account",
                                   error_handling={"outptu": "failed"})
