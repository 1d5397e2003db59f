"""OAuth 2.0 endpoints: token (every grant), authorize (login + approve page), revoke, userinfo.

Errors follow Salesforce's pairs exactly (wire reference §1): clients key their handling on
`error`/`error_description`, e.g. simple-salesforce prints an authorize hint on "user hasn't
approved this consumer".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography import x509

from forcebeam.emulator.state import EmulatorState
from forcebeam.emulator.state.identity import ConnectedApp, Session, User, pkce_challenge
from forcebeam.emulator.state.token_exchange import SubjectTokenRejected
from forcebeam.emulator.wire.http import (
    bearer_token,
    listener_url,
    mutual_tls_satisfied,
    sf_json,
    state_of,
)

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ISSUED_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
GENERIC_LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")
MILLISECOND_EPOCH_THRESHOLD = 100_000_000_000  # exp above this is milliseconds (sfdx-core)


class OAuthError(Exception):
    """A token endpoint refusal: HTTP 400 `{"error", "error_description"}`."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


def _oauth_error_response(error: OAuthError) -> web.Response:
    return web.json_response({"error": error.error, "error_description": error.description},
                             status=error.status)


# ----- shared pieces -------------------------------------------------------------------------
def _app_or_fail(state: EmulatorState, consumer_key: str | None) -> ConnectedApp:
    app = state.identity.app(consumer_key or "")
    if app is None:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    return app


def _check_secret(app: ConnectedApp, secret: str | None) -> None:
    if secret is None or not hmac.compare_digest(secret.encode(), app.consumer_secret.encode()):
        raise OAuthError("invalid_client", "invalid client credentials")


def _check_app_installed(request: web.Request, user: User, app: ConnectedApp | None) -> None:
    """Sep 2025: uninstalled connected apps are blocked for users without a bypass
    permission; Salesforce answers `invalid_client` / `app must be installed into org`."""
    state = state_of(request)
    if app is not None and not state.identity.may_use_app(user, app,
                                                           state.org.api_access_control):
        raise OAuthError("invalid_client", "app must be installed into org")


def _check_user_may_log_in(request: web.Request, user: User,
                           app: ConnectedApp | None = None) -> None:
    _check_app_installed(request, user, app)
    if not user.active:
        raise OAuthError("inactive_user", "user is inactive")
    if user.enforce_mutual_tls and not mutual_tls_satisfied(request):
        raise OAuthError("invalid_grant", "mutual authentication failed: this user must log in "
                         "on the org's mutual TLS port with a client certificate the org trusts")


def _signature(app: ConnectedApp | None, identity_url: str, issued_at: str) -> str:
    key = (app.consumer_secret if app else "").encode()
    digest = hmac.new(key, (identity_url + issued_at).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def identity_url(base: str, session: Session) -> str:
    return f"{base}/id/{session.org_id}/{session.user_id}"


def _token_body(request: web.Request, session: Session, app: ConnectedApp | None, *,
                scope: str | None = None, refresh_token: str | None = None,
                token_format: str | None = None) -> dict[str, Any]:
    base = listener_url(request)
    issued_at = str(int(session.issued_at.timestamp() * 1000))
    ident = identity_url(base, session)
    body: dict[str, Any] = {"access_token": session.token}
    if refresh_token:
        body["refresh_token"] = refresh_token
    body["signature"] = _signature(app, ident, issued_at)
    if scope:
        body["scope"] = scope
    if token_format:
        body["token_format"] = token_format
    body.update({"instance_url": base, "id": ident, "token_type": "Bearer",
                 "issued_at": issued_at})
    return body


def _new_session(state: EmulatorState, user: User, app: ConnectedApp | None,
                 grant: str) -> Session:
    return state.identity.new_session(user, app.consumer_key if app else None, grant,
                                      state.org.session_seconds)


def _client_auth(request: web.Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    """client_id/client_secret from an HTTP Basic header or the body (both are accepted)."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "invalid client credentials") from None
        key, _, secret = decoded.partition(":")
        return key, secret
    return form.get("client_id"), form.get("client_secret")


# ----- grants --------------------------------------------------------------------------------
def _accepted_audiences(request: web.Request, state: EmulatorState) -> set[str]:
    audiences = {"https://login.salesforce.com", "https://test.salesforce.com",
                 state.urls.instance_url, state.urls.mtls_url, listener_url(request)}
    host = request.headers.get("Host", "")
    if host and host.split(":")[0].lower() not in GENERIC_LOGIN_HOSTS:
        audiences.add(f"https://{host}")  # the org's My Domain as the client addressed it
    return {a.rstrip("/").lower() for a in audiences}


def _expiry_seconds(claims: dict[str, Any]) -> float:
    raw = claims.get("exp")
    if isinstance(raw, bool) or raw is None:
        raise OAuthError("invalid_grant", "invalid assertion")
    try:
        exp = float(raw)
    except (TypeError, ValueError):
        raise OAuthError("invalid_grant", "invalid assertion") from None
    return exp / 1000 if exp > MILLISECOND_EPOCH_THRESHOLD else exp


def _verified_with_app_certificate(assertion: str, app: ConnectedApp) -> bool:
    for pem in app.certificate_fingerprints.values():
        public_key = x509.load_pem_x509_certificate(pem).public_key()
        try:
            jwt.decode(assertion, key=public_key, algorithms=["RS256"],
                       options={"verify_exp": False, "verify_aud": False,
                                "verify_iss": False, "verify_sub": False,
                                "verify_iat": False, "verify_nbf": False})
            return True
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
    return False


def _grant_jwt(request: web.Request, state: EmulatorState, form: dict[str, str]) -> dict:
    assertion = form.get("assertion", "")
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise OAuthError("invalid_grant", "invalid assertion") from None
    if header.get("alg") != "RS256":
        raise OAuthError("invalid_grant", "invalid assertion")
    app = _app_or_fail(state, claims.get("iss"))
    if not _verified_with_app_certificate(assertion, app):
        raise OAuthError("invalid_grant", "invalid assertion")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    accepted = _accepted_audiences(request, state)
    if not any(isinstance(a, str) and a.rstrip("/").lower() in accepted for a in audiences):
        raise OAuthError("invalid_grant", "audience is invalid")
    if _expiry_seconds(claims) <= time.time():
        raise OAuthError("invalid_grant", "expired authorization code")
    username = claims.get("prn") or claims.get("sub")
    user = state.identity.user_by_username(username) if isinstance(username, str) else None
    if user is None:
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    _check_app_installed(request, user, app)
    if not state.identity.is_approved(user, app):
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    _check_user_may_log_in(request, user, app)
    session = _new_session(state, user, app, "jwt_bearer")
    return _token_body(request, session, app, scope="web api")


def _grant_client_credentials(request: web.Request, state: EmulatorState,
                              form: dict[str, str]) -> dict:
    if request.host.split(":")[0].lower() in GENERIC_LOGIN_HOSTS:
        raise OAuthError("invalid_grant", "request not supported on this domain")
    key, secret = _client_auth(request, form)
    app = _app_or_fail(state, key)
    _check_secret(app, secret)
    run_as = state.identity.user(app.client_credentials_user_id or "")
    if not app.client_credentials_enabled or run_as is None:
        raise OAuthError("invalid_grant", "no client credentials user enabled")
    _check_user_may_log_in(request, run_as, app)
    session = _new_session(state, run_as, app, "client_credentials")
    return _token_body(request, session, app, scope="web api", token_format="opaque")  # noqa: S106


def _grant_password(request: web.Request, state: EmulatorState, form: dict[str, str]) -> dict:
    key, secret = _client_auth(request, form)
    app = _app_or_fail(state, key)
    _check_secret(app, secret)
    if app.is_external_client_app:
        # ECAs never offer this flow; Salesforce answers like a bad password (Login History
        # says "Username-Password Flow Disabled").
        raise OAuthError("invalid_grant", "authentication failure")
    if state.org.password_flow_blocked:
        raise OAuthError("invalid_grant", "authentication failure - the OAuth username-password "
                         "flow is blocked in this org (Setup > OAuth and OpenID Connect "
                         "Settings > Allow OAuth Username-Password Flows)")
    user = state.identity.user_by_username(form.get("username", ""))
    supplied = form.get("password", "")
    if user is None or not hmac.compare_digest(
            supplied.encode(), (user.password + user.security_token).encode()):
        raise OAuthError("invalid_grant", "authentication failure")
    if not app.self_authorize and not state.identity.is_approved(user, app):
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    _check_user_may_log_in(request, user, app)
    session = _new_session(state, user, app, "password")
    return _token_body(request, session, app)


def _grant_refresh_token(request: web.Request, state: EmulatorState,
                         form: dict[str, str]) -> dict:
    key, secret = _client_auth(request, form)
    app = _app_or_fail(state, key)
    if secret is not None:
        _check_secret(app, secret)
    stored = state.identity.refresh_token(form.get("refresh_token", ""))
    if stored is None or stored.consumer_key != app.consumer_key:
        raise OAuthError("invalid_grant", "expired access/refresh token")
    user = state.identity.user(stored.user_id)
    if user is None:
        raise OAuthError("invalid_grant", "expired access/refresh token")
    _check_user_may_log_in(request, user, app)
    rotated = None
    if state.org.refresh_token_rotation:
        stored.revoked = True  # single use: the old token stops working, sessions stay
        rotated = state.identity.new_refresh_token(user, app).token
    session = _new_session(state, user, app, "refresh_token")
    return _token_body(request, session, app, scope="refresh_token web api",
                       refresh_token=rotated)


def _grant_authorization_code(request: web.Request, state: EmulatorState,
                              form: dict[str, str]) -> dict:
    key, secret = _client_auth(request, form)
    app = _app_or_fail(state, key)
    code = state.identity.take_code(form.get("code", ""))
    if code is None or code.consumer_key != app.consumer_key:
        raise OAuthError("invalid_grant", "expired authorization code")
    if form.get("redirect_uri", "") != code.redirect_uri:
        raise OAuthError("invalid_grant", "redirect uri does not match configuration")
    verifier = form.get("code_verifier")
    if code.code_challenge is not None:
        if not verifier:
            raise OAuthError("invalid_grant", "invalid code verifier")
        if pkce_challenge(verifier, code.code_challenge_method) != code.code_challenge:
            raise OAuthError("invalid_request", "invalid code verifier")
        if secret is not None:
            _check_secret(app, secret)
    else:
        _check_secret(app, secret)
    user = state.identity.user(code.user_id)
    if user is None:
        raise OAuthError("invalid_grant", "expired authorization code")
    _check_user_may_log_in(request, user, app)
    refresh = state.identity.new_refresh_token(user, app)
    session = _new_session(state, user, app, "authorization_code")
    return _token_body(request, session, app, scope="refresh_token web api",
                       refresh_token=refresh.token)


def _grant_token_exchange(request: web.Request, state: EmulatorState,
                          form: dict[str, str]) -> dict:
    """RFC 8693 token exchange: the org's handler validates the subject token and maps its
    subject to a user; the app must have the token exchange flow enabled."""
    key, secret = _client_auth(request, form)
    app = _app_or_fail(state, key)
    if not app.token_exchange_enabled:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    if app.require_secret_for_token_exchange or secret is not None:
        _check_secret(app, secret)
    subject_token = form.get("subject_token", "")
    token_type = form.get("subject_token_type", "")
    if not subject_token or not token_type:
        raise OAuthError("invalid_request", "subject_token and subject_token_type are required")
    handler = state.identity.token_exchange_handler
    requested = form.get("token_handler")
    if not handler.enabled or (requested and requested != handler.name):
        raise OAuthError("invalid_request", "no enabled token exchange handler "
                         f"{requested or ''}".rstrip())
    try:
        username = handler.validate(subject_token, token_type)
    except SubjectTokenRejected as rejected:
        raise OAuthError("invalid_request", str(rejected)) from None
    user = state.identity.user_by_username(username)
    if user is None:
        raise OAuthError("invalid_request", "invalid subject token: the mapped user does not "
                         "exist")
    _check_app_installed(request, user, app)
    if not state.identity.is_approved(user, app):  # the app's Permitted Users policy
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    _check_user_may_log_in(request, user, app)
    session = _new_session(state, user, app, "token_exchange")
    body = _token_body(request, session, app, scope="api")
    body["issued_token_type"] = ISSUED_TOKEN_TYPE
    return body


GRANTS: dict[str, tuple[str, Callable[[web.Request, EmulatorState, dict[str, str]], dict]]] = {
    JWT_GRANT: ("jwt_bearer", _grant_jwt),
    "client_credentials": ("client_credentials", _grant_client_credentials),
    "password": ("password", _grant_password),
    "refresh_token": ("refresh_token", _grant_refresh_token),
    "authorization_code": ("authorization_code", _grant_authorization_code),
    TOKEN_EXCHANGE_GRANT: ("token_exchange", _grant_token_exchange),
}


async def _form(request: web.Request) -> dict[str, str]:
    """Token parameters from the body (urlencoded or multipart) or, failing that, the query."""
    form: dict[str, str] = {k: v for k, v in request.query.items()}
    if request.can_read_body:
        posted = await request.post()
        form.update({k: v for k, v in posted.items() if isinstance(v, str)})
    return form


async def token(request: web.Request) -> web.Response:
    state = state_of(request)
    form = await _form(request)
    grant_type = form.get("grant_type", "")
    if grant_type not in GRANTS:
        state.counters.token_request("unsupported", ok=False)
        return _oauth_error_response(
            OAuthError("unsupported_grant_type", "grant type not supported"))
    counter_name, grant = GRANTS[grant_type]
    try:
        body = grant(request, state, form)
    except OAuthError as error:
        state.counters.token_request(counter_name, ok=False)
        return _oauth_error_response(error)
    state.counters.token_request(counter_name, ok=True)
    state.counters.login(counter_name)
    return web.json_response(body)


# ----- authorize page (web server flow) ------------------------------------------------------
_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Allow Access? | {org}</title></head>
<body><h1>Log in and allow access</h1>
<p>{app} wants to access your {org} data.</p>{error}
<form method="post" action="/services/oauth2/authorize">
{hidden}
<label>Username <input name="username" value="{login_hint}"></label>
<label>Password <input name="password" type="password"></label>
<button name="action" value="approve" type="submit">Allow</button>
<button name="action" value="deny" type="submit">Deny</button>
</form></body></html>"""
_AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "state", "scope",
                     "code_challenge", "code_challenge_method", "login_hint", "prompt",
                     "display", "nonce")


def _authorize_page(params: dict[str, str], app: ConnectedApp, error: str = "",
                    status: int = 200) -> web.Response:
    hidden = "\n".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
        for name in _AUTHORIZE_PARAMS if name in params)
    body = _PAGE.format(org="forcebeam Emulated Org", app=html.escape(app.name),
                        error=f'<p class="error">{html.escape(error)}</p>' if error else "",
                        hidden=hidden, login_hint=html.escape(params.get("login_hint", "")))
    return web.Response(text=body, content_type="text/html", status=status)


def _authorize_problem(params: dict[str, str],
                       state: EmulatorState) -> tuple[ConnectedApp | None, str]:
    app = state.identity.app(params.get("client_id", ""))
    if app is None:
        return None, "error=invalid_client_id: client identifier invalid"
    if params.get("redirect_uri") not in app.callback_urls:
        return app, "error=redirect_uri_mismatch: redirect_uri must match a callback URL"
    if params.get("response_type") != "code":
        return app, "error=unsupported_response_type: response_type must be code"
    return app, ""


def _redirect(uri: str, values: dict[str, str]) -> web.HTTPFound:
    """The 302 back to the app's callback (raise it: aiohttp answers raised redirects)."""
    separator = "&" if "?" in uri else "?"
    return web.HTTPFound(uri + separator + urlencode(values))


async def authorize_get(request: web.Request) -> web.Response:
    params = dict(request.query)
    app, problem = _authorize_problem(params, state_of(request))
    if problem:
        return web.Response(text=problem, status=400, content_type="text/plain")
    assert app is not None
    return _authorize_page(params, app)


async def authorize_post(request: web.Request) -> web.Response:
    state = state_of(request)
    params = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    app, problem = _authorize_problem(params, state)
    if problem:
        return web.Response(text=problem, status=400, content_type="text/plain")
    assert app is not None
    redirect_uri = params["redirect_uri"]
    extra = {"state": params["state"]} if "state" in params else {}
    if params.get("action") == "deny":
        raise _redirect(redirect_uri, {"error": "access_denied",
                                       "error_description": "end-user denied authorization",
                                       **extra})
    user = state.identity.user_by_username(params.get("username", ""))
    if user is None or not hmac.compare_digest(params.get("password", "").encode(),
                                               user.password.encode()):
        return _authorize_page(params, app, "Please check your username and password.")
    if not state.identity.may_use_app(user, app, state.org.api_access_control):
        raise _redirect(redirect_uri, {"error": "invalid_client",
                                       "error_description": "app must be installed into org",
                                       **extra})
    if app.self_authorize:
        state.identity.approve(user, app)
    elif not state.identity.is_approved(user, app):
        raise _redirect(redirect_uri, {"error": "access_denied", "error_description":
                                       "user is not admin approved to access this app",
                                       **extra})
    challenge = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or "S256"
    code = state.identity.new_code(user, app, redirect_uri, challenge, method)
    raise _redirect(redirect_uri, {"code": code.code, **extra})


# ----- revoke, userinfo ------------------------------------------------------------------------
async def revoke(request: web.Request) -> web.Response:
    state = state_of(request)
    form = await _form(request)
    value = form.get("token", "")
    if state.identity.revoke_session(value) or state.identity.revoke_refresh_token(value):
        return web.Response(status=200)
    return web.json_response({"error": "invalid_token", "error_description": "invalid token"},
                             status=400)


def session_from_bearer(request: web.Request) -> Session | None:
    """A live session from `Authorization: Bearer` or `oauth_token` (identity endpoints)."""
    state = state_of(request)
    value = bearer_token(request) or request.query.get("oauth_token")
    session = state.identity.session(value or "")
    if session is None or session.expired:
        return None
    return session


def user_info(request: web.Request, session: Session, *, openid: bool) -> dict[str, Any]:
    """What /userinfo (OpenID shape) and /id/{org}/{user} say about the session's user."""
    state = state_of(request)
    user = state.identity.user(session.user_id)
    assert user is not None
    base = listener_url(request)
    ident = identity_url(base, session)
    urls = {name: f"{base}/services/{path}" for name, path in (
        ("enterprise", "Soap/c/{version}/" + session.org_id[:15]),
        ("metadata", "Soap/m/{version}/" + session.org_id[:15]),
        ("partner", "Soap/u/{version}/" + session.org_id[:15]),
        ("rest", "data/v{version}/"), ("sobjects", "data/v{version}/sobjects/"),
        ("search", "data/v{version}/search/"), ("query", "data/v{version}/query/"),
        ("recent", "data/v{version}/recent/"), ("tooling_rest", "data/v{version}/tooling/"))}
    urls["custom_domain"] = base
    common = {"email": user.email, "email_verified": True, "user_type": "STANDARD",
              "language": "en_US", "locale": "en_US", "utcOffset": 0, "active": user.active,
              "urls": urls, "is_app_installed": True,
              "photos": {"picture": f"{base}/profilephoto/005/F",
                         "thumbnail": f"{base}/profilephoto/005/T"}}
    if openid:
        return {"sub": ident, "user_id": user.user_id, "organization_id": session.org_id,
                "preferred_username": user.username, "nickname": user.username.split("@")[0],
                "name": user.display_name, "given_name": user.first_name,
                "family_name": user.last_name, "zoneinfo": "Etc/UTC",
                "profile": f"{base}/{user.user_id}", "picture": f"{base}/profilephoto/005/F",
                "address": {"country": "US"}, "is_salesforce_integration_user": user.api_only,
                "updated_at": "2026-01-01T00:00:00Z", **common}
    return {"id": ident, "asserted_user": True, "user_id": user.user_id,
            "organization_id": session.org_id, "username": user.username,
            "nick_name": user.username.split("@")[0], "display_name": user.display_name,
            "first_name": user.first_name, "last_name": user.last_name, "status": {},
            "addr_country": "US", "timezone": "Etc/UTC", "is_lightning_login_user": False,
            "last_modified_date": "2026-01-01T00:00:00.000+0000", **common}


async def userinfo(request: web.Request) -> web.Response:
    session = session_from_bearer(request)
    if session is None:
        return web.Response(text="Bad_OAuth_Token", status=403, content_type="text/plain")
    return sf_json(user_info(request, session, openid=True))


def register(app: web.Application, state: EmulatorState) -> None:
    app.router.add_post("/services/oauth2/token", token)
    app.router.add_get("/services/oauth2/authorize", authorize_get)
    app.router.add_post("/services/oauth2/authorize", authorize_post)
    app.router.add_post("/services/oauth2/revoke", revoke)
    app.router.add_get("/services/oauth2/revoke", revoke)
    app.router.add_get("/services/oauth2/userinfo", userinfo)
    app.router.add_post("/services/oauth2/userinfo", userinfo)
