"""A real local Sutra cluster for the tests: started with ``sutra cluster up`` from the built binaries (in
``$SUTRA_BIN``, default ``<repo>/.build/debug``), stopped by pid, every wait bounded.

Nodes listen on loopback only, on ports chosen among 19400-20999 that are free when the cluster starts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from typing import Dict, List, Optional

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.environ.get("SUTRA_BIN") or os.path.join(REPO, ".build", "debug")

# Base ports tried in turn: node i uses base+i (binary), base+100+i (HTTP), base+200+i (peers).
_BASES = list(range(19400, 20800, 300)) + list(range(19430, 20800, 300)) + list(range(19460, 20800, 300))


def _port_free(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _alive(pid: int, marker: str) -> bool:
    """The process runs, is not a zombie, and is still our node (its command line names its data dir)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return marker.encode() in f.read().split(b"\0")
    except (OSError, IndexError):
        return False


class LocalCluster:
    def __init__(self, nodes: int = 3, shards: int = 4, dimension: int = 4, auth: bool = True,
                 client_tls: bool = False, extra_tokens: Optional[Dict[str, str]] = None) -> None:
        self.n = nodes
        self.shards = shards
        self.dimension = dimension
        self.auth = auth
        self.client_tls = client_tls
        self.extra_tokens = extra_tokens or ({"reader": "read", "writer": "write"} if auth else {})
        self.dir = ""
        self.tokens: Dict[str, str] = {}
        self.nodes: List[dict] = []
        self.children: Dict[int, subprocess.Popen] = {}
        self.ca_file: Optional[str] = None

    # MARK: start

    def _sutra(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run([os.path.join(BIN, "sutra"), *args], capture_output=True, text=True, timeout=timeout)

    def start(self, attempts: int = 3) -> "LocalCluster":
        """Starts the cluster; a missing binary or a failed start (another engineer may be rebuilding) is retried
        after 30 s, at most ``attempts`` times."""
        problem = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(30)
            if not (os.access(os.path.join(BIN, "sutra"), os.X_OK) and os.access(os.path.join(BIN, "sutra-node"), os.X_OK)):
                problem = f"the binaries are not in {BIN} (build them, or set SUTRA_BIN)"
                continue
            try:
                self._start_once()
                return self
            except Exception as e:  # noqa: BLE001 - reported below
                problem = str(e)
                self.stop()
        raise RuntimeError(f"could not start a local cluster: {problem}")

    def _start_once(self) -> None:
        base = next((b for b in _BASES if all(_port_free(b + off + i) for off in (0, 100, 200)
                                               for i in range(1, self.n + 1))), None)
        if base is None:
            raise RuntimeError("no free base port in 19400-20999")
        self.dir = tempfile.mkdtemp(prefix="sutra-pyclient-")
        tokens_file = os.path.join(self.dir, "tokens")
        for name, role in self.extra_tokens.items():
            r = self._sutra("tokens", "add", name, "--role", role, "--file", tokens_file, timeout=30)
            if r.returncode != 0:
                raise RuntimeError(f"sutra tokens add: {r.stderr.strip()}")
            self.tokens[name] = r.stdout.strip().splitlines()[-1]
        args = ["cluster", "up", "--nodes", str(self.n), "--shards", str(self.shards), "--dimension",
                str(self.dimension), "--data", self.dir, "--base-port", str(base), "--timeout", "60"]
        if not self.auth:
            args.append("--no-auth")
        if self.client_tls:
            args.append("--client-tls")
        r = self._sutra(*args, timeout=90)
        if os.path.exists(os.path.join(self.dir, "cluster.json")):
            with open(os.path.join(self.dir, "cluster.json")) as f:
                info = json.load(f)
            self.nodes = info["nodes"]
            self.ca_file = info.get("clientCA")
        if r.returncode != 0:
            raise RuntimeError(f"sutra cluster up failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
        if self.auth:
            with open(os.path.join(self.dir, "admin.token")) as f:
                self.tokens["admin"] = f.read().strip()

    # MARK: addresses

    @property
    def scheme(self) -> str:
        return "https" if self.client_tls else "http"

    @property
    def endpoints(self) -> List[str]:
        return [self.endpoint(n["id"]) for n in self.nodes]

    def endpoint(self, node_id: int) -> str:
        n = self._node(node_id)
        return f"{self.scheme}://127.0.0.1:{n['httpPort']}"

    def _node(self, node_id: int) -> dict:
        return next(n for n in self.nodes if n["id"] == node_id)

    # MARK: processes

    def is_running(self, node_id: int) -> bool:
        n = self._node(node_id)
        child = self.children.get(n["pid"])
        if child is not None:
            # Our child: poll() (its /proc cmdline is still ours between fork and exec).
            return child.poll() is None
        return _alive(n["pid"], n["data"])

    def kill(self, node_id: int, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """Signals the node and waits (bounded) until its process is gone."""
        n = self._node(node_id)
        if not self.is_running(node_id):
            return
        os.kill(n["pid"], sig)
        self._wait_gone(n, timeout)

    def _wait_gone(self, n: dict, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        child = self.children.get(n["pid"])
        while time.monotonic() < deadline:
            if child is not None:
                if child.poll() is not None:
                    return True
            elif not _alive(n["pid"], n["data"]):
                return True
            time.sleep(0.05)
        return False

    def restart(self, node_id: int, ready_timeout: float = 60.0) -> None:
        """Starts a stopped node again with its recorded command line (as a child of this process) and waits
        until it answers /ready."""
        n = self._node(node_id)
        if self.is_running(node_id):
            raise RuntimeError(f"node {node_id} still runs (pid {n['pid']})")
        with open(n["log"], "ab") as log:
            p = subprocess.Popen([n["binary"], *n["args"]], stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        self.children[p.pid] = p
        n["pid"] = p.pid
        self.wait_ready(node_id, ready_timeout)

    def wait_ready(self, node_id: int, timeout: float = 60.0) -> None:
        import ssl

        ctx = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        url = self.endpoint(node_id) + "/ready"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=1, context=ctx) as r:
                    if r.status == 200:
                        return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            if not self.is_running(node_id):
                raise RuntimeError(f"node {node_id} exited; see {self._node(node_id)['log']}")
            time.sleep(0.1)
        raise RuntimeError(f"node {node_id} not ready after {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every node (graceful), SIGKILL what still runs after ``timeout`` s; bounded. Removes the
        data directory unless SUTRA_KEEP_CLUSTER is set."""
        running = [n for n in self.nodes if self.is_running(n["id"])]
        for n in running:
            try:
                os.kill(n["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        for n in running:
            self._wait_gone(n, max(0.0, deadline - time.monotonic()))
        for n in running:
            if self.is_running(n["id"]):
                try:
                    os.kill(n["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self._wait_gone(n, 5.0)
        for p in self.children.values():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.children.clear()
        if self.dir and not os.environ.get("SUTRA_KEEP_CLUSTER"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def logs_tail(self, lines: int = 20) -> str:
        out = []
        for n in self.nodes:
            try:
                with open(n["log"], errors="replace") as f:
                    out.append(f"--- node {n['id']} ({n['log']})\n" + "".join(f.readlines()[-lines:]))
            except OSError:
                pass
        return "\n".join(out)
