"""The emulator's machine-readable contract: the info file, key file modes, clean SIGTERM,
loopback-only binding and the server certificate's names."""

from __future__ import annotations

import ssl
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from tests.support.org import EmulatedOrg, start_org

TOP_LEVEL = ("instance_url", "login_url", "mtls_url", "secret_manager_host", "api_version",
             "ca_cert", "username", "password", "security_token", "org_id", "user_id",
             "mtls_username", "mtls_password", "mtls_security_token", "admin_url",
             "connected_app", "self_authorize_app", "client_tls", "records", "pid")
PATHS = (("ca_cert",), ("connected_app", "private_key"), ("connected_app", "certificate"),
         ("client_tls", "certificate"), ("client_tls", "private_key"))
PRIVATE = (("connected_app", "private_key"), ("client_tls", "private_key"))


def lookup(info: dict, keys: tuple[str, ...]):
    value = info
    for key in keys:
        value = value[key]
    return value


def test_info_file_has_every_field_with_absolute_paths(org: EmulatedOrg) -> None:
    info = org.info
    assert not [key for key in TOP_LEVEL if key not in info]
    assert {"consumer_key", "consumer_secret", "private_key", "certificate",
            "private_key_secret"} <= set(info["connected_app"])
    assert {"consumer_key", "consumer_secret", "callback_url"} <= set(info["self_authorize_app"])
    for keys in PATHS:
        path = Path(lookup(info, keys))
        assert path.is_absolute() and path.is_file(), keys
    for keys in PRIVATE:
        mode = stat.S_IMODE(Path(lookup(info, keys)).stat().st_mode)
        assert mode == 0o600, (keys, oct(mode))
    for name in ("instance_url", "login_url", "mtls_url"):
        parts = urlsplit(info[name])
        assert parts.scheme == "https" and parts.hostname == "127.0.0.1" and parts.port
    assert info["instance_url"] != info["mtls_url"]
    assert info["admin_url"] == info["instance_url"] + "/__emulator"
    assert info["secret_manager_host"].startswith("127.0.0.1:")
    assert info["api_version"] == "62.0"
    assert info["connected_app"]["private_key_secret"] == (
        "gcp-sm://projects/forcebeam-emulator/secrets/connected-app-private-key/versions/latest")
    assert info["pid"] == org.process.pid and info["records"] == 5000
    assert info["org_id"].startswith("00D") and len(info["org_id"]) == 18
    assert info["user_id"].startswith("005") and len(info["user_id"]) == 18


def test_server_certificate_names(org: EmulatedOrg) -> None:
    url = urlsplit(org.info["instance_url"])
    host, port = url.hostname, url.port
    pem = ssl.get_server_certificate((host, port))
    names = x509.load_pem_x509_certificate(pem.encode()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    dns = set(names.get_values_for_type(x509.DNSName))
    assert {"localhost", "login.salesforce.com", "test.salesforce.com",
            "*.my.salesforce.com"} <= dns
    assert "127.0.0.1" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}


def test_sigterm_exits_zero_and_restart_keeps_the_ca(tmp_path: Path) -> None:
    first = start_org(tmp_path, records=20)
    ca = Path(first.ca_cert).read_bytes()
    first.stop()
    assert first.process.returncode == 0
    (tmp_path / "info.json").unlink()  # start_org waits for the file to appear
    second = start_org(tmp_path, records=20)
    try:
        assert Path(second.ca_cert).read_bytes() == ca  # users keep trusting the same CA
        assert second.info["instance_url"] != ""
    finally:
        second.stop()
    assert second.process.returncode == 0


def test_refuses_non_loopback_host(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "forcebeam.emulator", "--host", "0.0.0.0", "--data-dir",  # noqa: S104
         str(tmp_path / "d"), "--info-file", str(tmp_path / "info.json")],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 2
    assert "--host must be loopback" in result.stderr
    assert not (tmp_path / "info.json").exists()
