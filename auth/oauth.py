"""The OAuth 2.0 token endpoint: one request helper and one error translator for every grant.

Salesforce answers failures with HTTP 400 ``{"error", "error_description"}``. Those are
permanent (a person must change something), so they become one :class:`AuthError` whose text
says what to do in Salesforce. Network errors and 5xx (after the transport's retries) are
transient and become :class:`TransientAuthError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests

from forcebeam.auth.errors import AuthError, ErrorKind, TransientAuthError
from forcebeam.auth.responses import kind_of_answer
from forcebeam.auth.secrets import SecretValue
from forcebeam.auth.transport import TLS_FIX

log = logging.getLogger(__name__)

TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a URL path
AUTHORIZE_PATH = "/services/oauth2/authorize"

APPROVE_FIX = ("pre-authorize the user: for an External Client App, in Setup > External Client "
               "App Manager > the app > Edit Policies > OAuth Policies set 'Permitted Users' to "
               "'Admin approved users are pre-authorized' and select the user's profile or "
               "permission set (for a legacy connected app: App Manager > the app > Manage > "
               "Edit Policies, same setting); or have the user approve it once with "
               "`forcebeam authorize FILE CONNECTION`")
UNINSTALLED_APP_FIX = (
    "the app is not installed in this org, and since September 2025 Salesforce blocks "
    "uninstalled connected apps: install it (Setup > Connected Apps OAuth Usage > Install) "
    "and pre-authorize the user, or give the user the 'Approve Uninstalled Connected Apps' "
    "permission ('Use Any API Client' when API Access Control is on)")
TOKEN_EXCHANGE_FIX = "".join((  # noqa: S105 - help text
    "the org's token exchange handler refused the subject token: make the handler trust its ",
    "issuer (https://accounts.google.com for Google ID tokens), set auth.audience to the ",
    "audience the handler accepts, and map the subject (the service account's email) to an ",
    "active user; see the README's token exchange section"))

# (error, words in error_description) -> what to do. First match wins.
#: Where an app shows its consumer key and secret: the External Client App first (new
#: apps are ECAs), then the legacy connected-app screen.
APP_CREDENTIALS_SCREEN = ("External Client App Manager > the app > Settings > OAuth "
                          "Settings > Consumer Key and Secret; a legacy connected app: "
                          "Manage Consumer Details")
_FIXES: list[tuple[str, str, str]] = [
    ("invalid_grant", "hasn't approved", APPROVE_FIX),
    ("invalid_grant", "expired access/refresh token",
     "the refresh token was revoked, expired or already rotated: run `forcebeam authorize FILE "
     "CONNECTION` to get a new one (and check the app's refresh token policy)"),
    ("invalid_grant", "expired authorization code",
     "the JWT assertion or code had expired: check this machine's clock (NTP) and retry"),
    ("invalid_grant", "audience",
     "set auth.audience to https://login.salesforce.com (production), https://test.salesforce"
     ".com (sandbox) or your My Domain URL"),
    ("invalid_grant", "not supported on this domain",
     "client credentials only work on your My Domain: set login_url to "
     "https://YOURDOMAIN.my.salesforce.com"),
    ("invalid_grant", "invalid client credentials",
     "the consumer secret is wrong: copy it again from the connected app (Manage Consumer "
     "Details) into the secret the connection references"),
    ("invalid_grant", "no client credentials user",
     "enable the Client Credentials Flow on the connected app and set its Run As user"),
    ("invalid_grant", "blocked",
     "the username-password flow is blocked in this org (Setup > OAuth and OpenID Connect "
     "Settings 'Allow OAuth Username-Password Flows'); better, switch to jwt_bearer or "
     "client_credentials"),
    ("invalid_grant", "not allowed",
     "this flow is not allowed for the org or app: enable it in the connected app's OAuth "
     "policies, or switch to jwt_bearer or client_credentials"),
    ("invalid_grant", "mutual authentication",
     "this user must use mutual TLS: add mutual_tls (certificate + private_key) to the "
     "connection with a certificate uploaded in Setup > Certificate and Key Management > "
     "Mutual Authentication Certificates (calls then go to port 8443)"),
    ("invalid_grant", "invalid assertion",
     "the JWT did not verify: upload the certificate that matches auth.private_key to the "
     "connected app ('Use digital signatures'; `forcebeam keygen` makes a matching pair) and "
     "check auth.consumer_key"),
    ("invalid_grant", "authentication failure",
     "check the username, password and security token (reset it in the user's Settings > "
     "Reset My Security Token), that the user is active, and, for JWT, that the certificate "
     "uploaded to the connected app matches the private key"),
    ("invalid_grant", "user is locked", "unlock the user in Setup > Users"),
    ("invalid_grant", "ip restricted", "allow this machine's IP in the user's profile or the "
                                       "app's IP relaxation policy"),
    ("invalid_client", "installed", UNINSTALLED_APP_FIX),
    ("invalid_request", "subject token", TOKEN_EXCHANGE_FIX),
    ("invalid_request", "token exchange handler",
     "enable the token exchange handler (Setup > Token Exchange Handlers: Enabled, and "
     "enabled for the External Client App) or fix auth.token_handler"),
    ("invalid_client_id", "", "the consumer key is unknown: copy it from the External Client "
                              f"App ({APP_CREDENTIALS_SCREEN}); new apps take up to 10 minutes "
                              "to work"),
    ("invalid_client", "", "the consumer secret is wrong: copy it again from the External "
                           f"Client App ({APP_CREDENTIALS_SCREEN})"),
    ("unsupported_grant_type", "", "enable this OAuth flow in the app's OAuth settings "
                                   "(External Client App: Flow Enablement, e.g. 'Enable "
                                   "Token Exchange Flow'; connected app: Edit > API)"),
    ("inactive_user", "", "activate the user in Setup > Users"),
    ("inactive_org", "", "the org is inactive or locked: contact its administrator"),
    ("invalid_request", "code verifier", "restart `forcebeam authorize`; the PKCE verifier did "
                                         "not match"),
    ("redirect_uri_mismatch", "", "add the callback URL printed by `forcebeam authorize` to "
                                  "the connected app's Callback URL list"),
]


def fix_for(error: str, description: str) -> str:
    lowered = description.lower()
    for code, words, fix in _FIXES:
        if error == code and words in lowered:
            return fix
    return "check the External Client App (or connected app) and user settings in Salesforce Setup"


@dataclass(frozen=True)
class TokenResponse:
    """What a successful token call gave us; the token itself stays wrapped."""

    access_token: SecretValue
    instance_url: str
    identity_url: str = ""
    issued_at: str = ""
    scope: str = ""
    refresh_token: SecretValue | None = field(default=None)
    expiry: float | None = None   # epoch seconds, when the answer says; None: until rejected

    def __repr__(self) -> str:
        return f"TokenResponse(instance_url={self.instance_url!r}, scope={self.scope!r})"


UNREACHABLE_CHECKS = ("Check: the connection's login_url names the right host and port; this "
                      "machine's network, VPN or proxy (HTTPS_PROXY) lets it through; the org "
                      "is up (https://status.salesforce.com)")


def token_expiry(body: dict[str, Any], access_token: str) -> float | None:
    """When the token ends, if the answer says: ``expires_in`` seconds after ``issued_at``
    (ms; token exchange answers carry it), or a JWT-format token's ``exp`` claim. Opaque
    Salesforce tokens say nothing (the org's session timeout is not in the answer): None."""
    expires_in = body.get("expires_in")
    if isinstance(expires_in, (int, float, str)) and str(expires_in).isdigit():
        issued = str(body.get("issued_at", ""))
        start = int(issued) / 1000 if issued.isdigit() else time.time()
        return start + int(expires_in)
    if body.get("token_format") == "jwt":
        try:
            claims = jwt.decode(access_token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, (int, float)) else None
    return None


def post_to_login_endpoint(request: Callable[..., requests.Response], url: str, purpose: str,
                           **kwargs: Any) -> requests.Response:
    """POST to a login endpoint (OAuth token or SOAP login), classifying what can go wrong.

    A certificate that does not verify is permanent (an AuthError saying how to trust the
    org's CA); an unreachable endpoint is transient. Neither message carries the body sent.
    """
    try:
        return request("POST", url, **kwargs)
    except requests.exceptions.SSLError:
        raise AuthError(f"TLS verification failed for {url}", code="tls_verification_failed",
                        fix=TLS_FIX) from None
    except requests.RequestException as error:
        raise TransientAuthError(f"could not reach {url} for {purpose}: "
                                 f"{type(error).__name__}. {UNREACHABLE_CHECKS}") from None


def request_token(request: Callable[..., requests.Response], login_endpoint: str,
                  form: dict[str, str], *,
                  grant: str, basic_auth: tuple[str, str] | None = None,
                  timeout: float = 60) -> TokenResponse:
    """POST a grant to ``{login_endpoint}/services/oauth2/token`` and parse the answer."""
    url = login_endpoint.rstrip("/") + TOKEN_PATH
    log.debug("requesting %s token from %s", grant, url)
    response = post_to_login_endpoint(request, url, f"a {grant} login", data=form,
                                      auth=basic_auth, timeout=timeout,
                                      headers={"Accept": "application/json"})
    body = _json(response)
    if response.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
        refresh = body.get("refresh_token")
        return TokenResponse(
            access_token=SecretValue(str(body["access_token"])),
            instance_url=str(body.get("instance_url") or login_endpoint),
            identity_url=str(body.get("id", "")), issued_at=str(body.get("issued_at", "")),
            scope=str(body.get("scope", "")),
            refresh_token=SecretValue(str(refresh)) if refresh else None,
            expiry=token_expiry(body, str(body["access_token"])))
    error = str(body.get("error", "")) if isinstance(body, dict) else ""
    if kind_of_answer(response.status_code, error) is ErrorKind.TRANSIENT:
        raise TransientAuthError(f"{grant} login at {url} failed with HTTP "
                                 f"{response.status_code}; Salesforce may be unavailable")
    description = str(body.get("error_description", "")) if isinstance(body, dict) else ""
    if not error:
        error, description = f"http_{response.status_code}", "unexpected token endpoint answer"
    raise AuthError(f"{grant} login to {login_endpoint} was refused: {description or error}",
                    code=f"{error}: {description}" if description else error,
                    fix=fix_for(error, description))


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
