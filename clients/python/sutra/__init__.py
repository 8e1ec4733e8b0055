"""Sutra client: a Python client of a Sutra cluster over its HTTP/JSON API (standard library only).

    import sutra
    client = sutra.Client(["http://127.0.0.1:7201", "http://127.0.0.1:7202"], token="sutra_...")
    w = client.put(content="hello", embedding=[0.1, 0.2, 0.3, 0.4])
    print(client.get(w.id).text)

See README.md (clients/python) for every call, retries and errors.
"""

__version__ = "0.2.0"

from .errors import (  # noqa: E402
    Conflict,
    DiskFull,
    InternalError,
    InvalidArgument,
    MethodNotAllowed,
    NotFound,
    NotLeader,
    PermissionDenied,
    PreconditionFailed,
    ServerTimeout,
    SutraConnectionError,
    SutraError,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from .models import (  # noqa: E402
    ASSOCIATION_TYPES,
    AssociateItem,
    AssociationResult,
    BatchItemResult,
    BatchResult,
    ClusterInfo,
    Concept,
    DeleteItem,
    Neighbor,
    NodeInfo,
    PathResult,
    PutItem,
    SearchFilter,
    SearchHit,
    ShardInfo,
    Stats,
    TransactionStats,
    WriteResult,
    random_id,
)
from .client import UNSET, Client, RetryPolicy  # noqa: E402
from .aio import AsyncClient  # noqa: E402

__all__ = [
    "__version__",
    "Client",
    "AsyncClient",
    "RetryPolicy",
    "UNSET",
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
    "ClusterInfo",
    "NodeInfo",
    "ShardInfo",
    "Stats",
    "TransactionStats",
    "ASSOCIATION_TYPES",
    "random_id",
]
