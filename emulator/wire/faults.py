"""The fault injector on the wire: an aiohttp middleware, the bandwidth pacer, and the
`/__emulator/faults` admin routes.

The decisions (which request fails, which session expires) belong to the model,
`emulator.state.faults.FaultInjector` (`state.faults`); this module only applies them to
requests and renders the resulting Salesforce errors (wire reference §0):
503 `[{"message":"Server temporarily unavailable, please retry.","errorCode":
"SERVER_UNAVAILABLE"}]`, limit 403 `[{"message":"TotalRequests Limit exceeded.",
"errorCode":"REQUEST_LIMIT_EXCEEDED"}]`. Session expiry is applied by `require_session`.

Where faults apply: everything under `/services/` on the org's listeners (see the model's
docstring); never the admin API (`/__emulator/`) or the Secret Manager listener.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from forcebeam.emulator.state import EmulatorState
from forcebeam.emulator.state.faults import FaultInjector, FaultSpecError
from forcebeam.emulator.wire.errors import RequestLimitExceededError, ServerUnavailableError
from forcebeam.emulator.wire.http import Handler, bearer_token, state_of

#: Pieces a shaped body is cut into: small enough that the pacing is smooth.
SHAPING_CHUNK_BYTES = 16 * 1024

_FAULT_PATH_PREFIX = "/services/"
_API_PATH_PREFIX = "/services/data/v"


class Pacer:
    """Writes chunks no faster than a bandwidth cap (megabits per second)."""

    def __init__(self, bandwidth_mbps: float | None) -> None:
        self._bytes_per_second = bandwidth_mbps * 125_000 if bandwidth_mbps else None
        self._started = time.monotonic()
        self._sent = 0

    async def write(self, response: web.StreamResponse, chunk: bytes | memoryview) -> None:
        await response.write(chunk)
        if self._bytes_per_second is None:
            return
        self._sent += len(chunk)
        ahead = self._sent / self._bytes_per_second - (time.monotonic() - self._started)
        if ahead > 0:
            await asyncio.sleep(ahead)


def pacer(state: EmulatorState) -> Pacer:
    """A per-response pacer at the fault spec's bandwidth cap (a no-op when none is set)."""
    return Pacer(state.faults.spec.bandwidth_mbps)


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Latency, dropped connections, 503s, the request limit and bandwidth shaping, as the
    org's fault injector decides them."""
    path = request.path
    if not path.startswith(_FAULT_PATH_PREFIX):
        return await handler(request)
    state = state_of(request)
    injector = state.faults
    spec = injector.spec
    if spec.latency_ms:
        await asyncio.sleep(spec.latency_ms / 1000.0)
    if injector.should_drop_connection():
        return await _drop_connection(request)
    if injector.should_fail_503():
        return ServerUnavailableError().response()
    if path.startswith(_API_PATH_PREFIX) and bearer_token(request):
        if injector.request_limit_exceeded():
            return RequestLimitExceededError().response()
    response = await handler(request)
    if spec.bandwidth_mbps and isinstance(response, web.Response) and not response.prepared:
        return await _shaped(request, state, response)
    return response


async def _shaped(request: web.Request, state: EmulatorState,
                  response: web.Response) -> web.StreamResponse:
    """Re-send a buffered response body at the configured bandwidth."""
    body = response.body
    if not isinstance(body, bytes | bytearray) or not body:
        return response
    shaped = web.StreamResponse(status=response.status, reason=response.reason,
                                headers=response.headers)
    if request.path.startswith(_API_PATH_PREFIX):
        shaped.headers.setdefault("Sforce-Limit-Info", state.org.limit_info())
    shaped.content_length = len(body)
    await shaped.prepare(request)
    paced = pacer(state)
    view = memoryview(body)
    for start in range(0, len(body), SHAPING_CHUNK_BYTES):
        await paced.write(shaped, view[start:start + SHAPING_CHUNK_BYTES])
    await shaped.write_eof()
    return shaped


async def _drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the socket without writing a status line (the client sees a reset)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError


def _injector(request: web.Request) -> FaultInjector:
    return state_of(request).faults


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(_injector(request).describe())


async def put_faults(request: web.Request) -> web.Response:
    injector = _injector(request)
    try:
        body = await request.json()
        injector.configure(body)
    except (json.JSONDecodeError, FaultSpecError) as error:
        return web.json_response({"error": str(error)}, status=400)
    return web.json_response(injector.describe())


async def delete_faults(request: web.Request) -> web.Response:
    injector = _injector(request)
    injector.clear()
    return web.json_response(injector.describe())


def register(app: web.Application, state: EmulatorState) -> None:
    """`GET/PUT/DELETE /__emulator/faults` (no auth, like the rest of the admin API); the
    middleware itself is installed by `emulator.app.build_app`."""
    for method, handler in (("GET", get_faults), ("PUT", put_faults),
                            ("DELETE", delete_faults)):
        app.router.add_route(method, "/__emulator/faults", handler)
