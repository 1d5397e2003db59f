"""What the 2025-27 Salesforce changes answer, and the one-sentence fix we print for each.

External Client Apps (no username-password flow, ever), uninstalled connected apps blocked for
users without "Approve Uninstalled Connected Apps" / "Use Any API Client" (Sep 2025), SOAP
login() refused with INSUFFICIENT_ACCESS without "Use Any API Auth", and retired API versions
(REST 410 GONE, Bulk 2.0 400 InvalidVersion). The emulator answers each as Salesforce does;
the org here is private because these tests flip org, app and user settings.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from forcebeam.auth import ApiVersionRetired, AuthError, get_client
from forcebeam.auth.commands import check_connection
from tests.support.org import EmulatedOrg, start_org
from tests.test_auth_fixtures import (
    auth_section,
    clean_auth_state,  # noqa: F401 - fixture
    connection_for,
)

pytestmark = pytest.mark.usefixtures("clean_auth_state")


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    running = start_org(tmp_path_factory.mktemp("org-2025-27"), records=50)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def restore(org: EmulatedOrg) -> Iterator[list[tuple[str, str, dict]]]:
    """Admin PATCHes to undo after the test: (path, json) pairs appended by the test."""
    undo: list[tuple[str, str, dict]] = []
    yield undo
    for method, path, body in reversed(undo):
        org.admin(method, path, json=body)


def eca_auth(org: EmulatedOrg, auth_type: str, monkeypatch, tmp_path) -> dict:
    """An auth section for the External Client App instead of the legacy connected app."""
    auth = auth_section(org, auth_type, monkeypatch, tmp_path)
    eca = org.info["external_client_app"]
    auth["consumer_key"] = eca["consumer_key"]
    if "consumer_secret" in auth:
        monkeypatch.setenv("FB_ECA_SECRET", eca["consumer_secret"])
        auth["consumer_secret"] = "env://FB_ECA_SECRET"
    if auth_type == "refresh_token":  # what `forcebeam authorize` stores, issued by the ECA
        issued = org.admin("POST", "refresh-tokens", json={
            "username": org.info["username"], "consumer_key": eca["consumer_key"]}).json()
        (tmp_path / "refresh-token").write_text(issued["refresh_token"])
    return auth


# ----- External Client Apps -------------------------------------------------------------------
@pytest.mark.parametrize("auth_type", ["jwt_bearer", "client_credentials", "refresh_token"])
def test_external_client_app_logs_in_with_the_recommended_flows(org, monkeypatch, tmp_path,
                                                                auth_type):
    client = get_client(connection_for(org, eca_auth(org, auth_type, monkeypatch, tmp_path)))
    assert client.sf.query("SELECT Id FROM Account LIMIT 3")["totalSize"] == 3


def test_external_client_app_refuses_the_username_password_flow_as_salesforce_does(
        org, monkeypatch, tmp_path):
    eca = org.info["external_client_app"]
    raw = org.session().post(f"{org.info['login_url']}/services/oauth2/token", timeout=30, data={
        "grant_type": "password", "client_id": eca["consumer_key"],
        "client_secret": eca["consumer_secret"], "username": org.info["username"],
        "password": org.info["password"] + org.info["security_token"]})
    # Correct credentials, and still Salesforce's answer to a wrong password.
    assert (raw.status_code, raw.json()) == (400, {"error": "invalid_grant",
                                                   "error_description": "authentication failure"})

    connection = connection_for(org, eca_auth(org, "password", monkeypatch, tmp_path))
    with pytest.raises(AuthError) as caught:
        get_client(connection)
    assert caught.value.code == "invalid_grant: authentication failure"
    assert "External Client App" in caught.value.fix
    assert "jwt_bearer or client_credentials" in caught.value.fix


@pytest.mark.parametrize("wrong", ["consumer_key", "consumer_secret"])
def test_wrong_app_credentials_say_where_the_external_client_app_shows_them(
        org, monkeypatch, tmp_path, wrong):
    """The fix names the ECA screen first (Settings > Consumer Key and Secret): new apps are
    ECAs; the legacy connected-app screen comes second."""
    auth = eca_auth(org, "client_credentials", monkeypatch, tmp_path)
    if wrong == "consumer_key":
        auth["consumer_key"] = "3MVG9NotAnAppOfThisOrg"
    else:
        monkeypatch.setenv("FB_ECA_SECRET", "not-the-secret")
    with pytest.raises(AuthError) as caught:
        get_client(connection_for(org, auth))
    fix = caught.value.fix
    assert "External Client App" in fix and "Consumer Key and Secret" in fix
    assert fix.index("External Client App") < fix.index("connected app")


# ----- uninstalled connected apps (Sep 2025) --------------------------------------------------
def test_uninstalled_app_is_blocked_without_the_permission_and_the_fix_names_it(
        org, monkeypatch, tmp_path, restore):
    key = org.info["connected_app"]["consumer_key"]
    user = org.info["username"]
    org.admin("PATCH", f"apps/{key}", json={"installed": False})
    restore.append(("PATCH", f"apps/{key}", {"installed": True}))
    org.admin("PATCH", f"users/{user}", json={"approve_uninstalled_apps": False})
    restore.append(("PATCH", f"users/{user}", {"approve_uninstalled_apps": True}))
    connection = connection_for(org, auth_section(org, "jwt_bearer", monkeypatch, tmp_path))

    with pytest.raises(AuthError) as caught:
        get_client(connection)

    assert caught.value.code == "invalid_client: app must be installed into org"
    assert "Approve Uninstalled Connected Apps" in caught.value.fix
    assert "Use Any API Client" in caught.value.fix and "Install" in caught.value.fix


def test_uninstalled_app_under_api_access_control_needs_use_any_api_client(
        org, monkeypatch, tmp_path, restore):
    from forcebeam.auth import factory

    key = org.info["connected_app"]["consumer_key"]
    user = org.info["username"]
    org.admin("PATCH", f"apps/{key}", json={"installed": False})
    restore.append(("PATCH", f"apps/{key}", {"installed": True}))
    org.admin("PATCH", "org", json={"api_access_control": True})
    restore.append(("PATCH", "org", {"api_access_control": False}))
    connection = connection_for(org, auth_section(org, "client_credentials", monkeypatch,
                                                  tmp_path))
    with pytest.raises(AuthError) as caught:  # "Approve Uninstalled ..." is not enough now
        get_client(connection)
    assert "app must be installed into org" in caught.value.code

    org.admin("PATCH", f"users/{user}", json={"use_any_api_client": True})
    restore.append(("PATCH", f"users/{user}", {"use_any_api_client": False}))
    factory.reset()  # the remembered failure is for the old settings
    assert get_client(connection).sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1


def test_app_not_approved_for_the_user_names_the_external_client_app_policy(org, monkeypatch,
                                                                            tmp_path):
    auth = auth_section(org, "jwt_bearer", monkeypatch, tmp_path)
    auth["consumer_key"] = org.info["self_authorize_app"]["consumer_key"]
    with pytest.raises(AuthError) as caught:
        get_client(connection_for(org, auth))
    assert caught.value.code == "invalid_grant: user hasn't approved this consumer"
    assert "External Client App Manager" in caught.value.fix
    assert "Admin approved users are pre-authorized" in caught.value.fix


# ----- SOAP login() without "Use Any API Auth" ------------------------------------------------
def test_soap_login_without_use_any_api_auth_is_insufficient_access(org, monkeypatch, tmp_path,
                                                                    restore):
    user = org.info["username"]
    org.admin("PATCH", f"users/{user}", json={"use_any_api_auth": False})
    restore.append(("PATCH", f"users/{user}", {"use_any_api_auth": True}))
    with pytest.raises(AuthError) as caught:
        get_client(connection_for(org, auth_section(org, "basic", monkeypatch, tmp_path)))
    assert caught.value.code == "INSUFFICIENT_ACCESS"
    assert "'Use Any API Auth'" in caught.value.fix
    assert "jwt_bearer or client_credentials" in caught.value.fix


# ----- retired API versions -------------------------------------------------------------------
def test_retired_api_version_is_a_config_error_for_rest_bulk_and_check(org, monkeypatch,
                                                                       tmp_path, restore):
    # 31.0-40.0 retire in Summer '28; the org is moved there.
    org.admin("PATCH", "org", json={"oldest_api_version": 41})
    restore.append(("PATCH", "org", {"oldest_api_version": 31}))
    connection = connection_for(org, auth_section(org, "jwt_bearer", monkeypatch, tmp_path),
                                api_version="40.0")
    client = get_client(connection)  # the login itself is not versioned
    listed = org.session().get(f"{org.info['instance_url']}/services/data/", timeout=30).json()
    assert listed[0]["version"] == "41.0"  # what a client could pick instead

    with pytest.raises(ApiVersionRetired) as rest:
        client.sf.query("SELECT Id FROM Account LIMIT 1")
    assert (rest.value.status, rest.value.error_code) == (410, "GONE")
    with pytest.raises(ApiVersionRetired) as bulk:
        client.request("POST", "jobs/query", json={"operation": "query",
                                                   "query": "SELECT Id FROM Account"})
    assert (bulk.value.status, bulk.value.error_code) == (400, "InvalidVersion")
    for error in (rest.value, bulk.value):
        assert "API version 40.0 is retired" in str(error)
        assert "set the connection's api_version" in str(error)

    out = io.StringIO()
    assert check_connection(connection, out) == 1
    assert "api_version" in out.getvalue() and "retired" in out.getvalue()
