"""`pipelines/providers.yaml` lets plain Beam YAML (`python -m apache_beam.yaml.main`) use our
stages with an inline connection: no forcebeam CLI involved."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from forcebeam.pipelines.catalog import PROVIDERS_FILE
from forcebeam.pipelines.emulator_env import env_from_info


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
