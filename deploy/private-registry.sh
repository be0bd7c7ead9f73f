#!/usr/bin/env bash
# Starts an organization's private registry beside a public one, as pgext-node processes on
# free loopback ports, and runs until interrupted (Ctrl-C or SIGTERM stops them all):
#
#   public  deploy/origin.toml           the public registry's origin
#   acme-a  deploy/private-origin.toml   sequences the private origin, mirrors the public one
#   acme-b  deploy/private-node-b.toml   mirrors both; the only peer allowed the private origin
#
#   deploy/private-registry.sh [RUN_DIR]
#
# RUN_DIR (default: a new temporary folder) holds each node's data folder, stdout (NAME.out),
# log (NAME.log) and pid (NAME.pid), and the admin key (admin.key) whose invitations the
# private registry honours. Prints "NAME HTTP_URL" per node, then "public-vkey VKEY",
# "acme-vkey VKEY", "acme-b-witness KEY" and "admin-key FILE". deploy/private-client.toml is
# the members' client configuration to fill in with them; docs/operating.md walks through it.
#
# PGEXT_NODE and PGEXT name the binaries; without them the release builds are made with cargo.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${CARGO_TARGET_DIR:-$here/../target}"
node="${PGEXT_NODE:-}"
pgext="${PGEXT:-}"
if [ -z "$node" ] || [ -z "$pgext" ]; then
    cargo build --release --quiet -p pgext-node -p pgext --manifest-path "$here/../Cargo.toml" >&2
    node="${node:-$target/release/pgext-node}"
    pgext="${pgext:-$target/release/pgext}"
fi
run="${1:-$(mktemp -d -t pgext-private.XXXXXX)}"
mkdir -p "$run"

# stop, start NAME CONFIG [ARGS...], http_url NAME, p2p_addr NAME.
# shellcheck source=deploy/nodes.sh
source "$here/nodes.sh"

# The admin key (kept on restart), and each organization node's peer id before it starts: each
# lists the other.
if [ ! -f "$run/admin.key" ]; then
    "$pgext" keygen admin --key "$run/admin.key" --json >"$run/admin.json"
fi
admin_pub="$(sed -n 's/.*"public_key": *"\([^"]*\)".*/\1/p' "$run/admin.json")"
peer_a="$("$node" --data "$run/acme-a" peer-id)"
peer_b="$("$node" --data "$run/acme-b" peer-id)"

start public "$here/origin.toml"
public_vkey="$(sed -n 's/^vkey //p' "$run/public.out")"
start acme-a "$here/private-origin.toml" --peer "$(p2p_addr public)" --allow "$peer_b" \
    --mirror "public=$public_vkey" --admin-key "$admin_pub"
acme_vkey="$(sed -n 's/^vkey //p' "$run/acme-a.out")"
start acme-b "$here/private-node-b.toml" --peer "$(p2p_addr acme-a)" --allow "$peer_a" \
    --private-mirror "acme=$acme_vkey" --mirror "public=$public_vkey"
for n in public acme-a acme-b; do
    echo "$n $(http_url "$n")"
done
echo "public-vkey $public_vkey"
echo "acme-vkey $acme_vkey"
echo "acme-b-witness $(sed -n 's/^witness //p' "$run/acme-b.out")"
echo "admin-key $run/admin.key"

# Until interrupted (or until every node has exited).
wait "${pids[@]}" || true
