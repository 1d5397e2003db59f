"""Org-level resources that say who and where you are: the identity URL, the API versions
list and `/limits` (every documented limit; the meters clients poll before big extracts)."""

from __future__ import annotations

from aiohttp import web

from forcebeam.emulator.state import EmulatorState
from forcebeam.emulator.state.limits import limits_body
from forcebeam.emulator.wire.http import (
    MAX_API_VERSION,
    MIN_API_VERSION,
    api_version_from,
    data_path,
    require_session,
    sf_json,
    state_of,
)
from forcebeam.emulator.wire.oauth import session_from_bearer, user_info

RELEASES = {62: "Winter '25", 63: "Spring '25", 64: "Summer '25", 65: "Winter '26",
            66: "Spring '26"}


async def identity(request: web.Request) -> web.Response:
    session = session_from_bearer(request)
    if session is None:
        return web.Response(text="Bad_OAuth_Token", status=403, content_type="text/plain")
    if (request.match_info["org_id"], request.match_info["user_id"]) != (
            session.org_id, session.user_id):
        return web.Response(text="Bad_Id", status=403, content_type="text/plain")
    return sf_json(user_info(request, session, openid=False))


async def versions(request: web.Request) -> web.Response:
    """`GET /services/data/`: public, no session, no Sforce-Limit-Info (as on a real org).
    Retired versions (below the org's `oldest_api_version`) are not listed."""
    oldest = max(MIN_API_VERSION, state_of(request).org.oldest_api_version)
    return web.json_response([
        {"label": RELEASES.get(major, f"API {major}"), "url": f"/services/data/v{major}.0",
         "version": f"{major}.0"} for major in range(oldest, MAX_API_VERSION + 1)])


async def limits(request: web.Request) -> web.Response:
    require_session(request, api="rest", kind="limits")
    state = state_of(request)
    return sf_json(limits_body(api_version_from(request), state.org, state.usage))


def register(app: web.Application, state: EmulatorState) -> None:
    app.router.add_get("/id/{org_id}/{user_id}", identity)
    app.router.add_get("/services/data", versions)
    app.router.add_get("/services/data/", versions)
    app.router.add_get(data_path("limits"), limits)
    app.router.add_get(data_path("limits/"), limits)
