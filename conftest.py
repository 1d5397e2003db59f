"""Shared pytest fixtures: a running emulated org (TLS + mTLS ports + Secret Manager endpoint).

The google-auth guards come first: google-auth reads them at import time, and nothing in a
test may probe a metadata server or any address but loopback.
"""

import os

os.environ["NO_GCE_CHECK"] = "true"
os.environ["GCE_METADATA_HOST"] = "127.0.0.1:9"
os.environ["GCE_METADATA_IP"] = "127.0.0.1:9"

import sys  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.support.org import EmulatedOrg, start_org  # noqa: E402

# The folders install as `forcebeam.<folder>`; the repository root is on sys.path while tests
# run, so a stray `import auth` would work here and fail in every real install. Refuse it.
_FOLDERS_INSTALLED_UNDER_FORCEBEAM = frozenset({"auth", "stages", "pipelines", "emulator"})


class _RefuseUnnamespacedImports:
    """A meta path finder that fails `import auth` (etc.) the way an installed wheel would."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] in _FOLDERS_INSTALLED_UNDER_FORCEBEAM:
            raise ModuleNotFoundError(f"No module named {name!r}: import forcebeam.{name}",
                                      name=name)


sys.meta_path.insert(0, _RefuseUnnamespacedImports())

DEFAULT_RECORDS = 5000


@pytest.fixture(scope="session")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    """One emulated org for the whole session: 5,000 Accounts, others proportional.

    Tests that change org-wide settings (faults, limits, toggles) must use `org_factory`
    instead, so they never leak into other tests.
    """
    running = start_org(tmp_path_factory.mktemp("org"), records=DEFAULT_RECORDS)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def org_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., EmulatedOrg]]:
    """Start private orgs (custom record counts, faults, flags); all stopped after the test."""
    started: list[EmulatedOrg] = []

    def factory(records: int = 1000, extra_args: tuple[str, ...] = ()) -> EmulatedOrg:
        running = start_org(tmp_path_factory.mktemp("org"), records=records,
                            extra_args=extra_args)
        started.append(running)
        return running

    try:
        yield factory
    finally:
        for running in started:
            running.stop()


@pytest.fixture
def beam_options() -> list[str]:
    """Beam flags that keep tests offline: FnApiRunner never tries to download Prism."""
    return ["--runner=FnApiRunner"]


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent
