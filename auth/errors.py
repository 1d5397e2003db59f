"""The one exception root of forcebeam, and the three kinds every error of ours is.

Every exception auth/, stages/ and pipelines/ raise derives from :class:`ForcebeamError`, and
its class says which :class:`ErrorKind` it is (the model is Beam's ``requestresponse``, whose
three exception types tell a repeater what to do):

* ``INPUT`` (:class:`InputError`): the user's file, config or arguments are wrong; nothing is
  retried and ``forcebeam`` exits 2 (see :mod:`forcebeam.auth.exit_codes`).
* ``FATAL`` (:class:`FatalError`): the org (or this machine) answered no - a refused login, an
  INVALID_FIELD, a failed Bulk job. Retrying will not help; a person must act. Exit 1.
* ``TRANSIENT`` (:class:`TransientError`): it may pass by itself - a 503, a dropped
  connection, UNABLE_TO_LOCK_ROW, the daily request limit. The retry policy
  (:mod:`forcebeam.auth.retry`) retries it where it arises; if it outlasts the policy the run
  fails with exit 1 and a rerun resumes.

Which Salesforce answer is which kind is decided in one place: :mod:`forcebeam.auth.responses`.

Every error here is meant to be read by a person running a pipeline: it names what was wrong
(file + field, Salesforce's code) and what to do about it. None of them ever carries a secret
value: messages are built from references and Salesforce's own error codes only.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import ClassVar


class ErrorKind(enum.Enum):
    """Whose move it is after a failure: the user's (INPUT), a person's (FATAL), time's."""

    INPUT = "input"
    FATAL = "fatal"
    TRANSIENT = "transient"


class ForcebeamError(Exception):
    """Base class so callers can catch every forcebeam failure in one clause.

    ``kind`` is set by the class (through :class:`InputError`, :class:`FatalError` or
    :class:`TransientError`), never guessed from the message or a built-in base type.
    """

    kind: ClassVar[ErrorKind] = ErrorKind.FATAL


class InputError(ForcebeamError):
    """The user's input (pipeline file, stage config, connection, arguments) is wrong."""

    kind = ErrorKind.INPUT


class FatalError(ForcebeamError):
    """The org's (or the machine's) final answer: not retried, a person must act."""

    kind = ErrorKind.FATAL


class TransientError(ForcebeamError):
    """A failure that may pass by itself: the retry policy retries it where it arises."""

    kind = ErrorKind.TRANSIENT


def kind_of(error: BaseException) -> ErrorKind | None:
    """The kind of one of our errors; None for anything that is not ours."""
    return error.kind if isinstance(error, ForcebeamError) else None


class ConfigError(InputError, ValueError):
    """A connection (or other) config is invalid: names the file, the field path and a fix."""

    def __init__(self, message: str, *, source: str = "<config>", path: str = "",
                 suggestion: str = "") -> None:
        self.message = message
        self.source = source
        self.path = path
        self.suggestion = suggestion
        where = f"{source}: {path}" if path else source
        text = f"{where}: {message}"
        if suggestion:
            text += f" — {suggestion}"
        super().__init__(text)


class SecretError(FatalError):
    """A secret reference could not be resolved (or written back).

    Holds the *reference* (e.g. ``env://SF_KEY``), never the value.
    """

    def __init__(self, reference: str, message: str) -> None:
        self.reference = reference
        self.message = message
        super().__init__(f"secret {reference}: {message}")


class AuthError(FatalError):
    """A permanent authentication failure: retrying will not help, a person must act.

    ``code`` is Salesforce's error (``invalid_grant: user hasn't approved this consumer``) and
    ``fix`` says what to change in Salesforce or in the connection.
    """

    def __init__(self, message: str, *, code: str = "", fix: str = "") -> None:
        self.message = message
        self.code = code
        self.fix = fix
        text = message
        if code:
            text += f" [{code}]"
        if fix:
            text += f". Fix: {fix}"
        super().__init__(text)


class TransientAuthError(TransientError):
    """Login failed for a reason that may pass (network, 5xx after retries). Not remembered."""


class OrgUnreachableError(TransientError):
    """The org's host did not answer (refused, reset, timed out) after the bounded retries."""

    def __init__(self, host: str, reason: str, attempts: int) -> None:
        self.host = host
        self.reason = reason
        self.attempts = attempts
        super().__init__(
            f"cannot reach the org at {host} ({reason}) after {attempts} attempts. Check: the "
            "connection's login_url (and the instance_url it logs in to) names the right "
            "host and port; this machine's network, VPN or proxy (HTTPS_PROXY) lets it "
            "through; the org is up (https://status.salesforce.com). Nothing further was sent")

    def __reduce__(self):
        return (type(self), (self.host, self.reason, self.attempts))


class SalesforceApiError(FatalError):
    """A Salesforce API call failed with an error response (other than session expiry).

    This class is the org's final answer (INVALID_FIELD, NOT_FOUND, ...); answers that may
    pass are the subclasses below that are also :class:`TransientError` (listed first, so
    their ``kind`` is TRANSIENT). :func:`forcebeam.auth.responses.classify` picks the class.
    """

    def __init__(self, status: int, error_code: str, message: str,
                 fields: Sequence[str] | None = None) -> None:
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = list(fields or [])
        text = f"Salesforce API error {status} {error_code}: {message}"
        if self.fields:
            text += f" (fields: {', '.join(self.fields)})"
        super().__init__(text)

    def __reduce__(self):  # keep the typed fields when Beam pickles an error across processes
        return (type(self), (self.status, self.error_code, self.message, self.fields))


class RetriableApiError(TransientError, SalesforceApiError):
    """An error answer that may pass (UNABLE_TO_LOCK_ROW, SERVER_UNAVAILABLE, a 503 that
    outlasted the HTTP retries): worth sending again after a back-off."""


class ApiQuotaExceeded(TransientError, SalesforceApiError):  # noqa: N818 - name fixed by the API contract
    """The org's daily API quota is used up, or the connection's ``max_api_usage`` is reached.

    Transient (the 24 h window rolls), but far longer than any in-run back-off: stages treat
    this as "stop cleanly and resume later", never as a retry.
    """


class ApiVersionRetired(SalesforceApiError):  # noqa: N818 - reads as what happened
    """The connection's ``api_version`` is retired in the org: REST answers 410 GONE, Bulk 2.0
    400 InvalidVersion (Salesforce API End-of-Life policy). A config change, never a retry."""

    @classmethod
    def for_version(cls, status: int, error_code: str, api_version: str) -> ApiVersionRetired:
        return cls(status, error_code,
                   f"API version {api_version} is retired in this org. Fix: set the "
                   "connection's api_version to a supported version such as \"62.0\" "
                   "(Salesforce retires old versions under its API End-of-Life policy; "
                   "31.0-40.0 retire in Summer '28)")
