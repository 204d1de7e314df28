#!/usr/bin/env bash
# The balanced client's cost per call: scenario (b) of the peer comparison (1 connection, 128
# in flight, 64 B) through a generated client over a direct prpc::Client (macro_echo) and over
# a one-endpoint Cluster (cluster_echo), against one macro_echo server, alternating REPEATS
# times on each runtime. Prints each run's line, then the median calls/s of each and their
# ratio.
#
#   benches/cluster.sh            # REPEATS=5 SECONDS_PER_RUN=3
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${REPEATS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
cargo build -q --release -p prpc-benches --bin macro_echo --bin cluster_echo
bin=target/release
for runtime in current multi; do
  fifo=$(mktemp -u)
  mkfifo "$fifo"
  taskset -c 1 "$bin/macro_echo" server 127.0.0.1:0 --runtime "$runtime" >"$fifo" &
  server=$!
  read -r _ addr <"$fifo"
  rm -f "$fifo"
  direct=() cluster=()
  for _ in $(seq "$REPEATS"); do
    for kind in macro cluster; do
      line=$(taskset -c 0 "$bin/${kind}_echo" client "$addr" --connections 1 --in-flight 128 \
        --size 64 --seconds "$SECONDS_PER_RUN" --warmup 1 --runtime "$runtime")
      echo "$runtime $kind $line"
      rate=$(grep -o 'calls/s=[0-9.]*' <<<"$line" | cut -d= -f2)
      if [ "$kind" = macro ]; then direct+=("$rate"); else cluster+=("$rate"); fi
    done
  done
  kill "$server"
  wait "$server" 2>/dev/null || true
  python3 - "$runtime" "${direct[*]}" "${cluster[*]}" <<'PY'
import statistics, sys
runtime, direct, cluster = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
d, c = statistics.median(direct), statistics.median(cluster)
print(f"{runtime}: direct {d:,.0f} calls/s, cluster {c:,.0f} calls/s, cluster/direct {c/d:.2f}")
PY
done
