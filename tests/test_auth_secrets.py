"""Secret references (env, file, PEM normalisation) resolved the way workers resolve them.

Secret Manager itself is exercised against the emulator's endpoint in test_auth_flows.py.
"""

from __future__ import annotations

import io
import pickle
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from forcebeam.auth import SecretError, secrets
from forcebeam.auth.secrets.pem import load_certificates, load_private_key, normalize_private_key


@pytest.fixture(autouse=True)
def fresh_cache():
    secrets.clear_cache()
    yield
    secrets.clear_cache()


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_env_reference(monkeypatch):
    monkeypatch.setenv("FB_TEST_SECRET", "s3cr3t-value")
    assert secrets.resolve("env://FB_TEST_SECRET").text() == "s3cr3t-value"


def test_missing_env_names_the_variable_not_a_value(monkeypatch):
    monkeypatch.delenv("FB_TEST_MISSING", raising=False)
    with pytest.raises(SecretError) as caught:
        secrets.resolve("env://FB_TEST_MISSING")
    assert "FB_TEST_MISSING is not set" in str(caught.value)
    assert caught.value.reference == "env://FB_TEST_MISSING"


def test_file_references_absolute_and_relative(tmp_path, monkeypatch):
    (tmp_path / "token.txt").write_text("abc\n")
    assert secrets.resolve(f"file://{tmp_path}/token.txt").text() == "abc"
    monkeypatch.chdir(tmp_path)
    assert secrets.resolve("file:token.txt").text() == "abc"
    with pytest.raises(SecretError, match="does not exist"):
        secrets.resolve("file:nope.txt")


def test_values_are_cached_per_process(monkeypatch):
    monkeypatch.setenv("FB_TEST_CACHED", "first")
    assert secrets.resolve("env://FB_TEST_CACHED").text() == "first"
    monkeypatch.setenv("FB_TEST_CACHED", "second")
    assert secrets.resolve("env://FB_TEST_CACHED").text() == "first"


def test_file_write_back_is_private_and_replaces_atomically(tmp_path):
    path = tmp_path / "refresh-token"
    path.write_text("old")
    assert secrets.write_back(f"file://{path}", b"new-token") is True
    assert path.read_text() == "new-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secrets.resolve(f"file://{path}").text() == "new-token"
    assert list(tmp_path.iterdir()) == [path]


def test_env_cannot_be_written(monkeypatch):
    monkeypatch.setenv("FB_TEST_RO", "x")
    assert secrets.write_back("env://FB_TEST_RO", b"y") is False


def test_unknown_scheme_lists_known_ones():
    with pytest.raises(SecretError, match="gcp-sm"):
        secrets.resolve("vault://x")


def test_secret_value_never_prints_or_pickles(monkeypatch):
    monkeypatch.setenv("FB_TEST_SECRET", "hunter2")
    value = secrets.resolve("env://FB_TEST_SECRET")
    assert "hunter2" not in repr(value) and "hunter2" not in str(value)
    assert "hunter2" not in repr({"v": value})
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(value)


def _variants(key):
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    pkcs1 = key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption())
    body = b"".join(pkcs8.strip().splitlines()[1:-1])
    return {
        "pkcs8": pkcs8,
        "pkcs1": pkcs1,
        "escaped newlines": pkcs8.replace(b"\n", b"\\n"),
        "quoted, escaped": b'"' + pkcs1.replace(b"\n", b"\\n") + b'"',
        "one line with spaces": pkcs8.replace(b"\n", b" "),
        "no headers": body,
        "crlf": pkcs8.replace(b"\n", b"\r\n"),
    }


@pytest.mark.parametrize("variant", ["pkcs8", "pkcs1", "escaped newlines", "quoted, escaped",
                                     "one line with spaces", "no headers", "crlf"])
def test_mangled_private_keys_are_normalised(key, variant):
    raw = _variants(key)[variant]
    loaded = load_private_key(raw)
    assert loaded.private_numbers() == key.private_numbers()
    assert normalize_private_key(raw).startswith(b"-----BEGIN PRIVATE KEY-----\n")


def test_garbage_key_error_holds_no_key_bytes():
    with pytest.raises(ValueError) as caught:
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nQUJDREVGR0g=\n-----END PRIVATE KEY-----")
    assert "QUJDREVGR0g" not in str(caught.value)
    assert "PRIVATE KEY" in str(caught.value)


def test_certificate_chain_with_escaped_newlines(tmp_path):
    from forcebeam.auth.commands import keygen

    keygen(tmp_path, out=io.StringIO())
    pem = (tmp_path / "server.crt").read_bytes()
    chain = load_certificates((pem + pem).replace(b"\n", b"\\n"))
    assert len(chain) == 2


def test_secret_manager_payload_failing_crc32c_is_refused(monkeypatch):
    """A Secret Manager endpoint whose payload does not match its CRC32C (a corrupted hop)."""
    import base64
    import http.server
    import json
    import threading

    import google_crc32c

    class CorruptingSecretManager(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            data = b"-----BEGIN PRIVATE KEY-----"
            body = json.dumps({"name": "projects/p/secrets/s/versions/1", "payload": {
                "data": base64.b64encode(data + b"!").decode(),  # flipped in transit
                "dataCrc32c": str(google_crc32c.value(data))}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CorruptingSecretManager)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("SECRET_MANAGER_EMULATOR_HOST", f"127.0.0.1:{server.server_port}")
        with pytest.raises(SecretError, match="CRC32C"):
            secrets.resolve("gcp-sm://projects/p/secrets/s/versions/latest")
    finally:
        server.shutdown()
        server.server_close()


def test_same_secret_name_on_two_endpoints_is_two_secrets(org, org_factory, monkeypatch):
    """Two emulated orgs in one process each serve their own key under the same name.

    The per-process cache must not hand one endpoint's value to the other: a user switching
    SECRET_MANAGER_EMULATOR_HOST (or a test using two orgs) gets each endpoint's own secret.
    """
    other = org_factory(records=200)
    reference = org.info["connected_app"]["private_key_secret"]
    assert reference == other.info["connected_app"]["private_key_secret"]
    keys = {}
    for running in (org, other):
        monkeypatch.setenv("SECRET_MANAGER_EMULATOR_HOST", running.info["secret_manager_host"])
        keys[running.info["secret_manager_host"]] = secrets.resolve(reference).reveal()
        with open(running.info["connected_app"]["private_key"], "rb") as handle:
            on_disk = load_private_key(handle.read()).private_numbers()
        assert load_private_key(keys[running.info["secret_manager_host"]]).private_numbers() \
            == on_disk
    assert len(set(keys.values())) == 2
