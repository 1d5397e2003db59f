"""Every per-auth-type example in pipelines/examples runs against the emulated org, and no
secret value shows up in what `forcebeam run` prints."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forcebeam.pipelines.emulator_env import env_from_info

EXAMPLES = Path(__file__).resolve().parents[1] / "pipelines" / "examples"
AUTH_EXAMPLES = ["jwt_bearer", "client_credentials", "refresh_token", "password", "basic",
                 "access_token", "mutual_tls", "token_exchange"]


def extra_env(org, example: str) -> dict[str, str]:
    """Secrets the example references with env:// that the info file does not hold."""
    app = org.info["connected_app"]
    if example == "refresh_token":
        token = org.admin("POST", "refresh-tokens", json={
            "username": org.info["username"], "consumer_key": app["consumer_key"]}).json()
        return {"FORCEBEAM_REFRESH_TOKEN": token["refresh_token"]}
    if example == "access_token":
        response = org.session().post(f"{org.info['login_url']}/services/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": app["consumer_key"],
            "client_secret": app["consumer_secret"]}, timeout=30)
        response.raise_for_status()
        return {"FORCEBEAM_ACCESS_TOKEN": response.json()["access_token"]}
    if example == "token_exchange":  # a Google Cloud worker: its metadata server answers
        host = org.info["token_exchange"]["metadata_host"]
        return {"GCE_METADATA_HOST": host, "GCE_METADATA_IP": host, "NO_GCE_CHECK": ""}
    return {}


@pytest.mark.parametrize("example", AUTH_EXAMPLES)
def test_auth_example_runs(org, tmp_path, example):
    out = tmp_path / "out"
    env = {**os.environ, **env_from_info(org.info), **extra_env(org, example),
           "FORCEBEAM_OUT": str(out), "FORCEBEAM_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "forcebeam.pipelines.cli", "run",
                             str(EXAMPLES / f"{example}.yaml")],
                            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed[-3000:]
    lines = [line for path in glob.glob(str(out / f"{example}_accounts*"))
             for line in Path(path).read_text().splitlines()]
    assert lines[0] == "Id,Name,Industry,AnnualRevenue"
    assert len(lines) - 1 == org.info["records"]
    secrets = [org.info["password"], org.info["security_token"],
               org.info["connected_app"]["consumer_secret"],
               Path(org.info["connected_app"]["private_key"]).read_text().splitlines()[1],
               *extra_env_values(env)]
    for secret in secrets:
        assert secret not in printed


def extra_env_values(env: dict[str, str]) -> list[str]:
    return [env[name] for name in ("FORCEBEAM_REFRESH_TOKEN", "FORCEBEAM_ACCESS_TOKEN")
            if name in env]
