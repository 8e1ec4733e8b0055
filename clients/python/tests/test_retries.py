"""The client's retry rules against scripted fake nodes (no cluster needed): which answers are retried, on which
endpoint, with which idempotency headers, and within which budget."""

from __future__ import annotations

import json
import socket
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional, Tuple

import sutra

CID = "0123456789abcdef0123456789abcdef"


class FakeNode:
    """An HTTP server answering from a script: a list of (status, body, headers) consumed in order (the last
    one repeats). Records every request's method, path and headers."""

    def __init__(self, script: List[Tuple[int, dict, dict]], routes: Optional[dict] = None) -> None:
        self.script = list(script)
        #: Fixed answers by path (not consumed, not taken from the script).
        self.routes: dict = dict(routes or {})
        self.requests: List[dict] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                node.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                      "body": json.loads(body) if body else None})
                if self.path in node.routes:
                    status, payload, headers = node.routes[self.path]
                else:
                    status, payload, headers = node.script.pop(0) if len(node.script) > 1 else node.script[0]
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_HEAD = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def unavailable(retry_after: Optional[str] = "0") -> Tuple[int, dict, dict]:
    return (503, {"error": {"code": "UNAVAILABLE", "message": "no leader yet"}},
            {"Retry-After": retry_after} if retry_after is not None else {})


OK_WRITE = (200, {"id": CID, "source": CID, "target": CID, "version": 7}, {})


class RetryTests(unittest.TestCase):
    def setUp(self) -> None:
        self.nodes: List[FakeNode] = []

    def tearDown(self) -> None:
        for n in self.nodes:
            n.close()

    def client(self, *args: object, **kwargs: object) -> sutra.Client:
        kwargs.setdefault("discovery_interval", None)  # scripted nodes answer nothing else
        c = sutra.Client(*args, **kwargs)  # type: ignore[arg-type]
        self.addCleanup(c.close)
        return c

    def node(self, *script: Tuple[int, dict, dict]) -> FakeNode:
        n = FakeNode(list(script))
        self.nodes.append(n)
        return n

    def test_unavailable_is_retried_on_the_next_endpoint_with_the_same_sequence(self) -> None:
        a = self.node(unavailable())
        b = self.node(OK_WRITE)
        c = self.client([a.url, b.url], round_robin=False)
        w = c.put(id=CID, content="x")
        self.assertEqual(w.version, 7)
        self.assertEqual(len(a.requests), 1)
        self.assertEqual(len(b.requests), 1)
        ha, hb = a.requests[0]["headers"], b.requests[0]["headers"]
        self.assertEqual(ha["X-Sutra-Client-Id"], str(c.client_id))
        self.assertEqual(ha["X-Sutra-Client-Id"], hb["X-Sutra-Client-Id"])
        self.assertEqual(ha["X-Sutra-Sequence"], hb["X-Sutra-Sequence"], "a retry reuses its write's sequence")
        self.assertNotIn("Idempotency-Key", ha)

    def test_retry_after_is_honoured(self) -> None:
        a = self.node(unavailable("1"), OK_WRITE)
        c = self.client([a.url])
        t0 = time.monotonic()
        c.put(id=CID, content="x")
        self.assertGreaterEqual(time.monotonic() - t0, 0.95)
        self.assertEqual(len(a.requests), 2)

    def test_each_write_gets_a_new_increasing_sequence(self) -> None:
        a = self.node(OK_WRITE)
        c = self.client([a.url])
        c.put(id=CID, content="x")
        c.delete(CID)
        c.associate(CID, CID)
        seqs = [int(r["headers"]["X-Sutra-Sequence"]) for r in a.requests]
        self.assertEqual(seqs, sorted(set(seqs)))

    def test_conflict_is_retried_as_a_new_write(self) -> None:
        a = self.node((409, {"error": {"code": "CONFLICT", "message": "a pending transaction holds it"}},
                       {"Retry-After": "1"}), OK_WRITE)
        c = self.client([a.url])
        c.patch(CID, strength=0.5)
        self.assertEqual(len(a.requests), 2)
        s1, s2 = (int(r["headers"]["X-Sutra-Sequence"]) for r in a.requests)
        self.assertGreater(s2, s1, "the conflicted sequence's outcome is remembered: a retry needs a new one")

    def test_conflict_not_retried_when_disabled(self) -> None:
        a = self.node((409, {"error": {"code": "CONFLICT", "message": "aborted"}}, {}))
        c = self.client([a.url], retries=sutra.RetryPolicy(retry_conflicts=False))
        with self.assertRaises(sutra.Conflict) as cm:
            c.patch(CID, strength=0.5)
        self.assertEqual(cm.exception.status, 409)
        self.assertEqual(len(a.requests), 1)

    def test_idless_create_reuses_its_idempotency_key(self) -> None:
        a = self.node(unavailable(), (200, {"id": CID, "version": 3}, {"Idempotent-Replayed": "true"}))
        c = self.client([a.url])
        w = c.put(content="hello")
        self.assertTrue(w.replayed)
        k1, k2 = (r["headers"]["Idempotency-Key"] for r in a.requests)
        self.assertEqual(k1, k2)
        self.assertNotIn("X-Sutra-Sequence", a.requests[0]["headers"])
        c.put(content="again")
        self.assertNotEqual(a.requests[2]["headers"]["Idempotency-Key"], k1, "a new call is a new key")

    def test_nodes_added_to_the_cluster_are_found_and_the_given_ones_may_go(self) -> None:
        b = self.node(OK_WRITE)
        a = self.node(OK_WRITE)
        nodes = {"nodes": [{"id": 1, "http_address": a.url[len("http://"):]}, {"id": 4, "http_address": b.url[len("http://"):]}]}
        a.routes["/v1/cluster"] = (200, nodes, {})
        b.routes["/v1/cluster"] = (200, nodes, {})
        c = self.client([a.url], discovery_interval=0.2)
        c.put(id=CID, content="x")
        self.assertEqual([r["path"] for r in a.requests], ["/v1/concepts"], "no discovery before its interval")
        time.sleep(0.3)
        c.put(id=CID, content="y")
        self.assertIn("/v1/cluster", [r["path"] for r in a.requests], "the node list was read")
        self.assertEqual(c.endpoints, [a.url, b.url])
        a.close()
        self.nodes.remove(a)
        c.close()  # the pooled keep-alive connection to the fake would outlive its server (a dead node's does not)
        for _ in range(3):
            c.put(id=CID, content="z")
        self.assertGreaterEqual(sum(r["path"] == "/v1/concepts" for r in b.requests), 3, "node 4 took the writes")
        with self.assertRaises(ValueError):
            sutra.Client([a.url], discovery_interval=0)

    def test_a_refused_connection_fails_over_at_once(self) -> None:
        b = self.node(OK_WRITE)
        c = self.client([f"http://127.0.0.1:{closed_port()}", b.url], round_robin=False)
        t0 = time.monotonic()
        c.put(id=CID, content="x")
        self.assertLess(time.monotonic() - t0, 0.5)
        self.assertEqual(len(b.requests), 1)

    def test_final_answers_are_not_retried(self) -> None:
        for status, code, cls in [(400, "INVALID_ARGUMENT", sutra.InvalidArgument),
                                  (401, "UNAUTHENTICATED", sutra.Unauthenticated),
                                  (403, "PERMISSION_DENIED", sutra.PermissionDenied),
                                  (404, "NOT_FOUND", sutra.NotFound),
                                  (412, "PRECONDITION_FAILED", sutra.PreconditionFailed),
                                  (413, "TOO_LARGE", sutra.TooLarge),
                                  (500, "INTERNAL", sutra.InternalError)]:
            a = self.node((status, {"error": {"code": code, "message": "m", "extra": 1}}, {}))
            c = self.client([a.url])
            with self.assertRaises(cls) as cm:
                c.patch(CID, strength=0.5)
            e = cm.exception
            self.assertIsInstance(e, sutra.SutraError)
            self.assertEqual((e.status, e.code, e.message), (status, code, "m"))
            self.assertEqual(e.details["extra"], 1)
            self.assertEqual(len(a.requests), 1, code)

    def test_the_retry_budget_is_bounded(self) -> None:
        a = self.node(unavailable())
        c = self.client([a.url], retries=sutra.RetryPolicy(max_attempts=4, base_delay=0.01))
        with self.assertRaises(sutra.Unavailable) as cm:
            c.get(CID)
        self.assertEqual(cm.exception.details["attempts"], 4)
        self.assertEqual(len(a.requests), 4)
        c = self.client([a.url], retries=sutra.RetryPolicy(max_attempts=1000, total_timeout=0.5, max_delay=0.1))
        t0 = time.monotonic()
        with self.assertRaises(sutra.Unavailable):
            c.get(CID)
        self.assertLess(time.monotonic() - t0, 1.5)

    def test_no_node_reachable(self) -> None:
        c = self.client([f"http://127.0.0.1:{closed_port()}", f"http://127.0.0.1:{closed_port()}"],
                         retries=sutra.RetryPolicy(max_attempts=4, base_delay=0.01))
        with self.assertRaises(sutra.SutraConnectionError) as cm:
            c.get(CID)
        self.assertIsNone(cm.exception.status)
        self.assertEqual(cm.exception.code, "CONNECTION")
        self.assertEqual(len(cm.exception.details["errors"]), 2)

    def test_get_of_a_missing_concept_is_none(self) -> None:
        a = self.node((404, {"error": {"code": "NOT_FOUND", "message": "concept not found"}}, {}))
        self.assertIsNone(self.client([a.url]).get(CID))
        self.assertFalse(self.client([a.url]).exists(CID))

    def test_token_and_reads(self) -> None:
        a = self.node((200, {"neighbors": [{"id": CID, "type": "causal", "confidence": 0.5, "direction": "in"}]}, {}))
        c = self.client(a.url, token="sutra_abc", consistency="stale")
        ns = c.neighbors(CID, "in", type="causal")
        self.assertEqual(ns, [sutra.Neighbor(id=CID, type="causal", confidence=0.5, direction="in")])
        r = a.requests[0]
        self.assertEqual(r["headers"]["Authorization"], "Bearer sutra_abc")
        self.assertIn("consistency=stale", r["path"])
        self.assertIn("direction=in", r["path"])
        self.assertNotIn("X-Sutra-Sequence", r["headers"], "reads carry no sequence")

    def test_search_body(self) -> None:
        a = self.node((200, {"results": [{"id": CID, "distance": 0.25}]}, {}))
        c = self.client([a.url])
        hits = c.search([1, 0], k=3, ef=50, exact=True, filter=sutra.SearchFilter(min_strength=0.5))
        self.assertEqual(hits, [sutra.SearchHit(id=CID, distance=0.25)])
        self.assertEqual(a.requests[0]["body"], {"vector": [1.0, 0.0], "k": 3, "ef": 50, "exact": True,
                                                 "filter": {"min_strength": 0.5}})
        c.search([1, 0])
        self.assertEqual(a.requests[1]["body"], {"vector": [1.0, 0.0], "k": 10})

    def test_arguments_checked_before_sending(self) -> None:
        c = self.client(["http://127.0.0.1:1"])
        with self.assertRaises(ValueError):
            c.put(content="x", if_absent=True)
        with self.assertRaises(ValueError):
            c.put(id=CID, if_version=1, if_content="x")
        with self.assertRaises(ValueError):
            c.neighbors(CID, "sideways")
        with self.assertRaises(ValueError):
            c.get(CID, consistency="eventual")
        with self.assertRaises(ValueError):
            c.put(content="x", embedding=[float("nan")])
        with self.assertRaises(ValueError):
            sutra.Client([])


if __name__ == "__main__":
    unittest.main()
