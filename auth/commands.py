"""What the CLI's ``check``, ``keygen`` and ``authorize`` do (pipelines/cli.py parses args).

Each function prints for a person and returns a process exit code; failures print the
actionable error (never a secret) and return 1.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import http.server
import os
import secrets as random_secrets
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from forcebeam.auth import secrets
from forcebeam.auth.connection import Connection
from forcebeam.auth.errors import ApiVersionRetired, ForcebeamError
from forcebeam.auth.exit_codes import EXIT_OK, exit_code_for
from forcebeam.auth.factory import get_client
from forcebeam.auth.oauth import AUTHORIZE_PATH, request_token
from forcebeam.auth.transport import ClientCertFiles, build_session, make_retry

DEFAULT_CALLBACK_URL = "http://localhost:1717/OauthRedirect"  # the Salesforce CLI's convention
AUTHORIZE_TIMEOUT_SECONDS = 300


# ------------------------------------------------------------------------------------ check

def check_connection(connection: Connection, out: TextIO) -> int:
    """Log in and print org id, user, instance and API usage; on failure the fix, and the
    exit code of the error's class (2 for the connection's own mistake, else 1).

    A flow Salesforce is retiring is named first, with its date and replacement."""
    from forcebeam.auth.credentials import sunset_warning_shown
    from forcebeam.auth.sunset import warning_for

    sunset = warning_for(connection.auth.type)
    if sunset:
        out.write(f"warning: {sunset}\n")
        sunset_warning_shown(connection.auth.type)
    try:
        client = get_client(connection)
        info = client.request("GET", "/services/oauth2/userinfo").json()
        usage = _api_usage(client)
    except ForcebeamError as error:
        out.write(f"connection check failed: {error}\n")
        return exit_code_for(error)
    out.write(f"ok: logged in with {connection.auth.type}"
              f"{' + mutual TLS' if connection.mutual_tls else ''}\n")
    out.write(f"  org id:      {info.get('organization_id', '?')}\n")
    out.write(f"  user:        {info.get('preferred_username', '?')} "
              f"({info.get('user_id', '?')})\n")
    out.write(f"  instance:    {client.instance_url}\n")
    out.write(f"  api version: {client.api_version}\n")
    if usage:
        used, daily_max = usage
        out.write(f"  API usage:   {used} of {daily_max} daily requests "
                  f"({100 * used / max(daily_max, 1):.1f}%)\n")
    return EXIT_OK


def _api_usage(client: Any) -> tuple[int, int] | None:
    """(used, max) from /limits, else from the Sforce-Limit-Info header already seen."""
    try:
        limits = client.request("GET", "limits").json()
        daily = limits.get("DailyApiRequests") or {}
        if "Max" in daily and "Remaining" in daily:
            return int(daily["Max"]) - int(daily["Remaining"]), int(daily["Max"])
    except ApiVersionRetired:
        raise  # the connection's api_version cannot work: that is the check's answer
    except ForcebeamError:
        pass
    return client.stats.api_usage


# ------------------------------------------------------------------------------------ keygen

def keygen(out_dir: Path, *, store: str | None = None, common_name: str = "forcebeam",
           days: int = 730, out: TextIO) -> int:
    """RSA 2048 key + self-signed X.509 certificate, as Salesforce's openssl steps make them.

    Writes ``server.key`` (0600) and ``server.crt`` in ``out_dir``; with ``store`` the key is
    also added as a new version of that secret (e.g. gcp-sm://…/secrets/sf-jwt-key).
    """
    out_dir = Path(out_dir)
    key_path, cert_path = out_dir / "server.key", out_dir / "server.crt"
    for path in (key_path, cert_path):
        if path.exists():
            out.write(f"keygen: {path} already exists; move it away or choose another --out\n")
            return 1
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                   .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handle = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "wb") as file:
            file.write(key_pem)
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    except OSError as error:
        out.write(f"keygen: cannot write to {out_dir}: {error.strerror}\n")
        return 1
    if store:
        problem = ""
        try:
            if not secrets.write_back(store, key_pem):
                problem = f"{store} cannot be written to; use a gcp-sm:// or file: reference"
        except ForcebeamError as error:
            problem = f"storing the key failed: {error}"
        if problem:
            # A key that went nowhere must not linger on disk: the next try makes a new one.
            for path in (key_path, cert_path):
                path.unlink(missing_ok=True)
            out.write(f"keygen: {problem}\nno key was kept; fix the above and run keygen "
                      "--store again (it adds the key as a new version itself)\n")
            return 1
    out.write(f"private key:  {key_path} (keep it secret)\ncertificate:  {cert_path} "
              f"(CN={common_name}, valid {days} days)\n")
    if store:
        out.write(f"stored the key as a new version of {store}\n")
    reference = store or f"file://{key_path.resolve()}"
    out.write("next: in Salesforce Setup > External Client App Manager > your app > Settings "
              "> Flow Enablement > 'Enable JWT Bearer Flow' (legacy connected app: Edit > 'Use "
              f"digital signatures'), upload {cert_path}; then use\n"
              f"  auth: {{type: jwt_bearer, username: …, consumer_key: …, "
              f"private_key: {reference}}}\n")
    return 0


# ------------------------------------------------------------------------------------ authorize

def authorize(connection: Connection, *, store_refresh_token: str | None = None, port: int = 0,
              open_browser: bool = True, out: TextIO,
              on_url: Callable[[str], None] | None = None,
              callback_url: str = DEFAULT_CALLBACK_URL) -> int:
    """One-time approval by a person: OAuth web server flow + PKCE + a localhost callback.

    Approving the connected app is what JWT bearer needs for self-authorized apps, and the
    refresh token it yields is what the refresh_token flow needs. The refresh token is stored
    at ``store_refresh_token`` or, for a refresh_token connection, at its own reference.
    ``port`` 0 uses the callback URL's port (1717, registered in the connected app).
    """
    consumer_key = getattr(connection.auth, "consumer_key", None)
    if not consumer_key:
        out.write(f"authorize: auth type {connection.auth.type!r} has no connected app "
                  "(consumer_key); authorize applies to jwt_bearer, refresh_token, "
                  "password and client_credentials connections\n")
        return 1
    target = store_refresh_token or (connection.auth.refresh_token  # type: ignore[attr-defined]
                                     if connection.auth.type == "refresh_token" else None)
    callback = urlsplit(callback_url)
    listen_port = port or callback.port or 80
    redirect_uri = f"{callback.scheme}://{callback.hostname}:{listen_port}{callback.path}"
    verifier = base64.urlsafe_b64encode(random_secrets.token_bytes(64)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    state = random_secrets.token_urlsafe(24)
    params = {"response_type": "code", "client_id": consumer_key, "redirect_uri": redirect_uri,
              "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
              "scope": "api refresh_token offline_access"}
    username = getattr(connection.auth, "username", None)
    if username:
        params["login_hint"] = username
    url = f"{connection.login_url}{AUTHORIZE_PATH}?{urlencode(params)}"

    try:
        receiver = _CallbackReceiver(listen_port, callback.path or "/", state)
    except OSError as error:
        out.write(f"authorize: cannot listen on localhost:{listen_port} ({error.strerror}); "
                  "free the port or pass another one registered as a callback URL\n")
        return 1
    try:
        out.write(f"open this URL, log in and allow access:\n  {url}\n")
        out.flush()
        if on_url is not None:
            on_url(url)
        if open_browser:
            webbrowser.open(url)
        result = receiver.wait(AUTHORIZE_TIMEOUT_SECONDS)
    finally:
        receiver.close()
    if result is None:
        out.write(f"authorize: no answer on {redirect_uri} within "
                  f"{AUTHORIZE_TIMEOUT_SECONDS} s\n")
        return 1
    if "error" in result:
        out.write(f"authorize: Salesforce answered {result['error']}: "
                  f"{result.get('error_description', '')}\n")
        return 1
    return _exchange_code(connection, consumer_key, result["code"], redirect_uri, verifier,
                          target, out)


def _exchange_code(connection: Connection, consumer_key: str, code: str, redirect_uri: str,
                   verifier: str, target: str | None, out: TextIO) -> int:
    form = {"grant_type": "authorization_code", "code": code, "client_id": consumer_key,
            "redirect_uri": redirect_uri, "code_verifier": verifier}
    consumer_secret = getattr(connection.auth, "consumer_secret", None)
    cert_files = ClientCertFiles(connection.mutual_tls) if connection.mutual_tls else None
    http = build_session(ca_bundle=connection.ca_bundle,
                         client_cert=cert_files.pair if cert_files else None, retry=make_retry())
    try:
        if consumer_secret:
            form["client_secret"] = secrets.resolve(consumer_secret).text()
        response = request_token(http.request, connection.login_endpoint(), form,
                                 grant="authorization code")
        if target and response.refresh_token is not None:
            if not secrets.write_back(target, response.refresh_token.reveal()):
                out.write(f"authorize: {target} cannot be written; use gcp-sm:// or file:\n")
                return 1
            out.write(f"stored the refresh token in {target}\n")
        elif target:
            out.write("authorize: Salesforce returned no refresh token; add the "
                      "'refresh_token, offline_access' scope to the connected app\n")
            return 1
    except ForcebeamError as error:
        out.write(f"authorize failed: {error}\n")
        return 1
    finally:
        http.close()
        if cert_files is not None:
            cert_files.close()
    out.write(f"ok: access approved for {consumer_key[:12]}… on {response.instance_url}\n")
    return 0


class _CallbackReceiver:
    """A one-shot localhost HTTP server that catches the OAuth redirect."""

    def __init__(self, port: int, path: str, state: str) -> None:
        self.result: dict[str, str] | None = None
        self._done = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path != path or query.get("state") != state:
                    self._answer(400, "Unexpected request: wrong path or state.")
                    return
                receiver.result = query
                receiver._done.set()
                if "error" in query:
                    self._answer(400, "Access was not granted: "
                                 + html.escape(query.get("error_description", query["error"])))
                else:
                    self._answer(200, "forcebeam is authorized. You can close this window.")

            def _answer(self, status: int, text: str) -> None:
                body = f"<!DOCTYPE html><html><body><p>{text}</p></body></html>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # the query string holds the authorization code: never log it

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="forcebeam-authorize-callback")
        self._thread.start()

    def wait(self, timeout: float) -> dict[str, str] | None:
        self._done.wait(timeout)
        return self.result

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
