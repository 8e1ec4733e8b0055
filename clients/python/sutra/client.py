"""The synchronous Sutra client over the HTTP/JSON API (``docs/PROTOCOL.md``)."""

from __future__ import annotations

import http.client
import json
import logging
import random
import secrets
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote, urlencode

from . import __version__
from ._transport import Endpoint, describe, parse_retry_after
from .errors import (
    SutraConnectionError,
    SutraError,
    error_from_response,
)
from .models import (
    AssociateItem,
    AssociationResult,
    BatchItemResult,
    BatchResult,
    ClusterInfo,
    Concept,
    ConceptId,
    DeleteItem,
    Neighbor,
    PathResult,
    PutItem,
    SearchFilter,
    SearchHit,
    Stats,
    TransactionStats,
    WriteResult,
    concept_id,
    content_fields,
)

__all__ = ["Client", "RetryPolicy", "UNSET"]

#: Retries are logged here at DEBUG (``logging.getLogger("sutra").setLevel(logging.DEBUG)`` to see them).
log = logging.getLogger("sutra")


class _Unset:
    """Marks a ``patch`` field that is not given (kept as it is)."""

    _instance: Optional["_Unset"] = None

    def __new__(cls) -> "_Unset":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


@dataclass(frozen=True)
class RetryPolicy:
    """How a call is retried.

    A call is attempted at most ``max_attempts`` times and for at most ``total_timeout`` seconds (attempts and
    waits together); each attempt waits at most the client's ``timeout`` for its answer.

    Retried: a connection that cannot be made or breaks, an attempt with no answer in time, and the answers
    503 ``UNAVAILABLE``, 504 ``TIMEOUT`` and 507 ``DISK_FULL`` — each on the next endpoint (the node that failed
    to connect is avoided for ``cooldown`` seconds). Waits are exponential backoff with full jitter (uniform in
    [0, min(``max_delay``, ``base_delay`` · 2^n)]), at least the node's ``Retry-After`` (capped at
    ``max_retry_after``); a connection failure moves on to a node not yet tried in this call at once.

    409 ``CONFLICT`` on a write (nothing was applied) is retried as a new write — a new sequence, the same
    Idempotency-Key — when ``retry_conflicts`` is true. Every other answer is final and raised at once.
    """

    max_attempts: int = 12
    total_timeout: float = 15.0
    base_delay: float = 0.05
    max_delay: float = 1.0
    max_retry_after: float = 2.0
    cooldown: float = 1.0
    retry_conflicts: bool = True

    @classmethod
    def none(cls) -> "RetryPolicy":
        """One attempt, no retry."""
        return cls(max_attempts=1)


_CONSISTENCIES = ("linearizable", "stale")
_DIRECTIONS = {"out": "out", "outgoing": "out", "in": "in", "incoming": "in", "both": "both"}

#: Errors of an attempt that did not get an answer (the node may or may not have received the request).
_NO_ANSWER = (OSError, http.client.HTTPException)

#: How a request identifies itself so that a retry applies once.
_READ, _SESSION, _KEYED, _PLAIN_WRITE = "read", "session", "keyed", "plain"


class _LostAnswer(ConnectionResetError):
    """Raised by the test hook ``_lose_next_answers``: the node answered, the client acts as if it had not."""


class Client:
    """A client of a Sutra cluster over HTTP/JSON. Thread-safe: share one per process.

    Any node answers any request (it forwards to the shard's leader), so ``endpoints`` may name any of the
    nodes — one is enough, more give failover. Calls start on the next endpoint in turn (round robin) and move
    to the next one when a node cannot be reached or answers 503; see :class:`RetryPolicy`.

    Writes are safe to retry: an id-less create sends an ``Idempotency-Key`` (a new UUID per call, reused on
    its retries; the node derives the concept's id from it, so a retry never makes a second concept); every
    other write sends this client's ``X-Sutra-Client-Id`` and a ``X-Sutra-Sequence`` (one per call, reused on
    its retries), so a write retried after a lost answer applies once and is answered with its first outcome.

    Args:
        endpoints: node HTTP addresses: ``"http://10.0.0.1:7200"``, ``"https://node2:7200"`` or ``"host:port"``
            (https when ``ca_file`` is given); a str may hold several, comma-separated.
        token: the bearer token (``Authorization: Bearer``) for nodes started with a tokens file.
        ca_file: the CA bundle that verifies the nodes' certificates (nodes with ``--client-tls-cert``); the
            certificate must name the host or IP dialled.
        cert_file, key_file: a client certificate, for nodes with ``--client-tls-ca``.
        ssl_context: a ready ``ssl.SSLContext`` instead of the three above.
        timeout: seconds one attempt waits for its answer.
        retries: a :class:`RetryPolicy`, or an int: the maximum number of attempts (1: no retry).
        consistency: the default of reads: ``"linearizable"`` (the default) or ``"stale"`` (the answering node's
            own replica, may lag).
        round_robin: start each call on the next endpoint (True), or stay on the one that last worked (False).
        discovery_interval: seconds between two reads of the cluster's node list (``GET /v1/cluster``) while
            the client makes calls: nodes added since are tried too, nodes removed no longer, and the given
            endpoints always stay — so a client follows a cluster whose machines were all replaced while it ran.
            ``None``: only the given endpoints.
    """

    def __init__(
        self,
        endpoints: Union[str, Sequence[str]] = ("http://127.0.0.1:7200",),
        token: Optional[str] = None,
        ca_file: Optional[str] = None,
        timeout: float = 5.0,
        retries: Union[RetryPolicy, int, None] = None,
        *,
        cert_file: Optional[str] = None,
        key_file: Optional[str] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
        consistency: str = "linearizable",
        round_robin: bool = True,
        user_agent: Optional[str] = None,
        discovery_interval: Optional[float] = 5.0,
    ) -> None:
        if isinstance(endpoints, str):
            endpoints = [e for e in endpoints.split(",") if e.strip()]
        endpoints = list(endpoints)
        if not endpoints:
            raise ValueError("give at least one endpoint")
        if ssl_context is None and (ca_file or cert_file):
            ssl_context = ssl.create_default_context(cafile=ca_file)
            if cert_file:
                ssl_context.load_cert_chain(cert_file, key_file)
        self._endpoints = [Endpoint(e, ssl_context, default_https=ca_file is not None or ssl_context is not None)
                           for e in endpoints]
        self._seeds = list(self._endpoints)
        if discovery_interval is not None and discovery_interval <= 0:
            raise ValueError("discovery_interval must be > 0 (or None: no discovery)")
        self.discovery_interval = discovery_interval
        self._discovered_at = time.monotonic()
        self._discovering = False
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.timeout = float(timeout)
        if retries is None:
            retries = RetryPolicy()
        elif isinstance(retries, int) and not isinstance(retries, bool):
            if retries < 1:
                raise ValueError("retries (an int) is the number of attempts: 1 or more")
            retries = RetryPolicy(max_attempts=retries)
        if not isinstance(retries, RetryPolicy):
            raise TypeError("retries is a RetryPolicy or an int")
        self.retry = retries
        self.consistency = self._consistency(consistency)
        self.round_robin = round_robin
        #: This client's id for retried writes (random, non-zero, 63 bits: it fits the node's u64).
        self.client_id = secrets.randbits(63) or 1
        self._sequence = 0
        self._lock = threading.Lock()
        self._cursor = 0
        self._lost_answers = 0
        self._lost_answer_delay = 0.0
        self._headers = {
            "Accept": "application/json",
            "User-Agent": user_agent or f"sutra-python/{__version__}",
        }
        if token:
            token = token.strip()
            if any(c in token for c in "\r\n"):
                raise ValueError("the token holds a line break")
            self._headers["Authorization"] = f"Bearer {token}"

    # MARK: lifecycle

    def close(self) -> None:
        """Closes the pooled connections (the client may still be used: it opens new ones)."""
        with self._lock:
            endpoints = list(self._endpoints) + [e for e in self._seeds if e not in self._endpoints]
        for e in endpoints:
            e.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def endpoints(self) -> List[str]:
        return [e.url for e in self._endpoints]

    def __repr__(self) -> str:
        return f"Client(endpoints={self.endpoints!r})"

    # MARK: concepts

    def put(
        self,
        *,
        id: Optional[ConceptId] = None,
        content: Union[str, bytes, None] = None,
        embedding: Optional[Sequence[float]] = None,
        strength: Optional[float] = None,
        confidence: Optional[float] = None,
        if_absent: bool = False,
        if_content: Union[str, bytes, None] = None,
        if_version: Optional[int] = None,
        idempotency_key: Optional[str] = None,
    ) -> WriteResult:
        """Creates or replaces a concept; answers its id and the write's version.

        ``content`` is text (str) or bytes; ``embedding`` must have the cluster's dimension; ``strength`` and
        ``confidence`` are in [0, 1] (default 1). Without ``id`` the node creates a concept whose id it derives
        from the call's Idempotency-Key (``idempotency_key``, default a new UUID): retried after a lost answer —
        by this client, or by you with the same key — it answers the first attempt's id and version
        (``replayed`` True) instead of creating a second concept.

        With an ``id``, at most one condition: ``if_absent`` (only if it does not exist), ``if_content`` (only
        if its content is this), ``if_version`` (only if its ``updated_version`` is this); unmet:
        :class:`~sutra.PreconditionFailed`, nothing changed.
        """
        body: Dict[str, Any] = {}
        if id is not None:
            body["id"] = concept_id(id)
        body.update(content_fields(content))
        if embedding is not None:
            body["embedding"] = [float(x) for x in embedding]
        if strength is not None:
            body["strength"] = float(strength)
        if confidence is not None:
            body["confidence"] = float(confidence)
        conditions = self._conditions(if_absent=if_absent, if_content=if_content, if_version=if_version)
        if id is None:
            if conditions:
                raise ValueError("a create without id takes no if_* condition (its Idempotency-Key already makes "
                                 "it create-if-absent)")
            key = idempotency_key or str(uuid.uuid4())
            _, headers, reply = self._request("POST", "/v1/concepts", body=body, mode=_KEYED, idempotency_key=key)
        else:
            if idempotency_key is not None:
                raise ValueError("idempotency_key is for creates without id (a put with an id is retried by sequence)")
            body.update(conditions)
            _, headers, reply = self._request("POST", "/v1/concepts", body=body, mode=_SESSION)
        return WriteResult(id=reply["id"], version=int(reply["version"]),
                           replayed=(headers.get("Idempotent-Replayed") or "").lower() == "true")

    def create(self, content: Union[str, bytes, None] = None, **kwargs: Any) -> WriteResult:
        """``put`` without an id (the node makes it): ``client.create("hello", embedding=[...])``."""
        if "id" in kwargs:
            raise TypeError("create takes no id; use put(id=...)")
        return self.put(content=content, **kwargs)

    def get(self, id: ConceptId, *, consistency: Optional[str] = None) -> Optional[Concept]:
        """The concept, or **None** when it does not exist (no exception for a missing concept; every other
        problem raises)."""
        status, _, reply = self._request("GET", f"/v1/concepts/{self._path_id(id)}",
                                         query=self._read_query(consistency), accept=(404,))
        if status == 404:
            if isinstance(reply, dict) and reply.get("error", {}).get("code") == "NOT_FOUND":
                return None
            raise error_from_response(status, reply)
        return Concept.from_json(reply)

    def exists(self, id: ConceptId, *, consistency: Optional[str] = None) -> bool:
        """Whether the concept exists (``HEAD``, no body transferred)."""
        status, _, _ = self._request("HEAD", f"/v1/concepts/{self._path_id(id)}",
                                     query=self._read_query(consistency), accept=(404,))
        return status == 200

    def patch(
        self,
        id: ConceptId,
        *,
        content: Union[str, bytes, None] = UNSET,
        embedding: Optional[Sequence[float]] = UNSET,
        strength: Optional[float] = None,
        confidence: Optional[float] = None,
        if_content: Union[str, bytes, None] = None,
        if_version: Optional[int] = None,
    ) -> WriteResult:
        """Changes only the fields given, atomically at the shard (no lost update between a read and the write).

        ``embedding=None`` removes the embedding; fields not given are kept. Optionally under one condition:
        ``if_content`` or ``if_version`` (the concept's ``updated_version``). Raises
        :class:`~sutra.NotFound` when the concept does not exist, :class:`~sutra.PreconditionFailed` when the
        condition does not hold.
        """
        body: Dict[str, Any] = {}
        if content is not UNSET:
            if content is None:
                raise ValueError("content cannot be removed; give b'' for empty content")
            body.update(content_fields(content))
        if embedding is not UNSET:
            body["embedding"] = None if embedding is None else [float(x) for x in embedding]
        if strength is not None:
            body["strength"] = float(strength)
        if confidence is not None:
            body["confidence"] = float(confidence)
        body.update(self._conditions(if_content=if_content, if_version=if_version))
        _, _, reply = self._request("PATCH", f"/v1/concepts/{self._path_id(id)}", body=body, mode=_SESSION)
        return WriteResult(id=reply["id"], version=int(reply["version"]))

    def delete(self, id: ConceptId) -> WriteResult:
        """Deletes the concept **and every association that touches it**, on every shard, in one transaction.
        Raises :class:`~sutra.NotFound` when it does not exist, :class:`~sutra.TooLarge` when it has more than
        998 associations (remove some first)."""
        _, _, reply = self._request("DELETE", f"/v1/concepts/{self._path_id(id)}", mode=_SESSION)
        return WriteResult(id=reply["id"], version=int(reply["version"]))

    # MARK: associations

    def associate(self, source: ConceptId, target: ConceptId, type: Optional[str] = None,
                  confidence: Optional[float] = None) -> AssociationResult:
        """Adds the association ``source → target`` (``type`` one of ``semantic`` (default), ``causal``,
        ``temporal``, ``hierarchical``, ``compositional``; ``confidence`` in [0, 1]). Across shards it is one
        transaction: both edge records or neither."""
        body: Dict[str, Any] = {"source": concept_id(source), "target": concept_id(target)}
        if type is not None:
            body["type"] = type
        if confidence is not None:
            body["confidence"] = float(confidence)
        _, _, reply = self._request("POST", "/v1/associations", body=body, mode=_SESSION)
        return AssociationResult(source=reply["source"], target=reply["target"], version=int(reply["version"]))

    def dissociate(self, source: ConceptId, target: ConceptId, type: Optional[str] = None) -> AssociationResult:
        """Removes the association (both edge records at once); one that is not there is not an error."""
        query = {"source": concept_id(source), "target": concept_id(target)}
        if type is not None:
            query["type"] = type
        _, _, reply = self._request("DELETE", "/v1/associations", query=query, mode=_SESSION)
        return AssociationResult(source=reply["source"], target=reply["target"], version=int(reply["version"]))

    def neighbors(self, id: ConceptId, direction: str = "both", type: Optional[str] = None, *,
                  consistency: Optional[str] = None) -> List[Neighbor]:
        """The concept's associations: ``direction`` ``"out"``, ``"in"`` or ``"both"``, optionally one ``type``.
        Raises :class:`~sutra.NotFound` when the concept does not exist."""
        d = _DIRECTIONS.get(direction)
        if d is None:
            raise ValueError(f"direction is out, in or both, not {direction!r}")
        query = self._read_query(consistency)
        query["direction"] = d
        if type is not None:
            query["type"] = type
        _, _, reply = self._request("GET", f"/v1/concepts/{self._path_id(id)}/neighbors", query=query)
        return [Neighbor.from_json(n) for n in reply.get("neighbors", [])]

    def path(self, from_id: ConceptId, to_id: ConceptId, max_depth: Optional[int] = None, *,
             consistency: Optional[str] = None) -> PathResult:
        """A shortest path along outgoing associations, at most ``max_depth`` steps (1…20, default 6)."""
        query = self._read_query(consistency)
        query.update({"from": concept_id(from_id), "to": concept_id(to_id)})
        if max_depth is not None:
            query["max_depth"] = str(int(max_depth))
        _, _, reply = self._request("GET", "/v1/path", query=query)
        return PathResult.from_json(reply)

    # MARK: search

    def search(
        self,
        vector: Optional[Sequence[float]] = None,
        k: int = 10,
        ef: Optional[int] = None,
        exact: bool = False,
        filter: Union[SearchFilter, Mapping[str, Any], None] = None,
        *,
        text: Optional[str] = None,
        consistency: Optional[str] = None,
    ) -> List[SearchHit]:
        """The ``k`` concepts nearest ``vector`` (or ``text=``) by cosine distance, nearest first.

        ``ef``: the HNSW search breadth (default: the node's for k); ``exact``: brute force instead of the index;
        ``filter``: :class:`~sutra.SearchFilter` or a dict with ``min_strength``, ``min_confidence``,
        ``association_type``; ``text``: search by a text the node embeds through its embedding service
        (``--embedding-service``; without one: :class:`~sutra.Unavailable`). A linearizable search waits until the
        node's index holds every applied write.
        """
        if (vector is None) == (text is None):
            raise ValueError("give a vector or text=, one of them")
        body: Dict[str, Any] = {"k": int(k)}
        if text is not None:
            body["text"] = str(text)
        else:
            body["vector"] = [float(x) for x in vector]
        if ef is not None:
            body["ef"] = int(ef)
        if exact:
            body["exact"] = True
        if filter is not None:
            f = filter.to_json() if isinstance(filter, SearchFilter) else {k2: v for k2, v in dict(filter).items()
                                                                           if v is not None}
            body["filter"] = f
        _, _, reply = self._request("POST", "/v1/search", query=self._read_query(consistency), body=body)
        return [SearchHit.from_json(h) for h in reply.get("results", [])]

    # MARK: batch

    def batch(self, items: Iterable[Union[PutItem, DeleteItem, AssociateItem, Mapping[str, Any]]],
              idempotency_key: Optional[str] = None) -> BatchResult:
        """Up to 1000 puts, deletes and associations, all or nothing (one transaction across shards).

        Items are :class:`~sutra.PutItem`, :class:`~sutra.DeleteItem`, :class:`~sutra.AssociateItem` or dicts
        in the wire shape (``{"op": "put", "content": ...}``). Id-less puts get ids derived from the batch's
        Idempotency-Key (``idempotency_key``, default a new UUID) and their position, so a retry writes the same
        concepts; the answer lists every item's id in request order. A delete item removes the concept and the
        edges stored on its own shard only (use :meth:`delete` for a concept with associations).
        """
        wire: List[Dict[str, Any]] = []
        for i, item in enumerate(items):
            if isinstance(item, (PutItem, DeleteItem, AssociateItem)):
                wire.append(item.to_json())
            elif isinstance(item, Mapping):
                wire.append(dict(item))
            else:
                raise TypeError(f"batch item {i} is a {type(item).__name__}; give PutItem, DeleteItem, "
                                "AssociateItem or a dict")
        key = idempotency_key or str(uuid.uuid4())
        _, _, reply = self._request("POST", "/v1/batch", body={"items": wire}, mode=_SESSION, idempotency_key=key)
        results = [BatchItemResult(op=r.get("op", ""), id=r.get("id"), source=r.get("source"), target=r.get("target"))
                   for r in reply.get("items", [])]
        return BatchResult(items=results, version=int(reply["version"]))

    # MARK: operations

    def flush(self, compact_log: bool = False) -> int:
        """Snapshots every shard (admin); answers how many snapshots are durable. ``compact_log``: the log then
        keeps nothing the snapshots cover."""
        query = {"compact": "log"} if compact_log else None
        _, _, reply = self._request("POST", "/v1/flush", query=query, mode=_PLAIN_WRITE)
        return int(reply.get("snapshots", 0))

    def cluster(self, *, endpoint: Optional[str] = None) -> ClusterInfo:
        """Nodes and shards (leader, term, role, indexes, concepts, replica lag) as one node sees them."""
        _, _, reply = self._request("GET", "/v1/cluster", endpoint=endpoint)
        return ClusterInfo.from_json(reply)

    def health(self, *, endpoint: Optional[str] = None) -> Dict[str, Any]:
        """``GET /health`` of one node (the given one, else the next in turn): ``{"healthy": True, ...}`` while
        its process serves HTTP."""
        _, _, reply = self._request("GET", "/health", endpoint=endpoint)
        return reply

    def ready(self, *, endpoint: Optional[str] = None) -> bool:
        """Whether one node (the given one, else the next in turn) is ready: every local shard knows its leader
        and it is not shutting down. A node that cannot be reached raises :class:`~sutra.SutraConnectionError`."""
        status, _, _ = self._request("GET", "/ready", endpoint=endpoint, accept=(503,), retry_statuses=(),
                                     policy=RetryPolicy.none() if endpoint else None)
        return status == 200

    def stats(self, *, endpoint: Optional[str] = None) -> Stats:
        """Counts over one node's replicas (concepts, edges, vectors, ...)."""
        _, _, reply = self._request("GET", "/stats", endpoint=endpoint)
        return Stats.from_json(reply)

    def transaction_stats(self, *, endpoint: Optional[str] = None) -> TransactionStats:
        """Cross-shard transactions on the shards one node leads."""
        _, _, reply = self._request("GET", "/transaction-stats", endpoint=endpoint)
        return TransactionStats.from_json(reply)

    def metrics(self, *, endpoint: Optional[str] = None) -> str:
        """One node's Prometheus metrics (text)."""
        _, _, reply = self._request("GET", "/metrics", endpoint=endpoint)
        return reply.decode("utf-8", "replace") if isinstance(reply, (bytes, bytearray)) else str(reply)

    def digest(self, *, endpoint: Optional[str] = None) -> Dict[str, Any]:
        """Content digests of one node's shard replicas and the cluster digest of them (admin)."""
        _, _, reply = self._request("GET", "/v1/digest", endpoint=endpoint)
        return reply

    def transfer_leader(self, shard: int, to: Optional[int] = None) -> Dict[str, Any]:
        """Asks the shard's leader to hand its leadership to node ``to`` (default: its most caught-up peer;
        admin). Finds the leader itself (``GET /v1/cluster``, then the 421 answer's ``leader_address``)."""
        query = {"shard": str(int(shard))}
        if to is not None:
            query["to"] = str(int(to))
        info = self.cluster()
        target: Optional[str] = None
        leader = info.leaders.get(int(shard), 0)
        for n in info.nodes:
            if n.id == leader and n.http_address:
                target = self._sibling(n.http_address)
        for _ in range(3):
            status, _, reply = self._request("POST", "/v1/admin/transfer-leader", query=query, mode=_PLAIN_WRITE,
                                             endpoint=target, accept=(421,))
            if status != 421:
                return reply
            address = reply.get("error", {}).get("leader_address") if isinstance(reply, dict) else None
            if not address:
                raise error_from_response(status, reply)
            target = self._sibling(address)
        raise error_from_response(status, reply)

    # MARK: internals

    @staticmethod
    def _consistency(c: Optional[str]) -> str:
        if c not in _CONSISTENCIES:
            raise ValueError(f"consistency is 'linearizable' or 'stale', not {c!r}")
        return c  # type: ignore[return-value]

    def _read_query(self, consistency: Optional[str]) -> Dict[str, str]:
        c = self.consistency if consistency is None else self._consistency(consistency)
        return {"consistency": "stale"} if c == "stale" else {}

    @staticmethod
    def _path_id(id: ConceptId) -> str:
        return quote(concept_id(id), safe="")

    @staticmethod
    def _conditions(if_absent: bool = False, if_content: Union[str, bytes, None] = None,
                    if_version: Optional[int] = None) -> Dict[str, Any]:
        c: Dict[str, Any] = {}
        if if_absent:
            c["if_absent"] = True
        if if_content is not None:
            c.update(content_fields(if_content, prefix="if_"))
        if if_version is not None:
            c["if_version"] = int(if_version)
        if len(c) > 1:
            raise ValueError("give at most one of if_absent, if_content, if_version")
        return c

    def _sibling(self, address: str) -> str:
        """A node's ``host:port`` (as the cluster names it) with this client's scheme."""
        return f"{self._endpoints[0].scheme}://{address}"

    def _next_sequence(self) -> int:
        with self._lock:
            self._sequence += 1
            return self._sequence

    def _lose_next_answers(self, n: int = 1, noticed_after: float = 0.0) -> None:
        """Test hook: the next ``n`` successful answers to writes are dropped after the node sent them (the
        write applied), as if the connection broke ``noticed_after`` seconds later — the client then retries as
        it would after a real lost answer."""
        with self._lock:
            self._lost_answers += n
            self._lost_answer_delay = noticed_after

    def _take_lost_answer(self) -> bool:
        with self._lock:
            if self._lost_answers <= 0:
                return False
            self._lost_answers -= 1
            delay = self._lost_answer_delay
        if delay > 0:
            time.sleep(delay)
        return True

    def _resolve(self, endpoint: str) -> Endpoint:
        """One of this client's endpoints (so its pool is reused), or a new one for another address."""
        with self._lock:
            known = list(self._endpoints) + [e for e in self._seeds if e not in self._endpoints]
        https = known[0].scheme == "https"
        ctx = next((e._ssl for e in known if e.scheme == "https"), None)
        wanted = Endpoint(endpoint, ctx, default_https=https)
        for e in known:
            if e.url == wanted.url:
                return e
        return wanted

    def _discover(self) -> None:
        """Every ``discovery_interval`` seconds (one call at a time does it): the nodes the cluster names now
        (``GET /v1/cluster``, asked of the endpoints in turn, one short attempt each) become the endpoints, the
        given ones kept. A node that cannot be asked leaves the list as it was."""
        if self.discovery_interval is None:
            return
        now = time.monotonic()
        with self._lock:
            if self._discovering or now - self._discovered_at < self.discovery_interval:
                return
            self._discovering = True
            current = list(self._endpoints)
        try:
            for ep in sorted(current, key=lambda e: e.is_down(now)):
                try:
                    status, resp_headers, raw = ep.roundtrip("GET", "/v1/cluster", None, dict(self._headers),
                                                             min(self.timeout, 2.0))
                except _NO_ANSWER:
                    continue
                if status != 200:
                    continue
                try:
                    nodes = json.loads(raw)["nodes"]
                    addresses = [n["http_address"] for n in nodes if isinstance(n.get("http_address"), str) and n["http_address"]]
                except (ValueError, KeyError, TypeError):
                    continue
                found = [self._resolve(self._sibling(a)) for a in addresses]
                merged = found + [e for e in self._seeds if e.url not in {f.url for f in found}]
                with self._lock:
                    self._endpoints = merged
                log.debug("cluster nodes: %s", [e.url for e in merged])
                return
        finally:
            with self._lock:
                self._discovered_at = time.monotonic()
                self._discovering = False

    def _order(self) -> List[Endpoint]:
        """The endpoints in the order this call tries them: from the round-robin cursor, nodes not known to be
        down first."""
        self._discover()
        with self._lock:
            endpoints = list(self._endpoints)
            n = len(endpoints)
            start = self._cursor % n
            if self.round_robin:
                self._cursor = (self._cursor + 1) % n
        ring = endpoints[start:] + endpoints[:start]
        now = time.monotonic()
        up = [e for e in ring if not e.is_down(now)]
        down = sorted((e for e in ring if e.is_down(now)), key=lambda e: e.down_until)
        return up + down

    def _worked(self, e: Endpoint) -> None:
        e.mark_up()
        if not self.round_robin:
            with self._lock:
                self._cursor = self._endpoints.index(e) if e in self._endpoints else self._cursor

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, str]] = None,
        body: Any = None,
        mode: str = _READ,
        idempotency_key: Optional[str] = None,
        endpoint: Optional[str] = None,
        accept: Tuple[int, ...] = (),
        retry_statuses: Tuple[int, ...] = (503, 504, 507),
        policy: Optional[RetryPolicy] = None,
    ) -> Tuple[int, Any, Any]:
        """One logical call with its retries: (status, headers, parsed answer). Raises the typed error of a
        final answer, or the last error once the retry budget is spent."""
        if query:
            path = f"{path}?{urlencode(query)}"
        data = None
        headers = dict(self._headers)
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            if not (1 <= len(idempotency_key) <= 255) or not all(0x21 <= ord(c) <= 0x7E for c in idempotency_key):
                raise ValueError("an Idempotency-Key is 1…255 visible ASCII characters")
            headers["Idempotency-Key"] = idempotency_key
        sequence: Optional[int] = None
        if mode == _SESSION:
            headers["X-Sutra-Client-Id"] = str(self.client_id)
            sequence = self._next_sequence()
        is_write = mode != _READ
        policy = policy or self.retry
        deadline = time.monotonic() + policy.total_timeout
        order = [self._resolve(endpoint)] if endpoint else self._order()
        pinned = endpoint is not None
        position = 0
        tried: set = set()
        problems: Dict[str, str] = {}
        attempts = 0
        failures = 0
        last: Optional[SutraError] = None
        while True:
            ep = order[position % len(order)]
            tried.add(ep.url)
            if sequence is not None:
                headers["X-Sutra-Sequence"] = str(sequence)
            attempts += 1
            remaining = deadline - time.monotonic()
            timeout = max(0.1, min(self.timeout, remaining))
            retry_after: Optional[float] = None
            advance = True
            connection_failed = False
            try:
                status, resp_headers, raw = ep.roundtrip(method, path, data, headers, timeout)
                if is_write and 200 <= status < 300 and self._take_lost_answer():
                    raise _LostAnswer("the answer was dropped by the test hook _lose_next_answers")
            except ssl.SSLCertVerificationError as e:
                raise SutraConnectionError(f"{ep.url}: the node's certificate does not verify: {e.verify_message}",
                                           details={"endpoint": ep.url, "attempts": attempts}) from e
            except _NO_ANSWER as e:
                problems[ep.url] = describe(e)
                if not pinned:
                    ep.mark_down(policy.cooldown)
                connection_failed = True
                last = SutraConnectionError(f"{ep.url}: {describe(e)}", details={"endpoint": ep.url})
            else:
                payload = _parse(resp_headers, raw, method)
                if 200 <= status < 300 or status in accept:
                    self._worked(ep)
                    return status, resp_headers, payload
                err = error_from_response(status, payload, resp_headers, ep.url)
                if status in retry_statuses:
                    retry_after = parse_retry_after(resp_headers.get("Retry-After"))
                elif status == 409 and is_write and policy.retry_conflicts:
                    # Nothing was applied, and this sequence's outcome is now "conflict" for good: the write is
                    # tried again as a new one (same Idempotency-Key: it names the same concepts).
                    if sequence is not None:
                        sequence = self._next_sequence()
                    advance = False
                else:
                    err.details["attempts"] = attempts
                    raise err
                last = err
            failures += 1
            if attempts >= policy.max_attempts:
                break
            next_ep = order[(position + (1 if advance else 0)) % len(order)]
            if connection_failed and not pinned and next_ep.url not in tried:
                delay = 0.0
            else:
                n = max(0, failures - 1)
                delay = random.uniform(0, min(policy.max_delay, policy.base_delay * (2 ** min(n, 16))))
                if retry_after is not None:
                    delay = max(delay, min(retry_after, policy.max_retry_after))
            if time.monotonic() + delay >= deadline:
                break
            log.debug("%s %s: attempt %d on %s failed (%s); retrying in %.3f s%s", method, path, attempts, ep.url,
                      last, delay, f" with sequence {sequence}" if sequence is not None else "")
            if delay > 0:
                time.sleep(delay)
            if advance:
                position += 1
        assert last is not None
        last.details["attempts"] = attempts
        if isinstance(last, SutraConnectionError) and len(problems) > 1:
            summary = "; ".join(f"{u}: {p}" for u, p in problems.items())
            raise SutraConnectionError(f"no node answered after {attempts} attempts ({summary})",
                                       details={"errors": problems, "attempts": attempts}) from None
        raise last


def _parse(headers: Any, raw: bytes, method: str) -> Any:
    if method == "HEAD" or not raw:
        return None
    ctype = (headers.get("Content-Type") or "").lower()
    if "json" in ctype:
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw
