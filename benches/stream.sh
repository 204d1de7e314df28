#!/usr/bin/env bash
# The stream benchmarks: the same stream service (prpc_benches::streams) in prpc, tonic and a
# raw framed baseline, server and client in separate processes pinned to different cores,
# both tokio runtimes, three scenarios, runs interleaved within each scenario and repeated.
# Prints one markdown table of medians and ratios.
#
# Usage: benches/stream.sh [--quick]
#
#   --quick (or QUICK=1)   1 s runs, 0.3 s warm-up, one repeat: a smoke run of about a minute.
#
# Environment (defaults in brackets; quick mode's after the slash):
#   SECONDS_PER_RUN [5/1]  measured seconds per run      WARMUP [1/0.3]  warm-up seconds per run
#   REPEATS [3/1]          runs per program, scenario and runtime
#   SCENARIOS [s c m]      RUNTIMES [current multi]
#   FRAMEWORKS [prpc macro tonic raw]  (macro only when benches/src/bin/macro_stream.rs exists)
#   MIXED_STREAMS [100]    busy server streams beside the unary load of scenario m
#   SERVER_CPU [0]         CLIENT_CPU [1]                cores for taskset
#   CARGO_TARGET_DIR       where cargo builds (as cargo does) [target]
#
# Scenarios (one connection each):
#   s  a server stream of 64 B messages, counted at the client: messages/s
#   c  a client stream of 1 MiB messages, counted at the server: MiB/s
#   m  compare.sh's scenario (b) (128 unary calls in flight, 64 B) alone, and beside
#      MIXED_STREAMS server streams of 64 B messages read as fast as credit allows: calls/s
#      both ways and their ratio (raw has no unary calls and is left out)
# and for s and c the CPU time per message on each side. Each run's raw line goes to
# $CARGO_TARGET_DIR/stream/runs-DATE.txt, the table also to table-DATE.md beside it, and the
# programs' errors to stderr-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/lib.sh
source benches/lib.sh

quick=${QUICK:-0}
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "unknown argument $arg (try --help)" >&2
      exit 2
      ;;
  esac
done
if [[ $quick == 1 ]]; then
  seconds=${SECONDS_PER_RUN:-1} warmup=${WARMUP:-0.3} repeats=${REPEATS:-1}
else
  seconds=${SECONDS_PER_RUN:-5} warmup=${WARMUP:-1} repeats=${REPEATS:-3}
fi
scenarios=(${SCENARIOS:-s c m})
runtimes=(${RUNTIMES:-current multi})
default_frameworks="prpc tonic raw"
if [[ -e benches/src/bin/macro_stream.rs ]]; then default_frameworks="prpc macro tonic raw"; fi
frameworks=(${FRAMEWORKS:-$default_frameworks})
mixed_streams=${MIXED_STREAMS:-100}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}

# A job is FRAMEWORK/VARIANT: the variant names the client's flags within its scenario.
declare -A variant_flags=(
  [s]="--scenario server-stream --size 64"
  [c]="--scenario client-stream --size 1048576"
  [alone]="--scenario mixed --in-flight 128 --size 64 --streams 0"
  [streams]="--scenario mixed --in-flight 128 --size 64 --streams $mixed_streams"
)
# jobs_of SCENARIO: the jobs of a scenario, one per line.
jobs_of() {
  local framework
  for framework in "${frameworks[@]}"; do
    case $1 in
      s | c) echo "$framework/$1" ;;
      m) if [[ $framework != raw ]]; then echo "$framework/alone" "$framework/streams"; fi ;;
      *)
        echo "unknown scenario $1" >&2
        exit 2
        ;;
    esac
  done | tr ' ' '\n'
}
for scenario in "${scenarios[@]}"; do jobs_of "$scenario" >/dev/null; done

bins=()
for framework in "${frameworks[@]}"; do bins+=(--bin "${framework}_stream"); done
cargo build --release -q -p prpc-benches "${bins[@]}"
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target/stream"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
runs="$target/stream/runs-$stamp.txt"
table="$target/stream/table-$stamp.md"
log="$target/stream/stderr-$stamp.txt"
: >"$runs"
: >"$log"

server_pid=
server_out=$(mktemp)
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -f "$server_out"
}
trap cleanup EXIT

# run_one JOB RUNTIME SCENARIO REPEAT: one server, one client run, one line in $runs.
run_one() {
  local framework=${1%/*} variant=${1#*/} runtime=$2 scenario=$3 repeat=$4
  local bin="$target/release/${framework}_stream" addr= line
  : >"$server_out"
  taskset -c "$server_cpu" "$bin" server 127.0.0.1:0 --runtime "$runtime" >>"$server_out" 2>&1 &
  server_pid=$!
  addr=$(listening_addr "$server_out")
  if [[ -z $addr ]]; then
    line="error=server-did-not-start"
  else
    # shellcheck disable=SC2086 # the variant's flags are words
    if ! line=$(timeout "$(python3 -c "print($seconds + $warmup + 30)")" \
      taskset -c "$client_cpu" "$bin" client "$addr" ${variant_flags[$variant]} \
      --seconds "$seconds" --warmup "$warmup" --runtime "$runtime" 2>>"$log"); then
      line="error=client-failed(see-$log)"
    fi
  fi
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  grep -v '^listening ' "$server_out" >>"$log" || true
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  echo "framework=$framework variant=$variant group=$scenario runtime=$runtime repeat=$repeat load1=$load $line" >>"$runs"
  printf '  %-5s %-7s %-7s %s #%s  %s\n' "$framework" "$variant" "$runtime" "$scenario" "$repeat" "$line" >&2
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
count=0
for scenario in "${scenarios[@]}"; do count=$((count + $(jobs_of "$scenario" | wc -l))); done
count=$((count * ${#runtimes[@]} * repeats))
echo "stream: $count runs of ${seconds}s (+${warmup}s warm-up); lines in $runs" >&2
for scenario in "${scenarios[@]}"; do
  mapfile -t jobs < <(jobs_of "$scenario")
  for runtime in "${runtimes[@]}"; do
    for repeat in $(seq "$repeats"); do
      # Interleaved, and the order rotated each repeat, so that no job always runs first or
      # right after the same neighbour.
      n=${#jobs[@]}
      for i in $(seq 0 $((n - 1))); do
        run_one "${jobs[$(((i + repeat - 1) % n))]}" "$runtime" "$scenario" "$repeat"
      done
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "- date: $started"
  echo "- machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(uname -r)"
  echo "- command: \`$(if [[ $quick == 1 ]]; then echo 'QUICK=1 '; fi)SECONDS_PER_RUN=$seconds WARMUP=$warmup REPEATS=$repeats benches/stream.sh\`"
  echo "- frameworks: ${frameworks[*]}; scenario m with $mixed_streams streams"
  echo "- load average (1/5/15 min) before: $load_before; after: $load_after"
  echo "- server on core $server_cpu, client on core $client_cpu; ${seconds} s per run after ${warmup} s warm-up; $repeats repeat(s); medians"
  echo
  python3 - "$runs" "$mixed_streams" "${frameworks[@]}" <<'PY'
import statistics
import sys

runs_file, mixed_streams, frameworks = sys.argv[1], sys.argv[2], sys.argv[3:]
runs = []
for line in open(runs_file):
    runs.append(dict(item.split("=", 1) for item in line.split() if "=" in item))

# (group, variant, metric key, label, higher is better)
ROWS = [
    ("s", "s", "msgs/s", "(s) server stream, 64 B | msgs/s", True),
    ("s", "s", "client_us_per_msg", "(s) server stream, 64 B | client CPU µs/msg", False),
    ("s", "s", "server_us_per_msg", "(s) server stream, 64 B | server CPU µs/msg", False),
    ("c", "c", "mib/s", "(c) client stream, 1 MiB | MiB/s", True),
    ("c", "c", "client_us_per_msg", "(c) client stream, 1 MiB | client CPU µs/msg", False),
    ("c", "c", "server_us_per_msg", "(c) client stream, 1 MiB | server CPU µs/msg", False),
    ("m", "alone", "calls/s", "(m) unary (b) alone | calls/s", True),
    ("m", "streams", "calls/s", f"(m) unary (b) + {mixed_streams} streams | calls/s", True),
    ("m", "streams", "p99_us", f"(m) unary (b) + {mixed_streams} streams | p99 µs", False),
    ("m", "streams", "stream_msgs/s",
     f"(m) unary (b) + {mixed_streams} streams | stream msgs/s", True),
]
# (group, metric) -> [(peer, bound)]: prpc / peer must be at least bound.
GOALS = {("s", "msgs/s"): [("tonic", 3.0)], ("c", "mib/s"): [("raw", 0.9)]}

def values(runtime, variant, framework, metric):
    return [float(run[metric]) for run in runs
            if run.get("runtime") == runtime and run.get("variant") == variant
            and run.get("framework") == framework and metric in run]

def median(found):
    return statistics.median(found) if found else None

def fmt(value):
    if value is None:
        return "—"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"

mine = "prpc" if "prpc" in frameworks else frameworks[0]
peers = [peer for peer in ("macro", "tonic", "raw") if peer in frameworks and peer != mine]
header = ["runtime", "scenario", "metric"] + frameworks + [f"{mine}/{peer}" for peer in peers] \
    + ["spread", "goal"]
print("| " + " | ".join(header) + " |")
print("|" + "|".join("---" if i < 3 else "---:" for i in range(len(header) - 1)) + "|---|")
misses = []
seen_runtimes = [r for r in ("current", "multi") if any(run.get("runtime") == r for run in runs)]
seen_groups = {run.get("group") for run in runs}
for runtime in seen_runtimes:
    for group, variant, metric, label, higher_better in ROWS:
        if group not in seen_groups:
            continue
        medians, spreads = {}, []
        for framework in frameworks:
            found = values(runtime, variant, framework, metric)
            medians[framework] = median(found)
            if len(found) > 1 and medians[framework]:
                spreads.append((max(found) - min(found)) / medians[framework])
        ratios = {}
        for peer in peers:
            ours, theirs = medians.get(mine), medians.get(peer)
            ratios[peer] = ours / theirs if ours is not None and theirs else None
        verdicts = []
        for peer, bound in GOALS.get((group, metric), []):
            ratio = ratios.get(peer)
            if ratio is None:
                continue
            met = ratio >= bound
            verdicts.append(f"{'ok' if met else '**MISS**'} ≥{bound:g}×{peer}")
            if not met:
                misses.append(f"{runtime} {label.replace(' | ', ' ')}: {mine}/{peer} "
                              f"{ratio:.2f} (goal ≥{bound:g})")
        row = [runtime] + label.split(" | ")
        row += [fmt(medians[f]) for f in frameworks]
        row += ["—" if ratios[p] is None else f"{ratios[p]:.2f}" for p in peers]
        row += [f"{max(spreads) * 100:.0f}%" if spreads else "—", ", ".join(verdicts)]
        print("| " + " | ".join(row) + " |")
    if "m" in seen_groups:
        # Each framework's unary calls/s beside the streams over its calls/s alone, medians of
        # the same invocation.
        row = [runtime, f"(m) unary (b): + {mixed_streams} streams / alone", "ratio"]
        for framework in frameworks:
            alone = median(values(runtime, "alone", framework, "calls/s"))
            busy = median(values(runtime, "streams", framework, "calls/s"))
            row.append(f"{busy / alone:.3f}" if alone and busy is not None else "—")
        row += ["—" for _ in peers] + ["—", ""]
        print("| " + " | ".join(row) + " |")
errors = [run for run in runs if "error" in run]
print()
print("spread: the largest (max − min) / median over the repeats of any framework in that row.")
if errors:
    print(f"failed runs: {len(errors)}: " + "; ".join(
        f"{r.get('framework')} {r.get('variant')} {r.get('runtime')} {r.get('error')}"
        for r in errors))
print()
print("Goals missed:" if misses else "Goals: all met.")
for miss in misses:
    print(f"- {miss}")
PY
} | tee "$table"
echo "table saved as $table" >&2
