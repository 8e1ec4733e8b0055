#!/usr/bin/env bash
# A rolling upgrade between two real releases, under load, checked: starts a 3-node cluster on the OLD release's
# binaries, writes through both releases' SDKs without pause (one `sutra put` after another in each, retried by
# the SDK as an application's would be: an SDK of N against nodes of N-1 and of N+1), and meanwhile
#   1. upgrades the nodes one at a time to the NEW binaries with peer TLS in transition (--peer-tls=permissive),
#   2. downgrades them one at a time back to the OLD binaries (the on-disk formats allow it: CHANGELOG.md),
#   3. upgrades them again, and
#   4. restarts them one at a time without --peer-tls=permissive (mutual TLS required from then on).
# Every restart is a graceful stop first (`sutra node restart`). Then it checks that no write failed, that every
# acknowledged write is readable, and that the cluster's digest equals the digest of a fresh NEW cluster given
# exactly the acknowledged writes (`sutra digest`). Exit 0 only if all of that holds.
#
# Usage: scripts/rolling-upgrade.sh [OLD_COMMIT]     (default: the oldest release CHANGELOG.md names)
#   env: OLD_BIN  a bin dir of the old release (sutra, sutra-node): skips building it in a worktree
#        NEW_BIN  a bin dir of the new release (default: build the current tree, release, into .build/release)
#        BASE_PORT (default 7600), SETTLE_SECS between restarts (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
old_commit=${1:-$(sed -n 's/^## [0-9.]* — commit \([0-9a-f]\{7,40\}\).*/\1/p' CHANGELOG.md | tail -1)}
base=${BASE_PORT:-7600}; settle=${SETTLE_SECS:-2}
work=$(mktemp -d /tmp/sutra-upgrade-XXXX)
say() { printf '\n== %s\n' "$*"; }

if [ -z "${OLD_BIN:-}" ]; then
  say "building the old release $old_commit in a worktree (release build)"
  git worktree add --detach "$work/old-src" "$old_commit" >/dev/null
  (cd "$work/old-src" && swift build -c release --product sutra-node >/dev/null && swift build -c release --product sutra >/dev/null)
  OLD_BIN=$work/old-src/.build/release
fi
if [ -z "${NEW_BIN:-}" ]; then
  say "building the current tree (release build)"
  swift build -c release --product sutra-node >/dev/null && swift build -c release --product sutra >/dev/null
  NEW_BIN=$PWD/.build/release
fi
old_node=$OLD_BIN/sutra-node; new_node=$NEW_BIN/sutra-node; cli=$NEW_BIN/sutra
data=$work/cluster
cleanup() {
  [ -n "${load_pid:-}" ] && kill "$load_pid" 2>/dev/null || true
  [ -n "${old_load_pid:-}" ] && kill "$old_load_pid" 2>/dev/null || true
  "$cli" cluster down --data "$data" --timeout 5 >/dev/null 2>&1 || true
  "$cli" cluster down --data "$work/fresh" --timeout 5 >/dev/null 2>&1 || true
  [ -d "$work/old-src" ] && git worktree remove --force "$work/old-src" >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "old release: $("$old_node" --version 2>/dev/null || echo "$old_commit (no --version)"); new release: $("$new_node" --version)"
"$OLD_BIN/sutra" cluster up --data "$data" --base-port "$base" --shards 4 --dimension 4 >/dev/null
"$cli" certs init --out "$data/certs" --nodes 3 >/dev/null
endpoints="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"

# The load, through two SDKs at once: the NEW release's (`sutra put` of this tree: an SDK of release N against
# nodes of N-1 while old nodes remain) and the OLD release's (an SDK of N-1 against nodes of N once upgraded).
# Each writes its own concepts: new i gets id %032x and content "v<i>", old i gets id a%031x and content "o<i>".
# Each acknowledged write goes to acked.txt ("id content"), each failure to failed.txt, and each write's start
# and end (ns) to times-<sdk>.txt: the longest write and the longest gap between acknowledgements bound the
# longest time any shard was unavailable to a client.
: > "$work/acked.txt"; : > "$work/failed.txt"
load() {  # sdk name, its CLI, id format, content prefix
  local name=$1 bin=$2 fmt=$3 prefix=$4 i=0 id t0 t1 out
  : > "$work/times-$name.txt"
  while [ ! -e "$work/stop" ]; do
    i=$((i + 1)); id=$(printf "$fmt" "$i")
    t0=$(date +%s%N)
    if out=$("$bin" put --endpoints "$endpoints" --id "$id" --content "$prefix$i" 2>&1); then
      t1=$(date +%s%N); echo "$id $prefix$i" >> "$work/acked.txt"; echo "$t0 $t1" >> "$work/times-$name.txt"
    else echo "$name $id $out" >> "$work/failed.txt"; fi
  done
}
load new "$cli" '%032x' v &
load_pid=$!
load old "$OLD_BIN/sutra" 'a%031x' o &
old_load_pid=$!
sleep "$settle"

restart() {  # node, binary, extra args for `sutra node restart`
  local n=$1 bin=$2; shift 2
  "$cli" node restart "$n" --data "$data" --node-binary "$bin" "$@" | tail -1
  sleep "$settle"
}
tls() { echo -- --tls-cert "$data/certs/node-$1.crt" --tls-key "$data/certs/node-$1.key" --tls-ca "$data/certs/ca.crt" --peer-tls permissive; }

say "1. upgrade, one node at a time (peer TLS permissive: old nodes still speak plaintext)"
for n in 1 2 3; do restart "$n" "$new_node" $(tls "$n"); done
say "2. downgrade, one node at a time (the old release's flags)"
for n in 1 2 3; do restart "$n" "$old_node" --drop-flag tls-cert --drop-flag tls-key --drop-flag tls-ca --drop-flag peer-tls; done
say "3. upgrade again"
for n in 1 2 3; do restart "$n" "$new_node" $(tls "$n"); done
say "4. mutual TLS required: restart each node without --peer-tls=permissive"
for n in 1 2 3; do restart "$n" "$new_node" --drop-flag peer-tls; done

touch "$work/stop"; wait "$load_pid" "$old_load_pid"; load_pid=; old_load_pid=
acked=$(wc -l < "$work/acked.txt"); failed=$(wc -l < "$work/failed.txt")
say "load: $acked writes acknowledged ($(wc -l < "$work/times-new.txt") through the new SDK, $(wc -l < "$work/times-old.txt") through the old), $failed failed"
for sdk in new old; do
  awk -v sdk="$sdk" 'NR > 1 { gap = ($2 - prev) / 1e6; if (gap > maxgap) maxgap = gap } { d = ($2 - $1) / 1e6; if (d > maxd) maxd = d; sum += d; prev = $2 }
    END { printf "%s SDK: longest write %.0f ms, longest gap between acknowledgements %.0f ms, mean write %.0f ms\n", sdk, maxd, maxgap, sum / NR }' "$work/times-$sdk.txt"
done
status=0
if [ "$failed" -ne 0 ]; then head -5 "$work/failed.txt"; status=1; fi
tls_links=$(curl -s "http://127.0.0.1:$((base + 101))/metrics" | grep -c '^sutra_peer_link_tls{.*} 1$' || true)
echo "node 1's peer links over TLS: $tls_links of 2"
[ "$tls_links" -eq 2 ] || status=1

missing=0
while read -r id content; do
  "$cli" get --endpoints "$endpoints" "$id" 2>/dev/null | grep -q "\"$content\"" || { missing=$((missing + 1)); echo "acknowledged but not readable: $id ($content)"; }
done < "$work/acked.txt"
echo "acknowledged writes readable: $((acked - missing)) of $acked"
[ "$missing" -eq 0 ] || status=1

say "digest of the upgraded cluster against a fresh new cluster given exactly the acknowledged writes"
got=$("$cli" digest --data "$data" | tail -1)
"$cli" cluster up --data "$work/fresh" --base-port $((base + 30)) --shards 4 --dimension 4 --no-auth >/dev/null
fresh="127.0.0.1:$((base + 31)),127.0.0.1:$((base + 32)),127.0.0.1:$((base + 33))"
while read -r id content; do
  "$cli" put --endpoints "$fresh" --id "$id" --content "$content" >/dev/null
done < "$work/acked.txt"
want=$("$cli" digest --data "$work/fresh" | tail -1)
echo "upgraded: $got"; echo "expected: $want"
[ "$got" = "$want" ] || { echo "DIGESTS DIFFER"; status=1; }

say "$([ $status -eq 0 ] && echo "PASS" || echo "FAIL"): rolling upgrade $old_commit → $("$new_node" --version) and back, under load"
exit $status
