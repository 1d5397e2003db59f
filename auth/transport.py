"""HTTP transport: verified TLS (explicit CA bundle pinned), mTLS client cert, retries, timeouts.

requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override ``Session.verify``; the adapter's
``send`` is the one place the environment cannot reach, so the CA bundle and client cert are
pinned there. There is no switch that turns verification off.
"""

from __future__ import annotations

import logging
import os
import shutil
import ssl
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from forcebeam.auth import secrets, tempfiles
from forcebeam.auth.config_types import MutualTlsConfig
from forcebeam.auth.errors import AuthError, ConfigError
from forcebeam.auth.responses import RESEND_STATUSES
from forcebeam.auth.retry import DEFAULT_RETRY, RetryPolicy
from forcebeam.auth.secrets.pem import normalize_certificates, normalize_private_key

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (15.0, 300.0)  # connect, read: Bulk result pages can take a while


class ThrottleClock:
    """Seconds spent waiting in retry back-off (Beam's cumulativeThrottlingSeconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = 0.0

    def add(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds


class CountingRetry(Retry):
    """urllib3 Retry that reports the time it sleeps (back-off and Retry-After)."""

    clock: ThrottleClock | None = None

    def new(self, **kw: Any) -> CountingRetry:
        retry = super().new(**kw)
        retry.clock = self.clock
        return retry  # type: ignore[return-value]

    def increment(self, method: str | None = None, url: str | None = None, *args: Any,
                  **kwargs: Any) -> Retry:
        """A certificate that does not verify is permanent: fail at once instead of retrying.

        Other TLS errors (a connection cut mid-handshake shows up as SSLEOFError) stay
        retriable like any dropped connection.
        """
        error = kwargs.get("error")
        if error is not None and _verification_failed(error):
            raise MaxRetryError(kwargs.get("_pool"), url or "", error) from error
        return super().increment(method, url, *args, **kwargs)

    def sleep(self, response: Any = None) -> None:
        started = time.monotonic()
        super().sleep(response)
        if self.clock is not None:
            self.clock.add(time.monotonic() - started)


def _verification_failed(error: BaseException) -> bool:
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError) or \
                "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        pending.extend([*current.args, current.__cause__, current.__context__])
    return False


#: Retries of one HTTP request (the unreachable-org message counts the tries: this + 1).
RETRY_ATTEMPTS = DEFAULT_RETRY.retries
#: A read that timed out after the request was sent may have done work: resent at most this
#: often whatever the policy allows.
READ_RETRIES = 2


def make_retry(clock: ThrottleClock | None = None,
               policy: RetryPolicy = DEFAULT_RETRY) -> Retry:
    """The retry policy at the HTTP level, as urllib3's ``Retry``: connect errors,
    ``auth.responses.RESEND_STATUSES`` (502/503/504) and Retry-After.

    urllib3 resends the first failure at once, then waits ``first_wait * 2 ** n`` up to
    ``max_wait``. POST/PATCH are included: Salesforce answers 502-504 before doing work, and
    the write stages read per-record results, so a duplicate is visible rather than silent.
    """
    total = policy.retries
    retry = CountingRetry(
        total=total, connect=total, read=min(READ_RETRIES, total), status=total,
        backoff_factor=policy.first_wait, backoff_max=policy.max_wait,
        status_forcelist=RESEND_STATUSES, respect_retry_after_header=True,
        allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "POST", "PATCH"}),
        raise_on_status=False)
    retry.clock = clock
    return retry


class ClientCertFiles:
    """The mTLS certificate (+chain) and key as 0600 files in a private directory.

    requests/urllib3 only take file paths for client certs, so resolved secrets must touch the
    disk; they live in a 0700 temp dir and are removed on ``close()`` (and at interpreter exit
    or garbage collection at the latest).
    """

    def __init__(self, config: MutualTlsConfig) -> None:
        try:
            certificate = normalize_certificates(secrets.resolve(config.certificate).reveal())
            if config.chain:
                certificate += normalize_certificates(secrets.resolve(config.chain).reveal())
        except ValueError as error:
            raise AuthError(f"mutual_tls.certificate is unusable: {error}", code="bad_certificate",
                            fix="store the PEM certificate (leaf first, then intermediates) "
                                "whose CA the org trusts for mutual TLS") from None
        try:
            key = normalize_private_key(secrets.resolve(config.private_key).reveal())
        except ValueError as error:
            raise AuthError(f"mutual_tls.private_key is unusable: {error}", code="bad_private_key",
                            fix="store the PEM private key of the mutual TLS certificate") \
                from None
        self.directory = Path(tempfiles.make_dir("mtls"))   # 0700, named for this process
        self.certificate_path = self._write("client-cert.pem", certificate)
        self.key_path = self._write("client-key.pem", key)
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.directory), True)

    def _write(self, name: str, data: bytes) -> Path:
        path = self.directory / name
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        return path

    @property
    def pair(self) -> tuple[str, str]:
        return str(self.certificate_path), str(self.key_path)

    def close(self) -> None:
        self._finalizer()


class PinnedTLSAdapter(HTTPAdapter):
    """Forces our CA bundle and client cert on every request, plus a default timeout."""

    def __init__(self, *, ca_bundle: str | None, client_cert: tuple[str, str] | None,
                 retry: Retry, **kwargs: Any) -> None:
        self._verify: str | bool = ca_bundle or True
        self._client_cert = client_cert
        super().__init__(max_retries=retry, pool_maxsize=32, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self._verify is not True:
            kwargs["verify"] = self._verify
        elif kwargs.get("verify") is False:
            kwargs["verify"] = True  # nothing may switch verification off
        if self._client_cert is not None:
            kwargs["cert"] = self._client_cert
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = DEFAULT_TIMEOUT
        return super().send(request, **kwargs)


TLS_FIX = ("the server's certificate did not verify: set the connection's ca_bundle to the PEM "
           "file of the CA that signed it (the emulator's info file names its ca_cert); "
           "verification cannot be turned off")


def check_ca_bundle(ca_bundle: str | None) -> str | None:
    """The file to verify against: the public CAs *plus* the connection's ``ca_bundle``."""
    if ca_bundle is None:
        return None
    if not Path(ca_bundle).is_file():
        raise ConfigError(f"CA bundle {ca_bundle} does not exist", path="ca_bundle",
                          suggestion="point ca_bundle at a PEM file of the CA(s) to trust "
                                     "(the emulator prints its ca_cert path)")
    return _combined_bundle(str(Path(ca_bundle).resolve()))


_bundle_lock = threading.Lock()
_bundles: dict[str, str] = {}


def _combined_bundle(ca_bundle: str) -> str:
    """certifi's CAs + ``ca_bundle`` in one file (requests takes a single path).

    ``ca_bundle`` *adds* trust (the emulator's CA, a TLS-inspecting proxy's CA) rather than
    replacing the public CAs, so hosts outside the proxy keep verifying. CA certificates are
    public, so the file needs no secrecy; it is removed at interpreter exit.
    """
    import atexit

    import certifi

    with _bundle_lock:
        combined = _bundles.get(ca_bundle)
        if combined is None:
            handle, combined = tempfiles.make_file("ca", suffix=".pem")
            with os.fdopen(handle, "wb") as file:
                file.write(Path(certifi.where()).read_bytes().rstrip() + b"\n")
                file.write(Path(ca_bundle).read_bytes())
            atexit.register(Path(combined).unlink, missing_ok=True)
            _bundles[ca_bundle] = combined
        return combined


def build_session(*, ca_bundle: str | None, client_cert: tuple[str, str] | None,
                  retry: Retry, adapter_class: type[PinnedTLSAdapter] = PinnedTLSAdapter,
                  **adapter_kwargs: Any) -> requests.Session:
    """A requests.Session for Salesforce: https only (plain http is refused by not mounting)."""
    session = requests.Session()
    session.mount("https://", adapter_class(ca_bundle=check_ca_bundle(ca_bundle),
                                            client_cert=client_cert, retry=retry,
                                            **adapter_kwargs))
    session.mount("http://", _RefuseHttp())
    session.headers["User-Agent"] = "forcebeam/0.1 " + session.headers.get("User-Agent", "")
    return session


class _RefuseHttp(HTTPAdapter):
    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        raise requests.exceptions.InvalidURL(
            f"refusing plain http to {request.url}: Salesforce is only reached over verified TLS")
