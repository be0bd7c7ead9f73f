# Shared by deploy/local-federation.sh and deploy/private-registry.sh (sourced, not run): starts
# pgext-node processes in RUN_DIR ($run) with the binary $node, and stops them all on exit.

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
