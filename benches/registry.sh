#!/usr/bin/env bash
# The built-in registry's figures (issue 14): change propagation to 1,000 watchers, and the
# registry's CPU and memory holding 10,000 heartbeating registrations. The registry
# (`prpc-registry serve`, release build) runs as its own process pinned to one core, the load
# (`registry_load`, benches/src/bin/registry_load.rs) pinned to the other; a fresh registry
# for every run.
#
# Usage: benches/registry.sh [propagation] [scale]     (both when none is named)
#
# Environment (defaults in brackets):
#   REPEATS [3]            propagation runs (medians are reported)
#   WATCHERS [1000]        CHANGES [100]        SPACING_MS [20]
#   RAW [0]                1: watchers read the raw watch stream instead of a `RegistryClient`
#                          watch (a diagnostic: what the registry alone delivers)
#   SCALE_REPEATS [1]      INSTANCES [10000]    SERVICES [100]     CONNECTIONS [100]
#   TTL_S [30]             SETTLE_S [5]         SCALE_SECONDS [60]
#   REGISTRY_CPU [1]       LOAD_CPU [0]         cores for taskset
#   REGISTRY [$CARGO_TARGET_DIR/release/prpc-registry]  the registry binary (another build to
#                          compare against)
#   CARGO_TARGET_DIR       where cargo builds (as cargo does) [target]
#
# The registry gets `--max-per-peer 20000`: every client here comes from 127.0.0.1, and the
# default bound is 10,000 registrations per peer address. Propagation opens one connection
# per watcher, so the open-file limit is raised to what the watchers need.
# Each run's line goes to $CARGO_TARGET_DIR/registry/runs-DATE.txt and to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

case ${1:-} in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
scenarios=("$@")
if [[ ${#scenarios[@]} == 0 ]]; then scenarios=(propagation scale); fi
repeats=${REPEATS:-3}
watchers=${WATCHERS:-1000} changes=${CHANGES:-100} spacing_ms=${SPACING_MS:-20}
scale_repeats=${SCALE_REPEATS:-1}
instances=${INSTANCES:-10000} services=${SERVICES:-100} connections=${CONNECTIONS:-100}
ttl_s=${TTL_S:-30} settle_s=${SETTLE_S:-5} scale_seconds=${SCALE_SECONDS:-60}
registry_cpu=${REGISTRY_CPU:-1}
load_cpu=${LOAD_CPU:-0}

cargo build --release -q -p prpc-registry
cargo build --release -q -p prpc-benches --bin registry_load
target=${CARGO_TARGET_DIR:-target}
registry=${REGISTRY:-$target/release/prpc-registry}
mkdir -p "$target/registry"
runs="$target/registry/runs-$(date -u +%Y%m%dT%H%M%SZ).txt"
: >"$runs"
ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < watchers + 100)); then
  echo "the open-file limit $(ulimit -n) is too low for $watchers watchers" >&2
  exit 1
fi

registry_pid=
registry_out=$(mktemp)
cleanup() {
  if [[ -n $registry_pid ]]; then kill "$registry_pid" 2>/dev/null || true; fi
  rm -f "$registry_out"
}
trap cleanup EXIT

# start_registry: a fresh registry on its core; sets registry_pid and addr.
start_registry() {
  : >"$registry_out"
  taskset -c "$registry_cpu" "$registry" serve 127.0.0.1:0 \
    --max-per-peer 20000 >"$registry_out" 2>&1 &
  registry_pid=$!
  addr=
  for _ in $(seq 100); do
    addr=$(awk '/^listening on /{print $3; exit}' "$registry_out")
    [[ -n $addr ]] && return 0
    sleep 0.05
  done
  echo "the registry did not start: $(cat "$registry_out")" >&2
  exit 1
}

stop_registry() {
  kill "$registry_pid" 2>/dev/null || true
  wait "$registry_pid" 2>/dev/null || true
  registry_pid=
}

# run SCENARIO REPEAT ARGS...: one registry, one load run, one line in $runs. An argument
# `PID` stands for the registry's process id.
run() {
  local scenario=$1 repeat=$2 line arg args=()
  shift 2
  start_registry
  for arg in "$@"; do
    if [[ $arg == PID ]]; then args+=("$registry_pid"); else args+=("$arg"); fi
  done
  if ! line=$(taskset -c "$load_cpu" "$target/release/registry_load" "$scenario" "$addr" "${args[@]}"); then
    line="error=load-failed"
  fi
  stop_registry
  line="scenario=$scenario repeat=$repeat load1=$(cut -d' ' -f1 /proc/loadavg) $line"
  echo "$line" | tee -a "$runs"
}

echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(uname -r)"
echo "- registry: $registry"
echo "- registry on core $registry_cpu, load on core $load_cpu; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for scenario in "${scenarios[@]}"; do
  case $scenario in
    propagation)
      for repeat in $(seq "$repeats"); do
        # shellcheck disable=SC2046 # no flag, or one
        run propagation "$repeat" --registry-pid PID --watchers "$watchers" --changes "$changes" \
          --spacing-ms "$spacing_ms" $(if [[ ${RAW:-0} == 1 ]]; then echo --raw; fi)
      done
      ;;
    scale)
      for repeat in $(seq "$scale_repeats"); do
        run scale "$repeat" --registry-pid PID --instances "$instances" --services "$services" \
          --connections "$connections" --ttl-s "$ttl_s" --settle-s "$settle_s" \
          --seconds "$scale_seconds"
      done
      ;;
    *)
      echo "unknown scenario $scenario (try --help)" >&2
      exit 2
      ;;
  esac
done
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Medians over the repeats of each scenario.
python3 - "$runs" <<'PY'
import statistics
import sys

runs = [dict(item.split("=", 1) for item in line.split() if "=" in item) for line in open(sys.argv[1])]
KEYS = {
    "propagation": ["p50_us", "p90_us", "p99_us", "max_us", "last_watcher_p50_us", "skipped",
                    "missing", "call_p50_us"],
    "scale": ["cpu_pct", "rss_max_mib", "hwm_mib", "heartbeats_per_s", "failures",
              "registry_instances_end"],
}
for scenario, keys in KEYS.items():
    found = [run for run in runs if run.get("scenario") == scenario and "error" not in run]
    if not found:
        continue
    medians = []
    for key in keys:
        values = [float(run[key]) for run in found if key in run]
        if values:
            medians.append(f"{key}={statistics.median(values):g}")
    print(f"median of {len(found)} {scenario} run(s): " + " ".join(medians))
PY
