#!/usr/bin/env bash
# Loopback echo: prpc server on core 0, client on core 1, separate processes.
# Usage: benches/echo.sh [seconds] [runtime: current|multi]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
runtime=${2:-current}
cargo build --release -q -p prpc-benches --bin prpc_echo
bin=target/release/prpc_echo
port=$((20000 + RANDOM % 20000))
taskset -c 0 "$bin" server "127.0.0.1:$port" --runtime "$runtime" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 0.5
for in_flight in 1 128; do
  taskset -c 1 "$bin" client "127.0.0.1:$port" --in-flight "$in_flight" --size 64 \
    --seconds "$seconds" --runtime "$runtime"
done
