#!/usr/bin/env bash
# The JSON gateway of prpc-http under load (issue 16): gateway_echo's server (a
# #[prpc::service] echo of a string, attached with prpc_http::Http::new().attach) loaded over
# HTTP/1.1 (POST /Echo/echo, {"text": "..."}, 64 kept-alive connections, one request at a
# time on each) and, interleaved with that, the same method called by the generated prpc
# client over 64 connections, 1 call in flight on each, in JSON and in MessagePack. Server on
# one core and client on the other (taskset), a fresh server per run. Prints one markdown
# table of medians, with min–max and the gateway's ratio to each native run, then the same
# over the "full-core" runs only: those in which both processes got at least 0.9 of their
# core (client_cpu_util and server_cpu_util; on this shared box other work sometimes leaves
# both at 0.3-0.4, and their calls/s then say nothing about prpc).
#
# Usage: benches/gateway.sh
#
# Environment (defaults in brackets):
#   SECONDS_PER_RUN [5]   WARMUP [1]   REPEATS [3]   RUNTIMES [current multi]
#   VIAS [gateway json msgpack]        how the client calls (gateway_echo --via)
#   CONNECTIONS [64]      SIZE [64]    the string's length in bytes
#   SERVER_CPU [0]        CLIENT_CPU [1]
#   CARGO_TARGET_DIR      where cargo builds [target]
# Each run's line goes to $CARGO_TARGET_DIR/gateway/runs-DATE.txt, the table to table-DATE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/lib.sh
source benches/lib.sh

case ${1:-} in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
seconds=${SECONDS_PER_RUN:-5} warmup=${WARMUP:-1} repeats=${REPEATS:-3}
runtimes=(${RUNTIMES:-current multi})
vias=(${VIAS:-gateway json msgpack})
connections=${CONNECTIONS:-64} size=${SIZE:-64}
server_cpu=${SERVER_CPU:-0} client_cpu=${CLIENT_CPU:-1}

cargo build --release -q -p prpc-benches --bin gateway_echo
target=${CARGO_TARGET_DIR:-target}
bin="$target/release/gateway_echo"
mkdir -p "$target/gateway"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
runs="$target/gateway/runs-$stamp.txt"
table="$target/gateway/table-$stamp.md"
: >"$runs"

server_pid=
server_out=$(mktemp)
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -f "$server_out"
}
trap cleanup EXIT

# run_one VIA RUNTIME REPEAT: one server, one client run, one line in $runs.
run_one() {
  local via=$1 runtime=$2 repeat=$3 addr= line
  : >"$server_out"
  taskset -c "$server_cpu" "$bin" server 127.0.0.1:0 --runtime "$runtime" >>"$server_out" 2>&1 &
  server_pid=$!
  addr=$(listening_addr "$server_out")
  if [[ -z $addr ]]; then
    line="error=server-did-not-start"
  elif ! line=$(timeout "$(python3 -c "print($seconds + $warmup + 30)")" \
    taskset -c "$client_cpu" "$bin" client "$addr" --via "$via" \
    --connections "$connections" --in-flight "$connections" --size "$size" \
    --seconds "$seconds" --warmup "$warmup" --runtime "$runtime"); then
    line="error=client-failed"
  fi
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  echo "via=$via runtime=$runtime repeat=$repeat load1=$(cut -d' ' -f1 /proc/loadavg) $line" >>"$runs"
  printf '  %-8s %-7s #%s  %s\n' "$via" "$runtime" "$repeat" "$line" >&2
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
echo "gateway: $((${#runtimes[@]} * repeats * ${#vias[@]})) runs of ${seconds}s; lines in $runs" >&2
for runtime in "${runtimes[@]}"; do
  for repeat in $(seq "$repeats"); do
    # Interleaved, the order rotated each repeat.
    n=${#vias[@]}
    for i in $(seq 0 $((n - 1))); do
      run_one "${vias[$(((i + repeat - 1) % n))]}" "$runtime" "$repeat"
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "- date: $started"
  echo "- machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(uname -r)"
  echo "- command: \`SECONDS_PER_RUN=$seconds WARMUP=$warmup REPEATS=$repeats RUNTIMES=\"${runtimes[*]}\" benches/gateway.sh\`"
  echo "- $connections connections, 1 call in flight on each, a $size-byte string; server on core $server_cpu, client on core $client_cpu"
  echo "- load average (1/5/15 min) before: $load_before; after: $load_after"
  echo
  python3 - "$runs" "${vias[@]}" <<'PY'
import statistics
import sys

runs_file, vias = sys.argv[1], sys.argv[2:]
runs = [dict(item.split("=", 1) for item in line.split() if "=" in item) for line in open(runs_file)]
FULL_CORE = 0.9

def full_core(run):
    return all(float(run.get(side, 0)) >= FULL_CORE
               for side in ("client_cpu_util", "server_cpu_util"))
LABELS = {"gateway": "HTTP/1.1 JSON gateway", "json": "prpc, JSON", "msgpack": "prpc, MessagePack"}

def values(runtime, via, metric, only=lambda run: True):
    return [float(run[metric]) for run in runs
            if run.get("runtime") == runtime and run.get("via") == via and metric in run
            and only(run)]

def fmt(value):
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"

natives = [via for via in vias if via != "gateway"]

def table(only):
    header = ["runtime", "calls", "runs", "calls/s median (min–max)", "p50 µs", "p99 µs",
              "client CPU µs/call", "server CPU µs/call", "B on the wire/call"]
    header += [f"gateway / {via}" for via in natives] if "gateway" in vias else []
    print("| " + " | ".join(header) + " |")
    print("|---|---|" + "---:|" * (len(header) - 2))
    for runtime in [r for r in ("current", "multi") if any(run.get("runtime") == r for run in runs)]:
        gateway = values(runtime, "gateway", "calls/s", only)
        for via in vias:
            rates = values(runtime, via, "calls/s", only)
            if not rates:
                continue
            row = [runtime, LABELS.get(via, via), str(len(rates)),
                   f"{fmt(statistics.median(rates))} ({fmt(min(rates))}–{fmt(max(rates))})"]
            for metric in ("p50_us", "p99_us", "client_us_per_call", "server_us_per_call",
                           "wire_bytes_per_call"):
                row.append(fmt(statistics.median(values(runtime, via, metric, only))))
            if "gateway" in vias:
                for native in natives:
                    theirs = values(runtime, native, "calls/s", only)
                    row.append(f"{statistics.median(gateway) / statistics.median(theirs):.2f}"
                               if via == "gateway" and gateway and theirs else "")
            print("| " + " | ".join(row) + " |")

print("All runs, medians:")
print()
table(lambda run: True)
print()
print(f"Full-core runs only (both processes' CPU util ≥ {FULL_CORE}), medians:")
print()
table(full_core)
errors = [run for run in runs if "error" in run]
if errors:
    print()
    print(f"failed runs: {len(errors)}: " + "; ".join(
        f"{r.get('via')} {r.get('runtime')} #{r.get('repeat')} {r.get('error')}" for r in errors))
PY
} | tee "$table"
echo "table saved as $table" >&2
