"""SOAP ``login()`` ("basic": username + password + security token) — legacy.

Salesforce retires SOAP login() in Summer '27 and does not offer it in API 65.0+, so the login
call uses at most version 64.0 whatever the connection's REST version is.
"""

from __future__ import annotations

import logging
import time
from typing import Literal
from urllib.parse import urlsplit, urlunsplit
from xml.etree import ElementTree  # noqa: S405 - parses Salesforce's answer over verified TLS
from xml.sax.saxutils import escape

import requests

from forcebeam.auth.config_types import AuthConfig, SecretRef
from forcebeam.auth.credentials import Credentials, TokenRequest
from forcebeam.auth.errors import AuthError, ErrorKind, TransientAuthError
from forcebeam.auth.oauth import TokenResponse, post_to_login_endpoint
from forcebeam.auth.responses import kind_of_answer
from forcebeam.auth.secrets import SecretValue

log = logging.getLogger(__name__)

MAX_SOAP_LOGIN_VERSION = 64
PARTNER_NS = "urn:partner.soap.sforce.com"
FAULT_NS = "urn:fault.partner.soap.sforce.com"

_FIXES = {
    "INVALID_LOGIN": "check the username, password and security token (reset the token in the "
                     "user's Settings > Reset My Security Token) and that the user is active",
    "LOGIN_MUST_USE_SECURITY_TOKEN": "append the user's security token: set auth.security_token",
    "INSUFFICIENT_ACCESS": "SOAP login() requires the 'Use Any API Auth' user permission: add "
                           "it to the user's profile or a permission set (Setup > Permission "
                           "Sets > System Permissions); better, switch to jwt_bearer or "
                           "client_credentials",
    "UNSUPPORTED_API_VERSION": "SOAP login() is not available in this API version (retired "
                               "in Summer '27 for all versions): switch to jwt_bearer or "
                               "client_credentials",
    "LOGIN_DISABLED": "SOAP login() is disabled in this org (Setup > User Interface > 'Enable "
                      "SOAP API login()'); better, switch to jwt_bearer or client_credentials",
}


class BasicConfig(AuthConfig):
    type: Literal["basic"]
    username: str
    password: SecretRef
    security_token: SecretRef | None = None

    secret_fields = ("password", "security_token")


class SoapLoginCredentials(Credentials):
    type = "basic"
    config_model = BasicConfig
    legacy = True

    def _version(self) -> str:
        major = min(int(self.connection.api_version.split(".")[0]), MAX_SOAP_LOGIN_VERSION)
        return f"{major}.0"

    def _fetch(self, request: TokenRequest) -> TokenResponse:
        config: BasicConfig = self.config  # type: ignore[assignment]
        token = self.secret("security_token").text() if config.security_token else ""
        envelope = (
            '<?xml version="1.0" encoding="utf-8" ?>'
            '<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">'
            f'<env:Body><n1:login xmlns:n1="{PARTNER_NS}">'
            f"<n1:username>{escape(config.username)}</n1:username>"
            f"<n1:password>{escape(self.secret('password').text() + token)}</n1:password>"
            "</n1:login></env:Body></env:Envelope>")
        url = f"{self.login_endpoint}/services/Soap/u/{self._version()}"
        response = post_to_login_endpoint(
            request, url, "a SOAP login", data=envelope.encode("utf-8"), timeout=60,
            headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"})
        return self._parse(response)

    def _parse(self, response: requests.Response) -> TokenResponse:
        try:
            root = ElementTree.fromstring(response.content)  # noqa: S314 - see import
        except ElementTree.ParseError:
            if kind_of_answer(response.status_code) is ErrorKind.TRANSIENT:
                raise TransientAuthError(f"SOAP login failed with HTTP {response.status_code}; "
                                         "Salesforce may be unavailable") from None
            raise AuthError(f"SOAP login answered HTTP {response.status_code} without XML",
                            code=f"http_{response.status_code}",
                            fix="check that login_url is a Salesforce login host") from None
        session_id = root.find(f".//{{{PARTNER_NS}}}sessionId")
        server_url = root.find(f".//{{{PARTNER_NS}}}serverUrl")
        if response.status_code == 200 and session_id is not None and server_url is not None:
            parts = urlsplit((server_url.text or "").strip())
            instance = urlunsplit((parts.scheme, parts.netloc.replace("-api", ""), "", "", ""))
            # The session timeout (userInfo.sessionSecondsValid) is in the answer.
            seconds = _text(root, f".//{{{PARTNER_NS}}}sessionSecondsValid")
            return TokenResponse(access_token=SecretValue((session_id.text or "").strip()),
                                 instance_url=instance,
                                 expiry=time.time() + int(seconds) if seconds.isdigit()
                                 else None)
        code = _text(root, f".//{{{FAULT_NS}}}exceptionCode") or _text(root, ".//faultcode")
        message = _text(root, f".//{{{FAULT_NS}}}exceptionMessage") or \
            _text(root, ".//faultstring")
        code = code.rpartition(":")[2] or f"http_{response.status_code}"
        if kind_of_answer(response.status_code, code) is ErrorKind.TRANSIENT:
            raise TransientAuthError(f"SOAP login failed: {code}")
        fix = _FIXES.get(code, "check the user and org settings in Salesforce Setup")
        if "disabled" in message.lower() and code not in _FIXES:
            fix = _FIXES["LOGIN_DISABLED"]
        raise AuthError(f"SOAP login to {self.login_endpoint} was refused: {message or code}",
                        code=code, fix=fix)


def _text(root: ElementTree.Element, path: str) -> str:
    node = root.find(path)
    return (node.text or "").strip() if node is not None else ""
