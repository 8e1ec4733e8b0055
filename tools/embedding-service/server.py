"""A small OpenAI-compatible embedding service for Sutra's `--embedding-service`: `POST /v1/embeddings`
({"input": "text" | ["text", …], "model"?}) answers {"object": "list", "data": [{"object": "embedding",
"index": i, "embedding": [384 floats]}], "model", "usage"}; `GET /health`.

The model is all-MiniLM-L6-v2 (384 dimensions) in numpy (`minilm.py`), loaded once; requests are served one at
a time (the model is the bottleneck; the node batches texts into each call). Bounded: a body over 4 MiB, more
than 256 inputs or a non-string input is refused with 400/413, never crashes the service.

    python3 server.py --host 127.0.0.1 --port 7400
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import minilm

MAX_BODY = 4 << 20
MAX_INPUTS = 256


class Handler(BaseHTTPRequestHandler):
    model: minilm.MiniLM
    lock = threading.Lock()
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, obj: dict) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._answer(status, {"error": {"message": message, "type": "invalid_request_error"}})

    def do_GET(self) -> None:  # noqa: N802 — http.server's naming
        if self.path == "/health":
            self._answer(200, {"status": "ok", "model": minilm.MODEL_NAME, "dimension": minilm.DIMENSION})
        else:
            self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:  # noqa: N802
        if self.path.rstrip("/") not in ("/v1/embeddings", "/embeddings"):
            self._error(404, f"no route {self.path}; POST /v1/embeddings")
            return
        try:
            length = int(self.headers.get("Content-Length", "-1"))
        except ValueError:
            length = -1
        if length < 0:
            self._error(411, "Content-Length is required")
            return
        if length > MAX_BODY:
            self.close_connection = True
            self._error(413, f"body of {length} bytes; the limit is {MAX_BODY}")
            return
        try:
            request = json.loads(self.rfile.read(length))
        except (ValueError, UnicodeDecodeError):
            self._error(400, "the body is not JSON")
            return
        inputs = request.get("input") if isinstance(request, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
            self._error(400, "input must be a string or a non-empty array of strings")
            return
        if len(inputs) > MAX_INPUTS:
            self._error(413, f"{len(inputs)} inputs; the limit is {MAX_INPUTS}")
            return
        started = time.perf_counter()
        with self.lock:
            vectors = self.model.embed(inputs)
        tokens = sum(len(self.model.tokenizer.encode(t)) for t in inputs)
        self._answer(200, {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": [float(x) for x in v]} for i, v in enumerate(vectors)],
            "model": minilm.MODEL_NAME,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })
        if self.server.verbose:  # type: ignore[attr-defined]
            print(f"embedded {len(inputs)} texts in {(time.perf_counter() - started) * 1000:.1f} ms", file=sys.stderr)

    def log_message(self, *_args) -> None:  # quiet: one line per request is noise at load
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7400)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    Handler.model = minilm.MiniLM()
    Handler.model.embed(["warm up"])
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.verbose = args.verbose  # type: ignore[attr-defined]
    print(f"embedding service: {minilm.MODEL_NAME} ({minilm.DIMENSION}-d) on http://{args.host}:{args.port}/v1/embeddings", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
