"""Pipeline-file pieces shared by the CLI and pipeline tests."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from forcebeam.pipelines.emulator_env import forget_org, use_org
from tests.support.org import EmulatedOrg

# A JWT-bearer connection as users write it, filled from the emulator's info file by
# `pipelines.emulator_env.use_org` (the key is read from the emulator's Secret Manager).
JWT_CONNECTION = """\
    login_url: ${FORCEBEAM_LOGIN_URL}
    ca_bundle: ${FORCEBEAM_CA_CERT}
    auth:
      type: jwt_bearer
      username: ${FORCEBEAM_USERNAME}
      consumer_key: ${FORCEBEAM_CONSUMER_KEY}
      private_key: ${FORCEBEAM_PRIVATE_KEY_SECRET}
"""

# A valid connection to an org that is never contacted: for offline `forcebeam validate`.
OFFLINE_CONNECTIONS = """\
connections:
  prod:
    login_url: https://acme.my.salesforce.com
    auth:
      type: jwt_bearer
      username: integration@acme.com
      consumer_key: 3MVG9example
      private_key: gcp-sm://projects/acme/secrets/sf-jwt-key/versions/latest
"""


def jwt_connections(name: str = "emulated") -> str:
    """A file's ``connections:`` block: the emulated org as connection ``name``."""
    return f"connections:\n  {name}:\n{JWT_CONNECTION}"


def point_env_at(org: EmulatedOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``${FORCEBEAM_*}`` at ``org`` (caches of other orgs gone); returns the empty
    output folder ``${FORCEBEAM_OUT}``."""
    for name, value in use_org(org.info, environ={}).items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("FORCEBEAM_OUT", str(out))
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    return out


def run_ok(path: Path, beam_args: list[str] | None = None) -> str:
    """``forcebeam run`` of ``path`` in this process; asserts it succeeded, returns its report."""
    from forcebeam.pipelines.run import run_file

    stream = io.StringIO()
    code = run_file(str(path), list(beam_args or []), stream=stream)
    assert code == 0, stream.getvalue()
    return stream.getvalue()


@pytest.fixture(autouse=True)
def forget_org_afterwards():
    """Secrets/clients cached for one module's org must not leak into later tests."""
    yield
    forget_org()
