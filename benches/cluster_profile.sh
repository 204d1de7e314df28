#!/usr/bin/env bash
# Where the balanced client's time goes: the client side of scenario (b) (1 connection, 128
# in flight, 64 B) under callgrind, once over a direct prpc::Client (macro_echo client) and
# once over a one-endpoint Cluster (cluster_echo client), against a native macro_echo server.
# Prints instructions per call of each client, the functions whose own cost differs most
# between the two, and the inclusive cost per call of the cluster's functions; keeps
# callgrind's files in
# $CARGO_TARGET_DIR/cluster-profile/. Instruction counts are exact and do not depend on the
# machine's load, so one run of each is enough (the calls/s under valgrind mean nothing).
#
# Usage: benches/cluster_profile.sh [seconds under valgrind, default 5]
# Environment: MACRO_BIN, CLUSTER_BIN: programs built elsewhere, e.g.
#   MACRO_BIN=$(benches/baseline.sh REV macro_echo) CLUSTER_BIN=$(benches/baseline.sh REV cluster_echo)
# else this tree's are built (release; symbols only, so functions inlined into the cluster's
# call future count as its own).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/lib.sh
source benches/lib.sh
seconds=${1:-5}
target=${CARGO_TARGET_DIR:-target}
macro=${MACRO_BIN:-} cluster=${CLUSTER_BIN:-}
if [[ -z $macro || -z $cluster ]]; then
  cargo build --release -q -p prpc-benches --bin macro_echo --bin cluster_echo
  macro=${macro:-$target/release/macro_echo} cluster=${cluster:-$target/release/cluster_echo}
fi
out="$target/cluster-profile"
mkdir -p "$out"
server_out=$(mktemp)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -f "$server_out"
}
trap cleanup EXIT
taskset -c 0 "$macro" server 127.0.0.1:0 >"$server_out" &
server_pid=$!
addr=$(listening_addr "$server_out")
[[ -n $addr ]] || { echo "the server did not start" >&2; exit 1; }

calls_of=()
for kind in direct cluster; do
  bin=$macro
  if [[ $kind == cluster ]]; then bin=$cluster; fi
  line=$(taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.$kind" \
    "$bin" client "$addr" --connections 1 --in-flight 128 --size 64 --seconds "$seconds" \
    --warmup 0 2>"$out/valgrind.$kind.txt")
  calls_of+=("$(grep -o ' calls=[0-9]*' <<<"$line" | cut -d= -f2)")
  callgrind_annotate --auto=no --threshold=100 "$out/callgrind.$kind" >"$out/self.$kind.txt"
  callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$out/callgrind.$kind" \
    >"$out/inclusive.$kind.txt"
done
python3 - "$out" "${calls_of[@]}" <<'PY'
import collections, re, sys

out, calls = sys.argv[1], {"direct": int(sys.argv[2]), "cluster": int(sys.argv[3])}
ROW = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*?)(?: \[[^\]]*\])?$")

def per_call(kind, table):
    """Instructions per call by function (file:function, binary dropped) of one listing."""
    found, total = collections.Counter(), None
    for line in open(f"{out}/{table}.{kind}.txt"):
        if "PROGRAM TOTALS" in line:
            total = int(line.split()[0].replace(",", ""))
            continue
        match = ROW.match(line)
        if match:
            name = match.group(2).split(":", 1)[-1]
            found[name] = max(found[name], int(match.group(1).replace(",", "")))
    return total / calls[kind], {name: n / calls[kind] for name, n in found.items()}

(direct, direct_self), (cluster, cluster_self) = per_call("direct", "self"), per_call("cluster", "self")
print(f"instructions a call (client process, start-up included): direct {direct:,.0f} "
      f"({calls['direct']} calls), cluster {cluster:,.0f} ({calls['cluster']} calls): "
      f"+{cluster - direct:,.0f} ({cluster / direct:.2f}x)")
print("\nlargest differences, cluster - direct, instructions a call in the function itself:")
names = set(direct_self) | set(cluster_self)
deltas = sorted(((cluster_self.get(n, 0) - direct_self.get(n, 0), n) for n in names), reverse=True)
for delta, name in deltas[:20]:
    print(f"{delta:+7.0f}  {cluster_self.get(name, 0):6.0f} {direct_self.get(name, 0):6.0f}  {name[:120]}")
print("\nthe cluster's own functions, inclusive, instructions a call:")
_, inclusive = per_call("cluster", "inclusive")
for name, n in sorted(inclusive.items(), key=lambda item: -item[1]):
    if n >= 10 and re.search(r"prpc::(cluster|balance)|Instant|clock_gettime", name):
        print(f"{n:7.0f}  {name[:120]}")
PY
