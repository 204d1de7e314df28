#!/usr/bin/env bash
# The balanced client (issue 15) in one program, cluster_bench: its overhead over a direct
# prpc::Client with both clients in one process, alternated against one server (scenario (b):
# 1 connection, 128 in flight, 64 B), on a current_thread and a 2-worker multi_thread runtime;
# then failover: three servers, one SIGKILLed under load, FAILOVER_RUNS times on each runtime.
# See "The balanced client: overhead in one process, and failover" in benches/README.md.
#
# Usage: benches/cluster_failover.sh
# Environment: REPEATS [5] SECONDS_PER_RUN [2] FAILOVER_RUNS [3] RUNTIMES [current multi]
#   MODES [overhead failover] CLIENT_CPU [1] (the overhead client on the current runtime; its
#   server is on core 0, the 2-worker client unpinned); BIN: a cluster_bench built elsewhere
#   (benches/baseline.sh REV cluster_bench), else this tree's is built.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-}
if [[ -z $bin ]]; then
  cargo build --release -q -p prpc-benches --bin cluster_bench
  bin=${CARGO_TARGET_DIR:-target}/release/cluster_bench
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in ${MODES:-overhead failover}; do
  for runtime in ${RUNTIMES:-current multi}; do
    if [[ $mode == overhead ]]; then
      pin=(taskset -c "${CLIENT_CPU:-1}")
      if [[ $runtime == multi ]]; then pin=(); fi
      "${pin[@]}" "$bin" overhead --runtime "$runtime" --repeats "${REPEATS:-5}" \
        --seconds "${SECONDS_PER_RUN:-2}" --in-flight 128 --size 64
    else
      for _ in $(seq "${FAILOVER_RUNS:-3}"); do
        "$bin" failover --runtime "$runtime" --seconds 6 --kill-at 2 --in-flight 128 --size 64
      done
    fi
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
