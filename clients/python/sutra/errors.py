"""Typed errors of the Sutra client.

Every error the client raises is a :class:`SutraError`. A node's answer is mapped by its HTTP status to one
subclass (the node's ``{"error": {"code", "message", ...}}`` body fills ``code``, ``message`` and ``details``);
a request that could reach no node raises :class:`SutraConnectionError`.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping, Optional, Type

__all__ = [
    "SutraError",
    "InvalidArgument",
    "Unauthenticated",
    "PermissionDenied",
    "NotFound",
    "MethodNotAllowed",
    "Conflict",
    "PreconditionFailed",
    "TooLarge",
    "NotLeader",
    "InternalError",
    "Unavailable",
    "ServerTimeout",
    "DiskFull",
    "SutraConnectionError",
    "error_from_response",
]


class SutraError(Exception):
    """Base of every error the client raises.

    Attributes:
        code: the node's error code (``"NOT_FOUND"``, ``"INVALID_ARGUMENT"``, ...), ``"CONNECTION"`` for
            :class:`SutraConnectionError`.
        status: the HTTP status (``None`` when no node answered).
        message: the node's message (human-readable, names the field or value at fault).
        details: the rest of the node's ``error`` object (e.g. ``leader_address`` of a ``NOT_LEADER``), plus
            ``endpoint`` (the node that answered) and ``attempts`` (how many attempts the call made).
    """

    status: Optional[int] = None
    default_code = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status: Optional[int] = None,
        details: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        if status is not None:
            self.status = status
        self.details: Dict[str, Any] = dict(details or {})

    _UNKNOWN = re.compile(r"unknown (?:field|query parameter) '([^']*)'")
    _LEADING = re.compile(r"^(?:item \d+: )?([a-z][a-z0-9_]*) (?:must|is|has|'|and|contains)")

    @property
    def field(self) -> Optional[str]:
        """The request field or query parameter the node's message names as at fault (``"strength"``,
        ``"embedding"``, an unknown field's name ...), or None. Mostly for :class:`InvalidArgument` and
        :class:`TooLarge`."""
        m = self._UNKNOWN.search(self.message) or self._LEADING.search(self.message)
        return m.group(1) if m else None

    @property
    def endpoint(self) -> Optional[str]:
        """The endpoint that gave this answer (None for a connection error over several)."""
        return self.details.get("endpoint")

    def __str__(self) -> str:
        where = f" ({self.details['endpoint']})" if self.details.get("endpoint") else ""
        status = f"{self.status} " if self.status is not None else ""
        return f"{status}{self.code}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"


class InvalidArgument(SutraError):
    """400: malformed or out-of-range input (bad JSON, id, type, dimension, value, unknown field).

    ``field`` names the field or query parameter at fault when the node's message names one.
    Sending the same request again fails again.
    """

    status = 400
    default_code = "INVALID_ARGUMENT"


class Unauthenticated(SutraError):
    """401: the node needs a bearer token and got none, or one it does not accept (unknown or revoked)."""

    status = 401
    default_code = "UNAUTHENTICATED"


class PermissionDenied(SutraError):
    """403: the token is valid but its role (read < write < admin) is too low for the request."""

    status = 403
    default_code = "PERMISSION_DENIED"


class NotFound(SutraError):
    """404: the concept (or route) does not exist."""

    status = 404
    default_code = "NOT_FOUND"


class MethodNotAllowed(SutraError):
    """405: the route does not take this method (``details['allow']`` lists the ones it takes)."""

    status = 405
    default_code = "METHOD_NOT_ALLOWED"


class Conflict(SutraError):
    """409: a pending cross-shard transaction held what the write touches, or the write's own transaction was
    aborted. Nothing was applied; the client retries it itself (with a new sequence) unless told not to."""

    status = 409
    default_code = "CONFLICT"


class PreconditionFailed(SutraError):
    """412: a compare-and-set condition (``if_absent``, ``if_content``, ``if_version``) did not hold; nothing
    changed."""

    status = 412
    default_code = "PRECONDITION_FAILED"


class TooLarge(SutraError):
    """413: over a limit (content, dimension, batch, body, path depth, k, associations of a deleted concept)."""

    status = 413
    default_code = "TOO_LARGE"


class NotLeader(SutraError):
    """421: a node-local admin route (``transfer_leader``) sent to a node that does not lead the shard;
    ``details`` has ``leader`` and ``leader_address``."""

    status = 421
    default_code = "NOT_LEADER"


class InternalError(SutraError):
    """500 (or any status the client does not know): the node failed; the message says how."""

    status = 500
    default_code = "INTERNAL"


class Unavailable(SutraError):
    """503: no leader yet, leadership changed mid-write, the leader unreachable from the node, shutting down.
    Retried by the client (through the other endpoints) until its retry budget is spent."""

    status = 503
    default_code = "UNAVAILABLE"


class ServerTimeout(SutraError):
    """504: the node timed out waiting (for a commit, a forwarded request). Retried like 503."""

    status = 504
    default_code = "TIMEOUT"


class DiskFull(SutraError):
    """507: the node's data disk is full or below its free-space floor: the write was refused, nothing applied
    (reads are still served). Retried like 503, then raised."""

    status = 507
    default_code = "DISK_FULL"


class SutraConnectionError(SutraError):
    """No node answered: connections refused, reset, timed out, or TLS failures. ``details['errors']`` maps
    each endpoint tried to the last problem seen there."""

    status = None
    default_code = "CONNECTION"


_BY_STATUS: Dict[int, Type[SutraError]] = {
    400: InvalidArgument,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    412: PreconditionFailed,
    413: TooLarge,
    421: NotLeader,
    500: InternalError,
    503: Unavailable,
    504: ServerTimeout,
    507: DiskFull,
}


def error_from_response(status: int, body: Any, headers: Optional[Mapping[str, str]] = None,
                        endpoint: Optional[str] = None) -> SutraError:
    """The typed error for a node's non-2xx answer (``body`` parsed JSON, or raw text/bytes)."""
    code: Optional[str] = None
    message = ""
    details: Dict[str, Any] = {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = dict(body["error"])
        code = err.pop("code", None)
        message = str(err.pop("message", ""))
        details.update(err)
    elif isinstance(body, (bytes, bytearray)):
        message = bytes(body[:500]).decode("utf-8", "replace")
    elif body is not None:
        message = str(body)[:500]
    if not message:
        message = f"HTTP {status}"
    headers = headers or {}
    for name in ("Allow", "Retry-After", "WWW-Authenticate", "Location"):
        value = headers.get(name)
        if value is not None:
            details[name.lower().replace("-", "_")] = value
    if endpoint:
        details["endpoint"] = endpoint
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = SutraError if status < 500 else InternalError
        code = code or f"HTTP_{status}"
    return cls(message, code=code, status=status, details=details)
