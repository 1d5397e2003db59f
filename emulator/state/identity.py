"""Who may log in and how: users, connected apps, approvals, certificates, sessions, tokens.

The ids are deterministic so the records generator can seed matching `User` rows by importing
the constants below instead of repeating them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from forcebeam.emulator.state.token_exchange import (
    IdTokenIssuer,
    TokenExchangeHandler,
)

ORG_ID = "00D000000000001AAA"
ORG_NAME = "forcebeam Emulated Org"
INTEGRATION_USER_ID = "005000000000001AAA"
MTLS_USER_ID = "005000000000002AAA"
INTEGRATION_USERNAME = "integration@forcebeam.emulator"
MTLS_USERNAME = "mtls-integration@forcebeam.emulator"
INTEGRATION_PROFILE = "System Administrator"
MTLS_PROFILE = "API Only Integration"
CALLBACK_URL = "http://localhost:1717/OauthRedirect"
AUTHORIZATION_CODE_SECONDS = 900


@dataclass
class User:
    """A Salesforce user as far as login cares."""

    user_id: str
    username: str
    password: str
    security_token: str
    first_name: str
    last_name: str
    email: str
    profile: str = INTEGRATION_PROFILE
    api_enabled: bool = True
    api_only: bool = False
    enforce_mutual_tls: bool = False  # "Enforce SSL/TLS Mutual Authentication" permission
    active: bool = True
    # Permissions the 2025-27 changes introduced (System Administrator has them by default):
    approve_uninstalled_apps: bool = True  # "Approve Uninstalled Connected Apps"
    use_any_api_client: bool = False  # "Use Any API Client" (needed with API Access Control)
    use_any_api_auth: bool = True  # "Use Any API Auth": SOAP login() answers INSUFFICIENT_ACCESS

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass
class ConnectedApp:
    """A connected app: OAuth client identity, uploaded certificates and who may use it."""

    name: str
    consumer_key: str
    consumer_secret: str
    callback_urls: list[str]
    # "All users may self-authorize" (True) vs "Admin approved users are pre-authorized"
    self_authorize: bool
    certificate_fingerprints: dict[str, bytes] = field(default_factory=dict)  # sha256 -> PEM
    preauthorized_profiles: set[str] = field(default_factory=set)  # admin-approved profiles
    client_credentials_user_id: str | None = None  # the "Run As" user
    client_credentials_enabled: bool = True
    # "connected_app" or "external_client_app" (ECA: no username-password flow, ever)
    kind: str = "connected_app"
    # Uninstalled apps are blocked (Sep 2025) for users without the permissions above.
    installed: bool = True
    token_exchange_enabled: bool = False  # ECA "Enable Token Exchange Flow"
    require_secret_for_token_exchange: bool = False  # "Require Secret for Token Exchange Flow"

    @property
    def is_external_client_app(self) -> bool:
        return self.kind == "external_client_app"


@dataclass
class Session:
    """An access token / SOAP session id and what it stands for."""

    token: str
    user_id: str
    org_id: str
    consumer_key: str | None
    grant: str
    issued_at: datetime
    expires_at: float  # time.time() seconds

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


@dataclass
class RefreshToken:
    token: str
    user_id: str
    consumer_key: str
    revoked: bool = False


@dataclass
class AuthorizationCode:
    code: str
    user_id: str
    consumer_key: str
    redirect_uri: str
    code_challenge: str | None
    code_challenge_method: str
    expires_at: float
    used: bool = False


def pkce_challenge(verifier: str, method: str = "S256") -> str:
    """The code_challenge a verifier answers (base64url SHA-256, no padding; or plain)."""
    if method.lower() == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _random_secret(length: int = 24) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


class Identity:
    """Every identity fact of the org, behind one lock (handlers may run on threads)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.users: dict[str, User] = {}  # by user id
        self.apps: dict[str, ConnectedApp] = {}  # by consumer key
        self.approvals: set[tuple[str, str]] = set()  # (user id, consumer key)
        self.mutual_auth_fingerprints: dict[str, bytes] = {}  # sha256 -> PEM (org-trusted)
        self.sessions: dict[str, Session] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.primary_app_key = ""  # the pre-authorized app of the info file
        self.self_authorize_app_key = ""  # the "all users may self-authorize" app
        self.external_client_app_key = ""  # the External Client App (token exchange on)
        self.token_exchange_handler = TokenExchangeHandler()
        self.id_token_issuer = IdTokenIssuer()

    # ----- seeding -------------------------------------------------------------------------
    @classmethod
    def seeded(cls, jwt_certificate_pem: bytes, jwt_fingerprint: str,
               client_certificate_pem: bytes, client_fingerprint: str) -> Identity:
        """The org of ARCHITECTURE §6: integration user, mTLS user, two connected apps."""
        identity = cls()
        integration = User(INTEGRATION_USER_ID, INTEGRATION_USERNAME,
                           "Emulat0r-" + _random_secret(12), _random_secret(25),
                           "Integration", "User", INTEGRATION_USERNAME)
        mtls = User(MTLS_USER_ID, MTLS_USERNAME, "Emulat0r-" + _random_secret(12),
                    _random_secret(25),
                    "Mutual TLS", "Integration", MTLS_USERNAME, profile=MTLS_PROFILE,
                    api_only=True, enforce_mutual_tls=True)
        for user in (integration, mtls):
            identity.users[user.user_id] = user
        app = ConnectedApp("forcebeam", "3MVG9" + _random_secret(80), _random_secret(64),
                           [CALLBACK_URL], self_authorize=False,
                           certificate_fingerprints={jwt_fingerprint: jwt_certificate_pem},
                           preauthorized_profiles={INTEGRATION_PROFILE, MTLS_PROFILE},
                           client_credentials_user_id=INTEGRATION_USER_ID)
        self_app = ConnectedApp("forcebeam self-authorize", "3MVG9" + _random_secret(80),
                                _random_secret(64), [CALLBACK_URL], self_authorize=True,
                                certificate_fingerprints={jwt_fingerprint: jwt_certificate_pem})
        eca = ConnectedApp("forcebeam ECA", "3MVG9" + _random_secret(80), _random_secret(64),
                           [CALLBACK_URL], self_authorize=False,
                           certificate_fingerprints={jwt_fingerprint: jwt_certificate_pem},
                           preauthorized_profiles={INTEGRATION_PROFILE, MTLS_PROFILE},
                           client_credentials_user_id=INTEGRATION_USER_ID,
                           kind="external_client_app", token_exchange_enabled=True)
        for each in (app, self_app, eca):
            identity.apps[each.consumer_key] = each
        identity.mutual_auth_fingerprints[client_fingerprint] = client_certificate_pem
        identity.primary_app_key = app.consumer_key
        identity.self_authorize_app_key = self_app.consumer_key
        identity.external_client_app_key = eca.consumer_key
        issuer = identity.id_token_issuer
        identity.token_exchange_handler.update({
            "trusted_issuers": {issuer.issuer: [issuer.public_pem()]},
            "subject_mapping": {issuer.service_account: INTEGRATION_USERNAME}})
        return identity

    def may_use_app(self, user: User, app: ConnectedApp, api_access_control: bool) -> bool:
        """Sep 2025: an uninstalled app is blocked unless the user holds a bypass permission
        ("Use Any API Client"; "Approve Uninstalled Connected Apps" unless API Access
        Control is on)."""
        if app.installed or user.use_any_api_client:
            return True
        return user.approve_uninstalled_apps and not api_access_control

    # ----- lookups -------------------------------------------------------------------------
    def user_by_username(self, username: str) -> User | None:
        wanted = username.strip().lower()
        with self._lock:
            return next((u for u in self.users.values() if u.username.lower() == wanted), None)

    def user(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    def app(self, consumer_key: str) -> ConnectedApp | None:
        return self.apps.get(consumer_key)

    def is_approved(self, user: User, app: ConnectedApp) -> bool:
        with self._lock:
            return ((not app.self_authorize and user.profile in app.preauthorized_profiles)
                    or (user.user_id, app.consumer_key) in self.approvals)

    def approve(self, user: User, app: ConnectedApp) -> None:
        with self._lock:
            self.approvals.add((user.user_id, app.consumer_key))

    def add_app_certificate(self, app: ConnectedApp, pem: bytes, fingerprint: str) -> None:
        with self._lock:
            app.certificate_fingerprints[fingerprint] = pem

    def trust_mutual_auth_certificate(self, pem: bytes, fingerprint: str) -> None:
        with self._lock:
            self.mutual_auth_fingerprints[fingerprint] = pem

    # ----- sessions and tokens -------------------------------------------------------------
    def new_session(self, user: User, consumer_key: str | None, grant: str,
                    lifetime_seconds: int) -> Session:
        token = f"{ORG_ID[:15]}!AQ{secrets.token_urlsafe(72)}"
        session = Session(token, user.user_id, ORG_ID, consumer_key, grant,
                          datetime.now(timezone.utc), time.time() + lifetime_seconds)
        with self._lock:
            self.sessions[token] = session
        return session

    def session(self, token: str) -> Session | None:
        return self.sessions.get(token)

    def expire_all_sessions(self) -> int:
        with self._lock:
            now = time.time()
            for session in self.sessions.values():
                session.expires_at = min(session.expires_at, now - 1)
            return len(self.sessions)

    def revoke_session(self, token: str) -> bool:
        with self._lock:
            return self.sessions.pop(token, None) is not None

    def new_refresh_token(self, user: User, app: ConnectedApp) -> RefreshToken:
        token = RefreshToken(f"5Aep861{secrets.token_urlsafe(60)}", user.user_id, app.consumer_key)
        with self._lock:
            self.refresh_tokens[token.token] = token
        return token

    def refresh_token(self, token: str) -> RefreshToken | None:
        found = self.refresh_tokens.get(token)
        return None if found is None or found.revoked else found

    def revoke_refresh_token(self, token: str) -> bool:
        """Revoke a refresh token and the sessions issued to its user through its app."""
        with self._lock:
            found = self.refresh_tokens.get(token)
            if found is None or found.revoked:
                return False
            found.revoked = True
            for key in [k for k, s in self.sessions.items()
                        if s.user_id == found.user_id and s.consumer_key == found.consumer_key]:
                del self.sessions[key]
            return True

    def new_code(self, user: User, app: ConnectedApp, redirect_uri: str,
                 code_challenge: str | None, method: str) -> AuthorizationCode:
        code = AuthorizationCode("aPrx" + secrets.token_urlsafe(48), user.user_id,
                                 app.consumer_key, redirect_uri, code_challenge, method,
                                 time.time() + AUTHORIZATION_CODE_SECONDS)
        with self._lock:
            self.codes[code.code] = code
        return code

    def take_code(self, code: str) -> AuthorizationCode | None:
        """Single use: a second exchange of the same code finds it used."""
        with self._lock:
            found = self.codes.get(code)
            if found is None or found.used or time.time() > found.expires_at:
                return None
            found.used = True
            return found
