"""HTTP plumbing: endpoints and their keep-alive connection pools (standard library only)."""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

DEFAULT_PORT = 7200

#: Errors of a connection that was reused from the pool and found closed by the node (idle timeout, restart)
#: before it answered: the request is sent once more on a new connection to the same node.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError,
          http.client.BadStatusLine)


class Endpoint:
    """One node's HTTP address, with a small pool of idle keep-alive connections. Thread-safe."""

    max_idle = 8
    #: Idle connections older than this are not reused (the node closes idle ones after 5 minutes by default).
    idle_seconds = 60.0

    def __init__(self, url: str, ssl_context: Optional[ssl.SSLContext], default_https: bool = False) -> None:
        text = url.strip()
        if "://" not in text:
            text = ("https://" if default_https else "http://") + text
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"endpoint {url!r}: the scheme must be http or https")
        if not parts.hostname:
            raise ValueError(f"endpoint {url!r} names no host")
        if parts.query or parts.fragment:
            raise ValueError(f"endpoint {url!r}: no query or fragment, please")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError as e:
            raise ValueError(f"endpoint {url!r}: {e}") from None
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = port
        self.prefix = parts.path.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"{self.scheme}://{host}:{self.port}{self.prefix}"
        self._ssl = ssl_context
        if self.scheme == "https" and ssl_context is None:
            self._ssl = ssl.create_default_context()
        self._idle: List[Tuple[http.client.HTTPConnection, float]] = []
        self._lock = threading.Lock()
        #: Monotonic time before which the client avoids this node (it failed to connect or answer).
        self.down_until = 0.0

    def __repr__(self) -> str:
        return f"Endpoint({self.url!r})"

    def __str__(self) -> str:
        return self.url

    def mark_down(self, seconds: float) -> None:
        self.down_until = max(self.down_until, time.monotonic() + seconds)

    def mark_up(self) -> None:
        self.down_until = 0.0

    def is_down(self, now: float) -> bool:
        return now < self.down_until

    # MARK: connections

    def _new(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self._ssl)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _acquire(self, timeout: float) -> Tuple[http.client.HTTPConnection, bool]:
        now = time.monotonic()
        with self._lock:
            while self._idle:
                conn, since = self._idle.pop()
                if now - since < self.idle_seconds and conn.sock is not None:
                    conn.sock.settimeout(timeout)
                    return conn, True
                conn.close()
        return self._new(timeout), False

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()

    def roundtrip(self, method: str, path: str, body: Optional[bytes], headers: Mapping[str, str],
                  timeout: float) -> Tuple[int, http.client.HTTPMessage, bytes]:
        """Sends one request and reads its whole answer: (status, headers, body bytes). Raises OSError /
        http.client.HTTPException when the node cannot be reached or the connection breaks."""
        target = self.prefix + path
        conn, reused = self._acquire(timeout)
        try:
            try:
                return self._once(conn, method, target, body, headers)
            except _STALE:
                if not reused:
                    raise
                conn.close()
                conn = self._new(timeout)
                return self._once(conn, method, target, body, headers)
        except BaseException:
            conn.close()
            raise

    def _once(self, conn: http.client.HTTPConnection, method: str, target: str, body: Optional[bytes],
              headers: Mapping[str, str]) -> Tuple[int, http.client.HTTPMessage, bytes]:
        conn.request(method, target, body=body, headers=dict(headers))
        resp = conn.getresponse()
        data = resp.read()
        if resp.will_close:
            conn.close()
        else:
            self._release(conn)
        return resp.status, resp.headers, data


def describe(e: BaseException) -> str:
    """A short text for a connection problem."""
    if isinstance(e, TimeoutError) or type(e).__name__ == "timeout":
        return "timed out"
    text = str(e) or type(e).__name__
    return f"{type(e).__name__}: {text}" if type(e).__name__ not in text else text


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (delay-seconds form); None when absent or an HTTP date."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def headers_dict(h: http.client.HTTPMessage) -> Dict[str, str]:
    return {k: v for k, v in h.items()}
