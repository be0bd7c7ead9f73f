#!/usr/bin/env bash
# Starts the federation of deploy/origin.toml, deploy/mirror-a.toml and deploy/mirror-b.toml on
# this machine, as three pgext-node processes on free loopback ports (HTTP and libp2p), and runs
# until interrupted: Ctrl-C or SIGTERM stops all three. A node stopped on its own (kill the pid
# in RUN_DIR/NAME.pid) leaves the others running, as in a real federation.
#
#   deploy/local-federation.sh [RUN_DIR]
#
# RUN_DIR (default: a new temporary folder) holds each node's data folder, stdout (NAME.out),
# log (NAME.log) and pid (NAME.pid); run again on the same folder to restart the same
# federation. Prints one line per node, "NAME HTTP_URL", then "vkey VKEY" (the origin's log
# key, which the mirrors pin). The mirrors serve the origin at HTTP_URL/origins/main/.
#
# PGEXT_NODE names the pgext-node binary; without it the release build is made with cargo.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
node="${PGEXT_NODE:-}"
if [ -z "$node" ]; then
    cargo build --release --quiet -p pgext-node --manifest-path "$here/../Cargo.toml" >&2
    target="${CARGO_TARGET_DIR:-$here/../target}"
    node="$target/release/pgext-node"
fi
run="${1:-$(mktemp -d -t pgext-federation.XXXXXX)}"
mkdir -p "$run"

pids=()
stop() {
    trap - EXIT INT TERM
    if [ ${#pids[@]} -gt 0 ]; then
        kill -TERM "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
}
trap stop EXIT
trap 'stop; exit 0' INT TERM

# start NAME CONFIG [ARGS...]: starts a node and waits until it printed its last start-up line.
start() {
    local name=$1 config=$2
    shift 2
    "$node" --config "$config" --data "$run/$name" --http 127.0.0.1:0 \
        --p2p-listen /ip4/127.0.0.1/tcp/0 "$@" run >"$run/$name.out" 2>"$run/$name.log" &
    local pid=$!
    pids+=("$pid")
    echo "$pid" >"$run/$name.pid"
    for _ in $(seq 1 300); do
        if grep -q '^witness ' "$run/$name.out"; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name exited during start-up; its log:" >&2
            cat "$run/$name.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "$name did not start within 30 s; see $run/$name.log" >&2
    exit 1
}
http_url() { sed -n 's/^pgext-node serving .* on //p' "$run/$1.out"; }
p2p_addr() { sed -n 's/^p2p //p' "$run/$1.out" | head -n 1; }

start origin "$here/origin.toml"
vkey="$(sed -n 's/^vkey //p' "$run/origin.out")"
for m in mirror-a mirror-b; do
    start "$m" "$here/$m.toml" --peer "$(p2p_addr origin)" --mirror "main=$vkey"
done
for n in origin mirror-a mirror-b; do
    echo "$n $(http_url "$n")"
done
echo "vkey $vkey"

# Until interrupted (or until every node has exited).
wait "${pids[@]}" || true
