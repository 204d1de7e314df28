#!/usr/bin/env bash
# The peer comparison (issue 6): the same echo service (bytes in, the same bytes out) in prpc,
# tarpc, tonic and a raw framed tokio echo, server and client in separate processes pinned to
# different cores, both tokio runtimes, four scenarios, frameworks interleaved within each
# scenario and every run repeated. Prints one markdown table of medians and ratios.
#
# Usage: benches/compare.sh [--quick]
#
#   --quick (or QUICK=1)   1 s runs, 0.3 s warm-up, one repeat: a smoke run of about 90 s.
#
# Environment (defaults in brackets; quick mode's after the slash):
#   SECONDS_PER_RUN [5/1]  measured seconds per run      WARMUP [1/0.3]  warm-up seconds per run
#   REPEATS [3/1]          runs per framework, scenario and runtime
#   SCENARIOS [a b c d e]  RUNTIMES [current multi]      FRAMEWORKS [prpc macro tarpc tonic raw]
#   SERVER_CPU [0]         CLIENT_CPU [1]                cores for taskset
#   CARGO_TARGET_DIR       where cargo builds (as cargo does) [target]
#   BASELINE_BIN           a prpc_echo built from another commit (benches/baseline.sh REV
#                          prints one); the framework "before" runs it, and the table gains
#                          a prpc/before ratio
#
# Frameworks are NAME_echo programs (prpc macro cluster tarpc tonic raw), plus "before"
# (above) and "http": prpc_echo with its server attached to prpc-http (PRPC_ECHO_HTTP=1), the
# client unchanged; the table then gains an http/prpc ratio with each side's min–max.
# "nostats" and "macro_nostats" are prpc_echo and macro_echo with the server's stats off
# (PRPC_STATS=0); with prpc or macro beside them the table gains a stats on/off ratio.
#
# Scenarios:
#   a  1 connection,    1 call in flight,  64 B bodies: latency p50/p99/p99.9 (and calls/s)
#   b  1 connection,  128 calls in flight, 64 B:        calls/s
#   c  4 connections, 256 calls in flight, 4 KiB:       calls/s
#   d  1 connection,    8 calls in flight, 1 MiB:       MiB/s (body bytes echoed, one way)
#   e  1 connection,  128 calls in flight, a record of a dozen mixed fields (about 1 KiB in
#      MessagePack; src/record.rs): calls/s. macro and tarpc echo the typed record (serde on
#      both sides); prpc, tonic and raw echo its MessagePack bytes (the ceiling). "before"
#      skips it (older programs have no record).
# and in every scenario CPU time per call on each side and TCP payload bytes and segments per
# call (both ways). Each run's raw line goes to $CARGO_TARGET_DIR/compare/runs-DATE.txt, the
# table also to table-DATE.md beside it, and the programs' errors to stderr-DATE.txt.
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
scenarios=(${SCENARIOS:-a b c d e})
runtimes=(${RUNTIMES:-current multi})
frameworks=(${FRAMEWORKS:-prpc macro tarpc tonic raw})
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}

declare -A scenario_flags=(
  [a]="--connections 1 --in-flight 1 --size 64"
  [b]="--connections 1 --in-flight 128 --size 64"
  [c]="--connections 4 --in-flight 256 --size 4096"
  [d]="--connections 1 --in-flight 8 --size 1048576"
  [e]="--connections 1 --in-flight 128 --payload record"
)
for scenario in "${scenarios[@]}"; do
  [[ -n ${scenario_flags[$scenario]:-} ]] || { echo "unknown scenario $scenario" >&2; exit 2; }
done

# program_of FRAMEWORK: the echo program that serves it.
program_of() {
  case $1 in
    http | nostats) echo prpc_echo ;;
    macro_nostats) echo macro_echo ;;
    *) echo "$1_echo" ;;
  esac
}

bins=()
for framework in "${frameworks[@]}"; do
  if [[ $framework == before ]]; then
    [[ -x ${BASELINE_BIN:-} ]] || { echo "framework before needs BASELINE_BIN" >&2; exit 2; }
    continue
  fi
  bins+=(--bin "$(program_of "$framework")")
done
cargo build --release -q -p prpc-benches "${bins[@]}"
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target/compare"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
runs="$target/compare/runs-$stamp.txt"
table="$target/compare/table-$stamp.md"
log="$target/compare/stderr-$stamp.txt"
: >"$runs"
: >"$log"

server_pid=
server_out=$(mktemp)
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -f "$server_out"
}
trap cleanup EXIT

# run_one FRAMEWORK RUNTIME SCENARIO REPEAT: one server, one client run, one line in $runs.
run_one() {
  local framework=$1 runtime=$2 scenario=$3 repeat=$4
  local bin="$target/release/$(program_of "$framework")" addr= line server_env=()
  if [[ $framework == before ]]; then
    [[ $scenario == e ]] && return 0
    bin=$BASELINE_BIN
  fi
  case $framework in
    http) server_env=(PRPC_ECHO_HTTP=1) ;;
    nostats | macro_nostats) server_env=(PRPC_STATS=0) ;;
  esac
  # Emptied here, not by the server's redirection, which may happen after the first poll
  # below and leave the previous server's address to be read.
  : >"$server_out"
  env "${server_env[@]}" taskset -c "$server_cpu" "$bin" server 127.0.0.1:0 --runtime "$runtime" >>"$server_out" 2>&1 &
  server_pid=$!
  addr=$(listening_addr "$server_out")
  if [[ -z $addr ]]; then
    line="error=server-did-not-start"
  else
    # shellcheck disable=SC2086 # the scenario's flags are words
    if ! line=$(timeout "$(python3 -c "print($seconds + $warmup + 30)")" \
      taskset -c "$client_cpu" "$bin" client "$addr" ${scenario_flags[$scenario]} \
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
  echo "framework=$framework scenario=$scenario runtime=$runtime repeat=$repeat load1=$load $line" >>"$runs"
  printf '  %-5s %-7s %s #%s  %s\n' "$framework" "$runtime" "$scenario" "$repeat" "$line" >&2
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
count=$((${#scenarios[@]} * ${#runtimes[@]} * repeats * ${#frameworks[@]}))
echo "compare: $count runs of ${seconds}s (+${warmup}s warm-up); lines in $runs" >&2
for scenario in "${scenarios[@]}"; do
  for runtime in "${runtimes[@]}"; do
    for repeat in $(seq "$repeats"); do
      # Interleaved, and the order rotated each repeat (A B C D, B C D A, ...), so that no
      # framework always runs first or right after the same neighbour.
      n=${#frameworks[@]}
      for i in $(seq 0 $((n - 1))); do
        run_one "${frameworks[$(((i + repeat - 1) % n))]}" "$runtime" "$scenario" "$repeat"
      done
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "- date: $started"
  echo "- machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(uname -r)"
  echo "- command: \`$(if [[ $quick == 1 ]]; then echo 'QUICK=1 '; fi)SECONDS_PER_RUN=$seconds WARMUP=$warmup REPEATS=$repeats benches/compare.sh\`"
  echo "- frameworks: ${frameworks[*]}${BASELINE_BIN:+ (before: $BASELINE_BIN)}"
  echo "- load average (1/5/15 min) before: $load_before; after: $load_after"
  echo "- server on core $server_cpu, client on core $client_cpu; ${seconds} s per run after ${warmup} s warm-up; $repeats repeat(s); medians"
  echo
  python3 - "$runs" "${frameworks[@]}" <<'PY'
import statistics
import sys

runs_file, frameworks = sys.argv[1], sys.argv[2:]
runs = []
for line in open(runs_file):
    fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
    runs.append(fields)

SCENARIOS = {
    "a": "(a) 1 conn, 1 in flight, 64 B",
    "b": "(b) 1 conn, 128 in flight, 64 B",
    "c": "(c) 4 conns, 256 in flight, 4 KiB",
    "d": "(d) 1 conn, 8 in flight, 1 MiB",
    "e": "(e) 1 conn, 128 in flight, ~1 KiB record",
}
# metric key, label, higher is better
HEADLINE = {
    "a": [("p50_us", "p50 µs", False), ("p99_us", "p99 µs", False),
          ("p999_us", "p99.9 µs", False), ("calls/s", "calls/s", True)],
    "b": [("calls/s", "calls/s", True)],
    "c": [("calls/s", "calls/s", True)],
    "d": [("mib/s", "MiB/s", True)],
    "e": [("calls/s", "calls/s", True)],
}
COSTS = [("client_us_per_call", "client CPU µs/call", False),
         ("server_us_per_call", "server CPU µs/call", False),
         ("wire_bytes_per_call", "TCP payload B/call", False),
         ("segments_per_call", "TCP segments/call", False)]
# (scenario, metric) -> [(peer, bound)]: prpc / peer must be >= bound (higher is better) or
# <= bound (lower is better).
# Issue 6's goals for prpc's raw-body service; issue 22's for the macro in the default format.
GOALS = {"prpc": {}, "macro": {}}
for scenario in "bc":
    GOALS["prpc"][(scenario, "calls/s")] = [("tarpc", 1.3), ("tonic", 5.0), ("raw", 0.8)]
    GOALS["macro"][(scenario, "calls/s")] = [("raw", 0.9)]
GOALS["prpc"][("d", "mib/s")] = [("tarpc", 1.0), ("raw", 0.8)]
GOALS["macro"][("d", "mib/s")] = [("raw", 0.9)]
GOALS["macro"][("e", "calls/s")] = [("tarpc", 1.5)]
for mine_ in ("prpc", "macro"):
    GOALS[mine_][("a", "p99_us")] = [("tarpc", 1.0)]
    for scenario in "abcde":
        GOALS[mine_][(scenario, "client_us_per_call")] = [("tarpc", 1.0)]
        GOALS[mine_][(scenario, "server_us_per_call")] = [("tarpc", 1.0)]

def values(runtime, scenario, framework, metric):
    return [float(run[metric]) for run in runs
            if run.get("runtime") == runtime and run.get("scenario") == scenario
            and run.get("framework") == framework and metric in run]

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

# The frameworks the ratios are of: prpc (its hand-written Service) and macro (the generated
# stubs in the default format), whichever ran; else the first named.
mines = [name for name in ("prpc", "macro") if name in frameworks] or frameworks[:1]
mine = mines[0]
pairs = []
for ours in mines:
    for peer in ("before", "tarpc", "tonic", "raw"):
        if peer in frameworks and peer not in mines and not (peer == "before" and ours != mines[-1]):
            pairs.append((ours, peer))
header = ["runtime", "scenario", "metric"] + frameworks + [f"{o}/{p}" for o, p in pairs] \
    + ["spread", "goal"]
print("| " + " | ".join(header) + " |")
print("|" + "|".join("---" if i < 3 else "---:" for i in range(len(header) - 1)) + "|---|")
misses = []
seen_runtimes = [r for r in ("current", "multi") if any(run.get("runtime") == r for run in runs)]
seen_scenarios = [s for s in "abcde" if any(run.get("scenario") == s for run in runs)]
for runtime in seen_runtimes:
    for scenario in seen_scenarios:
        for metric, label, higher_better in HEADLINE[scenario] + COSTS:
            medians, spreads = {}, []
            for framework in frameworks:
                found = values(runtime, scenario, framework, metric)
                medians[framework] = statistics.median(found) if found else None
                if len(found) > 1 and medians[framework]:
                    spreads.append((max(found) - min(found)) / medians[framework])
            ratios = {}
            for ours_name, peer in pairs:
                ours, theirs = medians.get(ours_name), medians.get(peer)
                ratios[(ours_name, peer)] = ours / theirs if ours is not None and theirs else None
            verdicts = []
            for ours_name in mines:
                for peer, bound in GOALS.get(ours_name, {}).get((scenario, metric), []):
                    ratio = ratios.get((ours_name, peer))
                    if ratio is None:
                        continue
                    met = ratio >= bound if higher_better else ratio <= bound
                    sign = "≥" if higher_better else "≤"
                    verdicts.append(f"{'ok' if met else '**MISS**'} {ours_name} {sign}{bound:g}×{peer}")
                    if not met:
                        misses.append(f"{runtime} {SCENARIOS[scenario]} {label}: {ours_name}/{peer} "
                                      f"{ratio:.2f} (goal {sign}{bound:g})")
            row = [runtime, SCENARIOS[scenario], label]
            row += [fmt(medians[f]) for f in frameworks]
            row += ["—" if ratios[pair] is None else f"{ratios[pair]:.2f}" for pair in pairs]
            row += [f"{max(spreads) * 100:.0f}%" if spreads else "—", ", ".join(verdicts)]
            print("| " + " | ".join(row) + " |")
errors = [run for run in runs if "error" in run]
print()
print("spread: the largest (max − min) / median over the repeats of any framework in that row.")
def min_max_table(ours_name, base_name):
    # A median ratio goal (0.95x) read with the range of each side's repeats.
    print()
    print(f"| runtime | scenario | metric | {ours_name} median (min–max) | "
          f"{base_name} median (min–max) | {ours_name}/{base_name} |")
    print("|---|---|---|---:|---:|---:|")
    for runtime in seen_runtimes:
        for scenario in seen_scenarios:
            for metric, label, higher_better in HEADLINE[scenario][:1] + COSTS[:2]:
                ours = values(runtime, scenario, ours_name, metric)
                base = values(runtime, scenario, base_name, metric)
                if not ours or not base:
                    continue
                ratio = statistics.median(ours) / statistics.median(base)
                print(f"| {runtime} | {SCENARIOS[scenario]} | {label} | "
                      f"{fmt(statistics.median(ours))} ({fmt(min(ours))}–{fmt(max(ours))}) | "
                      f"{fmt(statistics.median(base))} ({fmt(min(base))}–{fmt(max(base))}) | "
                      f"{ratio:.2f} |")

if "before" in frameworks:
    # The reshaping's goal (issue 7): this tree's median at least 0.95x the baseline's.
    min_max_table(mines[-1], "before")
if "http" in frameworks and "prpc" in frameworks:
    # Issue 16's goal: prpc frames through prpc-http at least 0.95x the plain server.
    min_max_table("http", "prpc")
for ours, base in [("prpc", "nostats"), ("macro", "macro_nostats")]:
    if ours in frameworks and base in frameworks:
        # Issue 17's goal: the server's stats on at least 0.95x stats off.
        min_max_table(ours, base)
if errors:
    print(f"failed runs: {len(errors)}: " + "; ".join(
        f"{r.get('framework')} {r.get('runtime')} {r.get('scenario')} {r.get('error')}"
        for r in errors))
print()
print("Goals missed:" if misses else "Goals: all met.")
for miss in misses:
    print(f"- {miss}")
PY
} | tee "$table"
echo "table saved as $table" >&2
