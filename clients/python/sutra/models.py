"""The typed values the client returns and the batch items it takes."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

__all__ = [
    "ConceptId",
    "concept_id",
    "random_id",
    "Concept",
    "WriteResult",
    "AssociationResult",
    "Neighbor",
    "SearchHit",
    "SearchFilter",
    "PathResult",
    "PutItem",
    "DeleteItem",
    "AssociateItem",
    "BatchItemResult",
    "BatchResult",
    "NodeInfo",
    "ShardInfo",
    "ClusterInfo",
    "Stats",
    "TransactionStats",
    "ASSOCIATION_TYPES",
]

#: A concept id: 32 hex digits (as the nodes write it), or 16 bytes, or a ``uuid.UUID``.
ConceptId = Union[str, bytes, uuid.UUID]

#: The association types the nodes know (the default is ``semantic``).
ASSOCIATION_TYPES = ("semantic", "causal", "temporal", "hierarchical", "compositional")


def concept_id(value: ConceptId) -> str:
    """The 32-hex-digit text of a concept id given as text, 16 bytes or a UUID (text is passed on as given, in
    lower case: the node checks it and names it when it is not an id)."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 16:
            raise ValueError(f"a concept id is 16 bytes, not {len(value)}")
        return bytes(value).hex()
    if isinstance(value, str):
        return value.strip().lower()
    raise TypeError(f"a concept id is a str of 32 hex digits, 16 bytes or a uuid.UUID, not {type(value).__name__}")


def random_id() -> str:
    """A new random concept id (32 hex digits)."""
    return uuid.uuid4().hex


def content_fields(content: Union[str, bytes, bytearray, None], prefix: str = "") -> Dict[str, Any]:
    """``{"content": text}`` for a str, ``{"content_base64": ...}`` for bytes, ``{}`` for None."""
    if content is None:
        return {}
    if isinstance(content, str):
        return {prefix + "content": content}
    if isinstance(content, (bytes, bytearray, memoryview)):
        return {prefix + "content_base64": base64.b64encode(bytes(content)).decode("ascii")}
    raise TypeError(f"content is a str or bytes, not {type(content).__name__}")


def _floats(v: Optional[Sequence[float]]) -> Optional[List[float]]:
    return None if v is None else [float(x) for x in v]


@dataclass(frozen=True)
class Concept:
    """A concept as a node answers it.

    ``content`` is always bytes; ``text`` is it decoded as UTF-8 (None when it is not UTF-8).
    ``created_version`` / ``updated_version`` are the log indexes of the writes that created it and last changed
    it (``if_version`` takes ``updated_version``).
    """

    id: str
    content: bytes
    strength: float
    confidence: float
    created_version: int
    updated_version: int
    embedding: Optional[List[float]] = None

    @property
    def text(self) -> Optional[str]:
        try:
            return self.content.decode("utf-8")
        except UnicodeDecodeError:
            return None

    @classmethod
    def from_json(cls, o: Mapping[str, Any]) -> "Concept":
        if "content_base64" in o:
            content = base64.b64decode(o["content_base64"])
        else:
            content = str(o.get("content", "")).encode("utf-8")
        return cls(
            id=o["id"],
            content=content,
            strength=float(o.get("strength", 1.0)),
            confidence=float(o.get("confidence", 1.0)),
            created_version=int(o.get("created_version", 0)),
            updated_version=int(o.get("updated_version", 0)),
            embedding=_floats(o.get("embedding")),
        )


@dataclass(frozen=True)
class WriteResult:
    """What a concept write answers: the concept's id (the one the node made for an id-less create) and the
    version (log index) of the write. ``replayed`` is True when the node answered a retried idempotent create
    with the first attempt's outcome (``Idempotent-Replayed: true``)."""

    id: str
    version: int
    replayed: bool = False


@dataclass(frozen=True)
class AssociationResult:
    source: str
    target: str
    version: int


@dataclass(frozen=True)
class Neighbor:
    """One association seen from a concept: the concept at its other end, its type and confidence, and
    ``direction`` ``"out"`` (from the concept) or ``"in"`` (to it)."""

    id: str
    type: str
    confidence: float
    direction: str

    @classmethod
    def from_json(cls, o: Mapping[str, Any]) -> "Neighbor":
        return cls(id=o["id"], type=o.get("type", "semantic"), confidence=float(o.get("confidence", 1.0)),
                   direction=o.get("direction", "out"))


@dataclass(frozen=True)
class SearchHit:
    """A k-NN result: the concept's id and its cosine distance to the query (nearest first)."""

    id: str
    distance: float

    @classmethod
    def from_json(cls, o: Mapping[str, Any]) -> "SearchHit":
        return cls(id=o["id"], distance=float(o["distance"]))


@dataclass(frozen=True)
class SearchFilter:
    """Restricts a search to concepts with at least this strength / confidence, or with an association of this
    type. A plain dict with the same keys works as well."""

    min_strength: Optional[float] = None
    min_confidence: Optional[float] = None
    association_type: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        return {k: v for k, v in (("min_strength", self.min_strength), ("min_confidence", self.min_confidence),
                                  ("association_type", self.association_type)) if v is not None}


@dataclass(frozen=True)
class PathResult:
    """A bounded breadth-first path: ``found``, the ids from start to end (inclusive) and how many concepts were
    visited."""

    found: bool
    path: List[str]
    visited: int

    @classmethod
    def from_json(cls, o: Mapping[str, Any]) -> "PathResult":
        return cls(found=bool(o.get("found")), path=list(o.get("path", [])), visited=int(o.get("visited", 0)))


# MARK: batch items


@dataclass(frozen=True)
class PutItem:
    """A batch's put. Without ``id`` the node makes one (derived from the batch's Idempotency-Key and the item's
    position, so a retried batch writes the same concepts)."""

    content: Union[str, bytes, None] = None
    id: Optional[ConceptId] = None
    embedding: Optional[Sequence[float]] = None
    strength: Optional[float] = None
    confidence: Optional[float] = None

    def to_json(self) -> Dict[str, Any]:
        o: Dict[str, Any] = {"op": "put"}
        if self.id is not None:
            o["id"] = concept_id(self.id)
        o.update(content_fields(self.content))
        if self.embedding is not None:
            o["embedding"] = _floats(self.embedding)
        if self.strength is not None:
            o["strength"] = float(self.strength)
        if self.confidence is not None:
            o["confidence"] = float(self.confidence)
        return o


@dataclass(frozen=True)
class DeleteItem:
    """A batch's delete: the concept and the edges stored with it on its own shard only (use
    ``Client.delete`` for a concept with associations across shards)."""

    id: ConceptId

    def to_json(self) -> Dict[str, Any]:
        return {"op": "delete", "id": concept_id(self.id)}


@dataclass(frozen=True)
class AssociateItem:
    source: ConceptId
    target: ConceptId
    type: Optional[str] = None
    confidence: Optional[float] = None

    def to_json(self) -> Dict[str, Any]:
        o: Dict[str, Any] = {"op": "associate", "source": concept_id(self.source), "target": concept_id(self.target)}
        if self.type is not None:
            o["type"] = self.type
        if self.confidence is not None:
            o["confidence"] = float(self.confidence)
        return o


@dataclass(frozen=True)
class BatchItemResult:
    """One item of a batch's answer, in request order: ``op`` and ``id`` (put, delete) or ``source`` and
    ``target`` (associate)."""

    op: str
    id: Optional[str] = None
    source: Optional[str] = None
    target: Optional[str] = None


@dataclass(frozen=True)
class BatchResult:
    items: List[BatchItemResult]
    version: int

    @property
    def ids(self) -> List[Optional[str]]:
        """The ids of the put and delete items (None for associate items), in request order."""
        return [i.id for i in self.items]


# MARK: cluster


@dataclass(frozen=True)
class NodeInfo:
    id: int
    client_address: str
    http_address: str
    connected: bool
    link: str


@dataclass(frozen=True)
class ShardInfo:
    shard: int
    leader: int
    term: int
    role: str
    commit_index: int
    applied_index: int
    last_index: int
    snapshot_index: int
    concepts: int
    replicas: List[Dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ClusterInfo:
    """``GET /v1/cluster`` as the answering node sees it; ``raw`` is the whole answer."""

    cluster_id: str
    node_id: int
    num_shards: int
    dimension: int
    nodes: List[NodeInfo]
    shards: List[ShardInfo]
    transactions: Dict[str, Any]
    raw: Dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def leaders(self) -> Dict[int, int]:
        """shard → leader node id (0: none known)."""
        return {s.shard: s.leader for s in self.shards}

    @classmethod
    def from_json(cls, o: Mapping[str, Any]) -> "ClusterInfo":
        nodes = [NodeInfo(id=int(n["id"]), client_address=n.get("client_address", ""),
                          http_address=n.get("http_address", ""), connected=bool(n.get("connected")),
                          link=n.get("link", "")) for n in o.get("nodes", [])]
        shards = [ShardInfo(shard=int(s["shard"]), leader=int(s.get("leader", 0)), term=int(s.get("term", 0)),
                            role=s.get("role", ""), commit_index=int(s.get("commit_index", 0)),
                            applied_index=int(s.get("applied_index", 0)), last_index=int(s.get("last_index", 0)),
                            snapshot_index=int(s.get("snapshot_index", 0)), concepts=int(s.get("concepts", 0)),
                            replicas=list(s.get("replicas", []))) for s in o.get("shards", [])]
        return cls(cluster_id=o.get("cluster_id", ""), node_id=int(o.get("node_id", 0)),
                   num_shards=int(o.get("num_shards", 0)), dimension=int(o.get("dimension", 0)),
                   nodes=nodes, shards=shards, transactions=dict(o.get("transactions", {})), raw=dict(o))


@dataclass(frozen=True)
class Stats:
    """``GET /stats``: counts over the answering node's replicas."""

    concepts: int
    edges: int
    vectors: int
    written: int
    uptime_seconds: int
    node: int
    shards: int
    dimension: int

    @classmethod
    def from_json(cls, o: Mapping[str, Any]) -> "Stats":
        return cls(**{k: int(o.get(k, 0)) for k in ("concepts", "edges", "vectors", "written", "uptime_seconds",
                                                      "node", "shards", "dimension")})


@dataclass(frozen=True)
class TransactionStats:
    """``GET /transaction-stats``: cross-shard transactions on the shards the answering node leads."""

    active_count: int
    pending: int
    intents: int
    committed: int
    aborted: int
    recovered: int
    oldest_pending_ms: int

    @classmethod
    def from_json(cls, o: Mapping[str, Any]) -> "TransactionStats":
        return cls(**{k: int(o.get(k, 0)) for k in ("active_count", "pending", "intents", "committed", "aborted",
                                                      "recovered", "oldest_pending_ms")})
