"""A Google-like compute metadata server (plain HTTP, its own loopback port).

Just what google-auth needs to behave as on a GCE or Dataflow worker when
``GCE_METADATA_HOST`` / ``GCE_METADATA_IP`` point here: ``_metadata.ping`` (GET ``/``, answered
with ``Metadata-Flavor: Google``), ``get_service_account_info`` (the default service account,
``?recursive=true``), ``.../token`` (what ``google.auth.default()`` refreshes) and
``IDTokenCredentials`` with ``use_metadata_identity_endpoint``
(``.../identity?audience=A&format=full``). Like the real server it refuses requests without
the ``Metadata-Flavor: Google`` header, and every answer carries that header.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from forcebeam.emulator.state import EmulatorState
from forcebeam.emulator.state.token_exchange import PROJECT_ID

ROOT = "/computeMetadata/v1"
FLAVOR = {"Metadata-Flavor": "Google"}


def _state(request: web.Request) -> EmulatorState:
    return request.app["state"]


def _text(text: str, status: int = 200, content_type: str = "application/text") -> web.Response:
    return web.Response(text=text, status=status, content_type=content_type, headers=FLAVOR)


def _flavored(request: web.Request) -> bool:
    return request.headers.get("Metadata-Flavor", "").lower() == "google"


def _refused() -> web.Response:
    return web.Response(status=403, content_type="text/html", headers=FLAVOR,
                        text="Missing required header: Metadata-Flavor\n")


def _known_account(request: web.Request) -> bool:
    name = request.match_info.get("account", "default")
    return name in ("default", _state(request).identity.id_token_issuer.service_account)


async def root(request: web.Request) -> web.Response:
    """The ping target: any answer with `Metadata-Flavor: Google` means "on GCE"."""
    return _text("computeMetadata/\n")


async def service_account(request: web.Request) -> web.Response:
    if not _flavored(request):
        return _refused()
    if not _known_account(request):
        return _text("Not Found\n", status=404)
    email = _state(request).identity.id_token_issuer.service_account
    if request.query.get("recursive", "").lower() == "true":
        return web.json_response({"aliases": ["default"], "email": email,
                                  "scopes": ["https://www.googleapis.com/auth/cloud-platform"]},
                                 headers=FLAVOR)
    return _text("aliases\nemail\nidentity\nscopes\ntoken\n")


async def email(request: web.Request) -> web.Response:
    if not _flavored(request):
        return _refused()
    if not _known_account(request):
        return _text("Not Found\n", status=404)
    return _text(_state(request).identity.id_token_issuer.service_account)


async def identity(request: web.Request) -> web.Response:
    """An RS256 ID token for the service account, with the audience asked for."""
    if not _flavored(request):
        return _refused()
    if not _known_account(request):
        return _text("Not Found\n", status=404)
    audience = request.query.get("audience", "")
    if not audience:
        return _text("non-empty audience parameter required\n", status=400)
    state = _state(request)
    token = state.identity.id_token_issuer.id_token(
        audience, full=request.query.get("format") == "full")
    state.counters.id_token_issued()
    return _text(token)


async def access_token(request: web.Request) -> web.Response:
    """An OAuth access token for the service account, as google.auth.default() refreshes it on
    GCE (the emulator's Google endpoints are anonymous, so it is only ever a placeholder)."""
    if not _flavored(request):
        return _refused()
    if not _known_account(request):
        return _text("Not Found\n", status=404)
    return web.json_response({"access_token": "ya29.forcebeam-emulator-" + secrets.token_hex(16),
                              "expires_in": 3599, "token_type": "Bearer"}, headers=FLAVOR)


async def project_id(request: web.Request) -> web.Response:
    if not _flavored(request):
        return _refused()
    return _text(PROJECT_ID)


def register(app: web.Application, state: EmulatorState) -> None:
    router = app.router
    router.add_get("/", root)
    account = ROOT + "/instance/service-accounts/{account}"
    router.add_get(account + "/", service_account)
    router.add_get(account, service_account)
    router.add_get(account + "/email", email)
    router.add_get(account + "/identity", identity)
    router.add_post(account + "/identity", identity)  # google-auth POSTs for bound tokens
    router.add_get(account + "/token", access_token)
    router.add_get(ROOT + "/project/project-id", project_id)
