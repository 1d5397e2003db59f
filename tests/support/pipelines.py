"""Pipeline-file pieces shared by the CLI and pipeline tests."""

from __future__ import annotations

import pytest

from forcebeam.pipelines.emulator_env import forget_org

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


@pytest.fixture(autouse=True)
def forget_org_afterwards():
    """Secrets/clients cached for one module's org must not leak into later tests."""
    yield
    forget_org()
