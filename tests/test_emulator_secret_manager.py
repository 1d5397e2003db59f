"""The emulator's Secret Manager endpoint with the real google-cloud-secret-manager client.

The client is configured exactly as forcebeam points it at a local endpoint: REST transport,
anonymous credentials, `api_endpoint` = the emulator's plain-HTTP host (conftest keeps
google-auth from probing any metadata server).
"""

from __future__ import annotations

from pathlib import Path

import google_crc32c
import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from tests.support.org import EmulatedOrg


def client(org: EmulatedOrg) -> secretmanager.SecretManagerServiceClient:
    return secretmanager.SecretManagerServiceClient(
        transport="rest", credentials=AnonymousCredentials(),
        client_options={"api_endpoint": f"http://{org.info['secret_manager_host']}"})


def test_reads_preloaded_connected_app_key_with_valid_crc(org: EmulatedOrg) -> None:
    reference = org.info["connected_app"]["private_key_secret"]
    name = reference.removeprefix("gcp-sm://")
    response = client(org).access_secret_version(request={"name": name})
    data = response.payload.data
    assert data == Path(org.info["connected_app"]["private_key"]).read_bytes()
    assert data.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert response.payload.data_crc32c == google_crc32c.value(data)
    assert response.name.endswith("/versions/1")


def test_create_add_versions_and_read_latest_and_numbered(org: EmulatedOrg) -> None:
    sm = client(org)
    parent = "projects/test-project"
    secret = sm.create_secret(request={"parent": parent, "secret_id": "rotating-token",
                                       "secret": {"replication": {"automatic": {}}}})
    assert secret.name == f"{parent}/secrets/rotating-token"
    for value in (b"first", b"second"):
        sm.add_secret_version(request={"parent": secret.name, "payload": {
            "data": value, "data_crc32c": google_crc32c.value(value)}})
    latest = sm.access_secret_version(request={"name": f"{secret.name}/versions/latest"})
    first = sm.access_secret_version(request={"name": f"{secret.name}/versions/1"})
    assert (latest.payload.data, first.payload.data) == (b"second", b"first")
    versions = [v.name for v in sm.list_secret_versions(request={"parent": secret.name})]
    assert sorted(versions) == [f"{secret.name}/versions/1", f"{secret.name}/versions/2"]
    with pytest.raises(exceptions.Conflict, match="already exists"):
        sm.create_secret(request={"parent": parent, "secret_id": "rotating-token",
                                  "secret": {"replication": {"automatic": {}}}})


def test_checksum_mismatch_is_refused(org: EmulatedOrg) -> None:
    sm = client(org)
    secret = sm.create_secret(request={"parent": "projects/test-project", "secret_id": "crc",
                                       "secret": {"replication": {"automatic": {}}}})
    with pytest.raises(exceptions.BadRequest, match="Checksum"):
        sm.add_secret_version(request={"parent": secret.name, "payload": {
            "data": b"payload", "data_crc32c": google_crc32c.value(b"other") or 1}})


def test_missing_secret_is_not_found_with_google_message(org: EmulatedOrg) -> None:
    with pytest.raises(exceptions.NotFound, match="not found or has no versions"):
        client(org).access_secret_version(
            request={"name": "projects/p/secrets/absent/versions/latest"})
    with pytest.raises(exceptions.NotFound):
        client(org).access_secret_version(request={
            "name": org.info["connected_app"]["private_key_secret"]
            .removeprefix("gcp-sm://").replace("/latest", "/9")})


def test_disabled_version_is_skipped_by_latest_and_refused_by_number(org: EmulatedOrg) -> None:
    sm = client(org)
    secret = sm.create_secret(request={"parent": "projects/test-project", "secret_id": "rotated",
                                       "secret": {"replication": {"automatic": {}}}})
    for value in (b"old", b"new"):
        sm.add_secret_version(request={"parent": secret.name, "payload": {"data": value}})
    sm.disable_secret_version(request={"name": f"{secret.name}/versions/2"})
    latest = sm.access_secret_version(request={"name": f"{secret.name}/versions/latest"})
    assert latest.payload.data == b"old"
    with pytest.raises(exceptions.BadRequest, match="DISABLED"):
        sm.access_secret_version(request={"name": f"{secret.name}/versions/2"})
    sm.enable_secret_version(request={"name": f"{secret.name}/versions/2"})
    assert sm.access_secret_version(
        request={"name": f"{secret.name}/versions/latest"}).payload.data == b"new"
