"""SOAP `login()` (partner and enterprise WSDL), the "Basic Authentication" of older tools.

Bodies follow the wire reference §2 exactly: the success response puts `sessionId` and
`serverUrl` in the default namespace (simple-salesforce finds them with minidom by bare tag
name) and faults use the `sf:` prefix with HTTP 500. `login()` is gone from API 65.0.
"""

from __future__ import annotations

import hmac
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from aiohttp import web

from forcebeam.emulator.state import EmulatorState
from forcebeam.emulator.wire.http import (
    MIN_API_VERSION,
    listener_url,
    mutual_tls_satisfied,
    state_of,
)

LAST_LOGIN_VERSION = 64  # SOAP login() is not available in API 65.0+
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NAMESPACES = {"u": "urn:partner.soap.sforce.com", "c": "urn:enterprise.soap.sforce.com"}
XML_TYPE = "text/xml"


def fault(code: str, message: str, *, fault_type: str = "LoginFault",
          kind: str = "u") -> web.Response:
    """A SOAP fault (HTTP 500) with `sf:exceptionCode` / `sf:exceptionMessage`."""
    namespace = "urn:fault.partner.soap.sforce.com" if kind == "u" else \
        "urn:fault.enterprise.soap.sforce.com"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:sf="{namespace}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{escape(code)}: {escape(message)}"
        f'</faultstring><detail><sf:{fault_type} xsi:type="sf:{fault_type}">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        f"</sf:{fault_type}></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>")
    return web.Response(status=500, text=body, content_type=XML_TYPE, charset="utf-8")


def _credentials(payload: bytes) -> tuple[str, str] | None:
    """(username, password+token) from a login envelope, by local names (any prefixes)."""
    if b"<!DOCTYPE" in payload or b"<!ENTITY" in payload:
        return None  # no DTDs in a login envelope: refuses entity expansion attacks outright
    try:
        root = ElementTree.fromstring(payload)  # noqa: S314 (DTDs refused above)
    except ElementTree.ParseError:
        return None
    login = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "login"), None)
    if login is None:
        return None
    values = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in login}
    if "username" not in values or "password" not in values:
        return None
    return values["username"], values["password"]


def _success(request: web.Request, kind: str, version: str, session_token: str,
             user, org_id: str, session_seconds: int) -> web.Response:
    base = listener_url(request)
    org15 = org_id[:15]
    namespace = NAMESPACES[kind]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns="{namespace}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse>'
        f"<result><metadataServerUrl>{base}/services/Soap/m/{version}/{org15}"
        "</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
        f"<serverUrl>{base}/services/Soap/{kind}/{version}/{org15}</serverUrl>"
        f"<sessionId>{session_token}</sessionId><userId>{user.user_id}</userId><userInfo>"
        "<accessibilityMode>false</accessibilityMode><currencySymbol>$</currencySymbol>"
        "<orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit>"
        "<orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>"
        "<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments>"
        "<orgHasPersonAccounts>false</orgHasPersonAccounts>"
        f"<organizationId>{org_id}</organizationId><organizationMultiCurrency>false"
        "</organizationMultiCurrency><organizationName>forcebeam Emulated Org"
        "</organizationName><profileId>00e000000000001AAA</profileId><roleId "
        'xsi:nil="true"/>'
        f"<sessionSecondsValid>{session_seconds}</sessionSecondsValid>"
        f"<userDefaultCurrencyIsoCode xsi:nil=\"true\"/><userEmail>{escape(user.email)}"
        f"</userEmail><userFullName>{escape(user.display_name)}</userFullName>"
        f"<userId>{user.user_id}</userId><userLanguage>en_US</userLanguage><userLocale>en_US"
        f"</userLocale><userName>{escape(user.username)}</userName><userTimeZone>Etc/UTC"
        "</userTimeZone><userType>Standard</userType><userUiSkin>Theme3</userUiSkin>"
        "</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>")
    return web.Response(text=body, content_type=XML_TYPE, charset="utf-8")


async def login(request: web.Request) -> web.Response:
    state: EmulatorState = state_of(request)
    kind = request.match_info["kind"]
    version = request.match_info["version"]
    try:
        major = int(float(version))
    except ValueError:
        major = 0
    oldest = max(MIN_API_VERSION, state.org.oldest_api_version)
    if not oldest <= major <= LAST_LOGIN_VERSION:
        state.counters.token_request("soap", ok=False)
        return fault("UNSUPPORTED_API_VERSION", f"SOAP API login() is not available in API "
                     f"version {version}: use {oldest}.0 to {LAST_LOGIN_VERSION}.0, or an OAuth "
                     "flow (JWT bearer, client credentials)", fault_type="UnexpectedErrorFault",
                     kind=kind)
    outcome = _login(request, state, await request.read(), kind, version)
    state.counters.token_request("soap", ok=outcome.status == 200)
    if outcome.status == 200:
        state.counters.login("soap")
    return outcome


def _login(request: web.Request, state: EmulatorState, payload: bytes, kind: str,
           version: str) -> web.Response:
    if not state.org.soap_login_enabled:
        return fault("INVALID_OPERATION", "SOAP API login() is disabled in this org: enable it "
                     "in Setup > User Interface > Enable SOAP API login(), or use an OAuth "
                     "flow", fault_type="UnexpectedErrorFault", kind=kind)
    credentials = _credentials(payload)
    if credentials is None:
        return fault("INVALID_LOGIN", "Invalid username, password, security token; or user "
                     "locked out.", kind=kind)
    username, supplied = credentials
    user = state.identity.user_by_username(username)
    if user is None or not user.active or not hmac.compare_digest(
            supplied.encode(), (user.password + user.security_token).encode()):
        if user is not None and hmac.compare_digest(supplied.encode(), user.password.encode()):
            return fault("LOGIN_MUST_USE_SECURITY_TOKEN", "Invalid username, password, security "
                         "token; or user locked out. Are you at a new location? When accessing "
                         "Salesforce--either via a desktop client or the API--from outside of "
                         "your company's trusted networks, you must add a security token to "
                         "your password to log in.", kind=kind)
        return fault("INVALID_LOGIN", "Invalid username, password, security token; or user "
                     "locked out.", kind=kind)
    if not user.use_any_api_auth:
        # Winter '26+: login() is restricted to users with the "Use Any API Auth" permission.
        return fault("INSUFFICIENT_ACCESS", "SOAP API login() requires the Use Any API Auth "
                     "user permission", kind=kind)
    if user.enforce_mutual_tls and not mutual_tls_satisfied(request):
        return fault("MUTUAL_AUTHENTICATION_FAILED", "This user must log in on the org's mutual "
                     "TLS port with a client certificate the org trusts.", kind=kind)
    session = state.identity.new_session(user, None, "soap", state.org.session_seconds)
    return _success(request, kind, version, session.token, user, session.org_id,
                    state.org.session_seconds)


def register(app: web.Application, state: EmulatorState) -> None:
    app.router.add_post(r"/services/Soap/{kind:[uc]}/{version:\d+\.\d+}", login)
    app.router.add_post(r"/services/Soap/{kind:[uc]}/{version:\d+\.\d+}/{org_id}", login)
