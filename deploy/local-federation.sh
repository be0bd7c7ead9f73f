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

# stop, start NAME CONFIG [ARGS...], http_url NAME, p2p_addr NAME.
# shellcheck source=deploy/nodes.sh
source "$here/nodes.sh"

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
