"""The emulator's token exchange pieces on the wire: the Google-like metadata listener, the
token exchange grant and its handler's admin API, and google-auth treating the listener as a
GCE metadata server (in a child process: google-auth reads its variables at import)."""

from __future__ import annotations

import os
import subprocess
import sys

import jwt
import requests

from forcebeam.emulator.state.token_exchange import GOOGLE_ISSUER

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"


def metadata_url(org, path: str) -> str:
    return f"http://{org.info['token_exchange']['metadata_host']}{path}"


def id_token(org, audience: str) -> str:
    response = requests.get(metadata_url(
        org, "/computeMetadata/v1/instance/service-accounts/default/identity"),
        params={"audience": audience, "format": "full"}, headers={"Metadata-Flavor": "Google"},
        timeout=30)
    assert response.status_code == 200 and response.headers["Metadata-Flavor"] == "Google"
    return response.text


def exchange(org, subject_token: str, **extra: str) -> requests.Response:
    return org.session().post(f"{org.info['login_url']}/services/oauth2/token", timeout=30,
                              data={"grant_type": TOKEN_EXCHANGE, "subject_token": subject_token,
                                    "subject_token_type": ID_TOKEN_TYPE,
                                    "client_id": org.info["token_exchange"]["consumer_key"],
                                    **extra})


def test_metadata_listener_answers_like_google_and_refuses_without_the_header(org):
    ping = requests.get(metadata_url(org, "/"), timeout=30)
    assert ping.status_code == 200 and ping.headers["Metadata-Flavor"] == "Google"
    path = "/computeMetadata/v1/instance/service-accounts/default/identity?audience=x"
    assert requests.get(metadata_url(org, path), timeout=30).status_code == 403
    account = requests.get(metadata_url(
        org, "/computeMetadata/v1/instance/service-accounts/default/"),
        params={"recursive": "true"}, headers={"Metadata-Flavor": "Google"}, timeout=30).json()
    assert account["email"] == org.info["token_exchange"]["service_account"]


def test_id_token_is_google_shaped_and_signed_by_a_key_the_handler_trusts(org):
    audience = org.info["token_exchange"]["audience"]
    token = id_token(org, audience)
    handler = org.admin("GET", "token-exchange-handler").json()
    (public_pem,) = handler["trusted_issuers"][GOOGLE_ISSUER]
    claims = jwt.decode(token, public_pem, algorithms=["RS256"], audience=audience)
    assert claims["iss"] == GOOGLE_ISSUER
    assert claims["email"] == org.info["token_exchange"]["service_account"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["google"]["compute_engine"]["project_id"]
    assert handler["subject_mapping"] == {claims["email"]: org.info["username"]}
    assert handler["audiences"] == [audience]


def test_exchange_answers_a_salesforce_token_for_the_mapped_user(org):
    response = exchange(org, id_token(org, org.info["token_exchange"]["audience"]))
    body = response.json()
    assert response.status_code == 200, body
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["token_type"] == "Bearer" and body["instance_url"] == org.info["instance_url"]
    assert body["id"].endswith(f"/{org.info['org_id']}/{org.info['user_id']}")


def test_exchange_refusals(org):
    good = id_token(org, org.info["token_exchange"]["audience"])
    assert exchange(org, "not-a-jwt").json() == {
        "error": "invalid_request", "error_description": "invalid subject token: not a signed JWT"}
    wrong_type = exchange(org, good, subject_token_type="urn:ietf:params:oauth:token-type:saml2")
    assert "does not support subject_token_type" in wrong_type.json()["error_description"]
    legacy_app = exchange(org, good, client_id=org.info["connected_app"]["consumer_key"])
    assert legacy_app.json() == {"error": "unsupported_grant_type",
                                 "error_description": "grant type not supported"}
    missing = org.session().post(f"{org.info['login_url']}/services/oauth2/token", timeout=30,
                                 data={"grant_type": TOKEN_EXCHANGE,
                                       "client_id": org.info["token_exchange"]["consumer_key"]})
    assert missing.json()["error"] == "invalid_request"


def test_handler_admin_api_refuses_malformed_settings(org):
    session = org.session()
    url = f"{org.info['admin_url']}/token-exchange-handler"
    bad_key = session.patch(url, json={"trusted_issuers": {GOOGLE_ISSUER: ["not a key"]}},
                            timeout=30)
    assert bad_key.status_code == 400 and "PEM public key" in bad_key.json()["error"]
    unknown = session.patch(url, json={"trusted": {}}, timeout=30)
    assert unknown.status_code == 400 and "unknown handler setting" in unknown.json()["error"]


def test_google_auth_sees_a_gce_metadata_server_in_a_worker_environment(org):
    host = org.info["token_exchange"]["metadata_host"]
    env = {k: v for k, v in os.environ.items() if k != "NO_GCE_CHECK"}
    env.update({"GCE_METADATA_HOST": host, "GCE_METADATA_IP": host})
    script = (
        "import google.auth, google.auth.transport.requests as r\n"
        "from google.auth.compute_engine import _metadata\n"
        "from google.oauth2 import id_token\n"
        "request = r.Request()\n"
        "credentials, _ = google.auth.default()\n"
        "credentials.refresh(request)\n"
        "token = id_token.fetch_id_token(request, 'https://aud.example.com')\n"
        "print(_metadata.is_on_gce(request), type(credentials).__module__,\n"
        "      id_token.verify_token is not None and token.count('.') == 2)\n")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "google.auth.compute_engine.credentials", "True"]
