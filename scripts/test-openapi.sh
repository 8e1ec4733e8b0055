#!/usr/bin/env bash
# The HTTP API against its description: starts a local 3-node cluster (tokens on) from the built binaries on free
# loopback ports, and runs schemathesis (PyPI) with docs/openapi.json against node 1 — examples, coverage and
# fuzzing phases, a bounded number of cases per operation, positive and negative inputs — checking that
#   - no answer is a 5xx (not_a_server_error),
#   - every answer's status is one the operation documents (status_code_conformance), and
#   - every answer's body matches the schema documented for that status (response_schema_conformance), with the
#     documented content type and required headers (content_type_conformance, response_headers_conformance).
# Exit 0 only if all of that holds; the nodes it started are always stopped (by pid, through `sutra cluster down`,
# then SIGKILL of the pids its cluster file names). Bounded: the whole script runs under a hard timeout
# (OPENAPI_BUDGET seconds, default 230) and each step gets what is left of it.
# Tests/Unit/NodeTests/OpenAPISpecTests.swift keeps the routes, parameters and body fields of the description in
# step with the server; this script checks the answers.
#
# Documented 5xx that a request can ask for, allowed on those operations only (schemathesis.toml written below):
#   POST /v1/search, /search a text search (`text`, `query`) on a node without an embedding service: 503 naming it
#   POST /v1/admin/backup    a second backup while the first is held for its taker: 503
# Not fuzzed: POST /v1/admin/transfer-leader (it hands a shard's leadership away on purpose; the writes that meet
# the handover are answered 503 "retry", as documented, which the no-5xx check would count), and the membership
# routes /v1/admin/nodes… (they add, drain, replace and remove the cluster's own nodes on purpose; their refusals
# are tested by Tests/Cluster/ClusterTests/ClusterMembershipTests.swift).
# The session headers X-Sutra-Client-Id/X-Sutra-Sequence are sent as 0 (anonymous) unless OPENAPI_FUZZ_SESSIONS=1:
# a (client, sequence) pair reused for a different cross-shard write after the first one's record was forgotten is
# answered 500 INTERNAL with "the outcome of this request can no longer be told" — on purpose: a late retry of a
# write that committed looks the same, and calling it a failure would be a lie. (Reused while the first record is
# still kept: 400, "already used by another transaction".)
#
# Usage: scripts/test-openapi.sh
#   env: SUTRA_BIN          directory holding sutra and sutra-node (default .build/debug)
#        OPENAPI_BASE_PORT  first base port to try (default 17400; node i uses P+i, P+100+i, P+200+i)
#        OPENAPI_EXAMPLES   cases per operation and phase (default 50)
#        OPENAPI_SEED       schemathesis seed (default 20261207, so CI runs repeat; "random": a new one, printed)
#        OPENAPI_BUDGET     hard wall-time bound in seconds (default 230)
#        OPENAPI_SPEC       the description to check (default docs/openapi.json)
#        OPENAPI_FUZZ_SESSIONS=1  fuzz the session headers too
#        KEEP=1             keep the work directory (node logs; always kept on failure)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
budget=${OPENAPI_BUDGET:-230}

# The hard bound: the script runs again under timeout(1); its TERM trap stops what it started.
if [ -z "${SUTRA_OPENAPI_TIMED:-}" ]; then
  SUTRA_OPENAPI_TIMED=1 exec timeout --kill-after=20 "$budget" "$0" "$@"
fi

ST_VERSION=4.32.5
bin=${SUTRA_BIN:-$repo/.build/debug}
spec=$(realpath "${OPENAPI_SPEC:-$repo/docs/openapi.json}")
examples=${OPENAPI_EXAMPLES:-50}
seed=${OPENAPI_SEED:-20261207}
if [ "$seed" = random ]; then seed=$(( (RANDOM << 15) | RANDOM )); fi
start=$SECONDS
left() { echo $(( budget - 25 - (SECONDS - start) )); }   # 25 s kept for stopping the cluster
say() { printf '==> openapi: %s\n' "$*"; }

work=$(mktemp -d /tmp/sutra-openapi-XXXXXX)
data=$work/cluster
child=""
cleanup() {
  local rc=$?
  set +e
  trap - EXIT TERM INT
  if [ -n "$child" ]; then kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; fi
  if [ -f "$data/cluster.json" ]; then
    "$work/bin/sutra" cluster down --data "$data" --timeout 8 >/dev/null 2>&1 || true
    # Whatever did not stop: SIGKILL by the pids the cluster file names, if still ours (command line names $data).
    for pid in $(python3 -c 'import json,sys; print(" ".join(str(n["pid"]) for n in json.load(open(sys.argv[1]))["nodes"]))' "$data/cluster.json" 2>/dev/null); do
      if grep -qs "$data" "/proc/$pid/cmdline"; then kill -9 "$pid" 2>/dev/null || true; fi
    done
  fi
  if [ "$rc" -ne 0 ]; then
    for log in "$data"/node*.log; do [ -f "$log" ] && { echo "--- last lines of $log"; tail -n 15 "$log"; }; done
  fi
  if [ "${KEEP:-}" = 1 ] || [ "$rc" -ne 0 ]; then echo "openapi: work directory kept: $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'say "stopped (timeout or signal)"; exit 124' TERM INT
# A long step runs in the background so the TERM trap can act at once.
run() { "$@" & child=$!; local rc=0; wait "$child" || rc=$?; child=""; return "$rc"; }

# 1. schemathesis, pinned (works with Python 3.11), in its own virtual environment (.build-openapi/, kept between
# runs): a system Python may refuse packages installed beside its own (PEP 668, Debian's python3).
venv="$repo/.build-openapi/venv"
if ! "$venv/bin/python" -c "import sys, importlib.metadata as m; sys.exit(m.version('schemathesis') != '$ST_VERSION')" 2>/dev/null; then
  say "installing schemathesis $ST_VERSION into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  run timeout "$(( $(left) < 150 ? $(left) : 150 ))" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

# 2. The binaries, copied: a rebuild during the run cannot change them under the cluster.
mkdir -p "$work/bin"
for b in sutra sutra-node; do
  for _ in 1 2 3; do [ -x "$bin/$b" ] && break; say "$bin/$b missing; waiting"; sleep 10; done
  cp "$bin/$b" "$work/bin/$b"
done

# 3. A cluster on the first free set of loopback ports (dimension 4: the spec's examples fit it).
base=${OPENAPI_BASE_PORT:-17400}
started=""
for attempt in 1 2 3 4 5 6; do
  if out=$("$work/bin/sutra" cluster up --data "$data" --base-port "$base" --nodes 3 --shards 4 --dimension 4 --timeout 30 2>&1); then
    started=1; break
  fi
  if grep -q "is in use" <<<"$out"; then base=$(( base + 300 )); continue; fi
  echo "$out"; say "cluster up failed (attempt $attempt); retrying in 5 s"; rm -rf "$data"; sleep 5
done
[ -n "$started" ] || { say "could not start a cluster"; exit 1; }
url=http://127.0.0.1:$(( base + 101 ))
token=$(cat "$data/admin.token")
say "cluster up: $url (data $data)"

# 4. Until the start-up placement has settled: every shard led, the same leaders for 3 s (writes meeting a
#    handover are answered 503 "retry", which is right but not what this run checks).
stable=0; last=""; settle_until=$(( SECONDS + 30 ))
while [ "$stable" -lt 6 ]; do
  [ "$SECONDS" -lt "$settle_until" ] && [ "$(left)" -gt 20 ] || { say "the cluster did not settle (leaders: ${last:-none})"; exit 1; }
  now=$(curl -s -m 2 -H "Authorization: Bearer $token" "$url/v1/cluster" \
        | python3 -c 'import json,sys; s=json.load(sys.stdin)["shards"]; l=[x["leader"] for x in s]; print(",".join(map(str,l)) if all(l) else "")' 2>/dev/null || true)
  if [ -n "$now" ] && [ "$now" = "$last" ]; then stable=$(( stable + 1 )); else stable=0; fi
  last=$now
  sleep 0.5
done
say "leaders settled: $last"

# 5. schemathesis.
cat > "$work/schemathesis.toml" <<'EOF'
# Documented 503s a request can ask for (see scripts/test-openapi.sh).
[[operations]]
include-path = "/v1/search"
include-method = "POST"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]

[[operations]]
include-path = "/search"
include-method = "POST"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]

[[operations]]
include-path = "/v1/admin/backup"
include-method = "POST"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]
EOF
session=(-H "X-Sutra-Client-Id: 0")
[ "${OPENAPI_FUZZ_SESSIONS:-}" = 1 ] && session=()
st_time=$(left)
say "schemathesis $ST_VERSION: $examples cases per operation, seed $seed, at most ${st_time} s"
cd "$work"
rc=0
run timeout --kill-after=5 "$st_time" "$venv/bin/python" -m schemathesis.cli --config-file "$work/schemathesis.toml" run "$spec" \
  --url "$url" -H "Authorization: Bearer $token" "${session[@]}" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance,response_headers_conformance \
  --exclude-path /v1/admin/transfer-leader --exclude-path-regex '^/v1/admin/nodes' \
  --phases examples,coverage,fuzzing --mode all -n "$examples" --seed "$seed" \
  --workers 1 --request-timeout 30 --generation-database none --no-color || rc=$?
cd "$repo"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then say "schemathesis ran out of time (${st_time} s)"; fi
if [ "$rc" -ne 0 ]; then say "FAILED (schemathesis exit $rc; reproduce with OPENAPI_SEED=$seed)"; exit 1; fi
say "passed in $(( SECONDS - start )) s"
