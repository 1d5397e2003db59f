"""The org-side half of the OAuth 2.0 token exchange flow, and the Google-like ID token issuer.

On a real org an Apex class extending ``Auth.Oauth2TokenExchangeHandler`` validates the
incoming token (``validateIncomingToken``) and maps its subject to a user
(``getUserForTokenSubject``). Here that handler is data an admin can change through
``/__emulator/token-exchange-handler``: which issuers it trusts (with their public keys),
which audiences it accepts, and which subject maps to which username.

The issuer stands in for Google's metadata server on a GCE or Dataflow worker: it signs RS256
ID tokens for one service account with a key made at start-up, whose public half the handler
trusts out of the box.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GOOGLE_ISSUER = "https://accounts.google.com"
SERVICE_ACCOUNT = "forcebeam-worker@forcebeam-emulator.iam.gserviceaccount.com"
SERVICE_ACCOUNT_ID = "104857600000000000042"  # Google's numeric `sub` for a service account
PROJECT_ID = "forcebeam-emulator"
ID_TOKEN_SECONDS = 3600  # Google's ID tokens live one hour
TOKEN_TYPE_ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN
TOKEN_TYPE_JWT = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - a URN
# The Apex handler's SupportedTokenTypes (IdToken, Jwt); access/refresh tokens and SAML are not.
SUPPORTED_TOKEN_TYPES = (TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT)


class SubjectTokenRejected(Exception):  # noqa: N818 - reads as the handler verdict
    """The handler refused the subject token; the text is what the token endpoint says."""


@dataclass
class IdTokenIssuer:
    """Signs Google-shaped ID tokens for the emulated worker's service account."""

    issuer: str = GOOGLE_ISSUER
    service_account: str = SERVICE_ACCOUNT
    key_id: str = field(default_factory=lambda: secrets.token_hex(20))
    _key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        repr=False)
    issued: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def public_pem(self) -> str:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def id_token(self, audience: str, *, full: bool) -> str:
        """What ``.../service-accounts/default/identity?audience=A&format=full`` answers."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": audience, "azp": SERVICE_ACCOUNT_ID, "email": self.service_account,
            "email_verified": True, "exp": now + ID_TOKEN_SECONDS, "iat": now,
            "iss": self.issuer, "sub": SERVICE_ACCOUNT_ID}
        if full:
            claims["google"] = {"compute_engine": {
                "instance_creation_timestamp": now - 600, "instance_id": "4242424242424242424",
                "instance_name": "forcebeam-worker", "project_id": PROJECT_ID,
                "project_number": 424242424242, "zone": "us-central1-a"}}
        with self._lock:
            self.issued += 1
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id})


@dataclass
class TokenExchangeHandler:
    """What the org's Apex token exchange handler decides, as editable data."""

    name: str = "ForcebeamGoogleHandler"
    enabled: bool = True
    trusted_issuers: dict[str, list[str]] = field(default_factory=dict)  # iss -> PEM keys
    audiences: list[str] = field(default_factory=list)
    subject_mapping: dict[str, str] = field(default_factory=dict)  # email or sub -> username
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def as_json(self) -> dict[str, Any]:
        with self._lock:
            return {"name": self.name, "enabled": self.enabled,
                    "trusted_issuers": {k: list(v) for k, v in self.trusted_issuers.items()},
                    "audiences": list(self.audiences),
                    "subject_mapping": dict(self.subject_mapping)}

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Replace the given keys; ValueError names a key of the wrong shape."""
        shapes = {"enabled": bool, "trusted_issuers": dict, "audiences": list,
                  "subject_mapping": dict, "name": str}
        for key, value in changes.items():
            if key not in shapes:
                raise ValueError(f"unknown handler setting {key!r}; known: {sorted(shapes)}")
            if not isinstance(value, shapes[key]):
                raise ValueError(f"handler setting {key!r} must be a JSON "
                                 f"{shapes[key].__name__}")
        issuers = changes.get("trusted_issuers", {})
        for issuer, keys in issuers.items():
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise ValueError(f"trusted_issuers[{issuer!r}] must be a list of PEM keys")
            for pem in keys:
                try:
                    serialization.load_pem_public_key(pem.encode())
                except ValueError:
                    raise ValueError(f"trusted_issuers[{issuer!r}] holds a value that is not "
                                     "a PEM public key") from None
        with self._lock:
            for key, value in changes.items():
                setattr(self, key, value)
        return self.as_json()

    def validate(self, token: str, token_type: str) -> str:
        """``validateIncomingToken`` + ``getUserForTokenSubject``: the username to log in as."""
        if token_type not in SUPPORTED_TOKEN_TYPES:
            raise SubjectTokenRejected(f"the token exchange handler {self.name} does not "
                                       f"support subject_token_type {token_type}")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise SubjectTokenRejected("invalid subject token: not a signed JWT") from None
        with self._lock:
            keys = list(self.trusted_issuers.get(str(unverified.get("iss")), []))
            audiences = list(self.audiences)
            mapping = dict(self.subject_mapping)
        if header.get("alg") != "RS256" or not keys:
            raise SubjectTokenRejected("invalid subject token: its issuer is not trusted by "
                                       f"the token exchange handler {self.name}")
        claims = _verified(token, keys, audiences)
        subject = claims.get("email") or claims.get("sub")
        username = mapping.get(str(subject)) or mapping.get(str(claims.get("sub")))
        if username is None:
            raise SubjectTokenRejected("invalid subject token: the token exchange handler "
                                       f"{self.name} maps no user to its subject")
        return username


def _verified(token: str, keys: list[str], audiences: list[str]) -> dict[str, Any]:
    for pem in keys:
        public_key = serialization.load_pem_public_key(pem.encode())
        try:
            return jwt.decode(token, key=public_key, algorithms=["RS256"],  # type: ignore[arg-type]
                              audience=audiences or None,
                              options={"require": ["exp", "iss", "aud"],
                                       "verify_aud": bool(audiences)})
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise SubjectTokenRejected("invalid subject token: expired") from None
        except jwt.InvalidAudienceError:
            raise SubjectTokenRejected("invalid subject token: its audience is not one the "
                                       "token exchange handler accepts") from None
        except jwt.PyJWTError:
            raise SubjectTokenRejected("invalid subject token") from None
    raise SubjectTokenRejected("invalid subject token: its signature does not verify with the "
                               "trusted issuer's keys")
