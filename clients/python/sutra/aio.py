"""``AsyncClient``: the same calls as :class:`~sutra.Client`, awaitable.

Each call runs the synchronous client in a worker thread (``asyncio.to_thread``), so it never blocks the event
loop; retries, failover and idempotency are the synchronous client's. Concurrency is bounded by the loop's
default executor (``min(32, cpu + 4)`` threads).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable, Optional

from .client import Client

__all__ = ["AsyncClient"]

_CALLS = (
    "put", "create", "get", "exists", "patch", "delete", "associate", "dissociate", "neighbors", "path",
    "search", "batch", "flush", "cluster", "health", "ready", "stats", "transaction_stats", "metrics", "digest",
    "transfer_leader",
)


class AsyncClient:
    """Awaitable twin of :class:`~sutra.Client`: ``AsyncClient(...)`` takes the same arguments (or
    ``AsyncClient(client=existing)``), and every call is a coroutine::

        async with sutra.AsyncClient(["http://127.0.0.1:7201"], token=token) as c:
            w = await c.put(content="hello")
            concept = await c.get(w.id)
    """

    def __init__(self, *args: Any, client: Optional[Client] = None, **kwargs: Any) -> None:
        self.client = client if client is not None else Client(*args, **kwargs)

    async def close(self) -> None:
        self.client.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncClient(endpoints={self.client.endpoints!r})"


def _wrap(name: str) -> Callable[..., Any]:
    sync = getattr(Client, name)

    @functools.wraps(sync)
    async def call(self: AsyncClient, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.client, name), *args, **kwargs)

    return call


for _name in _CALLS:
    setattr(AsyncClient, _name, _wrap(_name))
del _name
