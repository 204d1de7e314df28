#!/usr/bin/env bash
# Instructions per call of one side of an echo program, under callgrind (issue 22): the other
# side runs natively; the count is the side's total instructions (process start-up included,
# a few million) over the calls the client made, so compare runs of similar length.
#
#   benches/instructions.sh PROGRAM SIDE SCENARIO [RUNTIME] [SECONDS] [OUT]
#   benches/instructions.sh target/release/macro_echo server b current 3
#
# SIDE is server or client; SCENARIO is one of compare.sh's (b c d e). callgrind's file is
# OUT (default $CARGO_TARGET_DIR/callgrind.PROGRAM.SIDE.SCENARIO), for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/lib.sh
source benches/lib.sh
bin=${1:?usage: benches/instructions.sh PROGRAM SIDE SCENARIO [RUNTIME] [SECONDS] [OUT]}
side=${2:?side: server or client} scenario=${3:?scenario: b c d e}
runtime=${4:-current} seconds=${5:-3}
target=${CARGO_TARGET_DIR:-target}
out=${6:-$target/callgrind.$(basename "$bin").$side.$scenario}
case $scenario in
  b) flags="--connections 1 --in-flight 128 --size 64" ;;
  c) flags="--connections 4 --in-flight 256 --size 4096" ;;
  d) flags="--connections 1 --in-flight 8 --size 1048576" ;;
  e) flags="--connections 1 --in-flight 128 --payload record" ;;
  *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
server_out=$(mktemp)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -f "$server_out"
}
trap cleanup EXIT
grind=(valgrind --tool=callgrind --callgrind-out-file="$out")
server=(taskset -c 0) client=(taskset -c 1)
if [[ $side == server ]]; then server+=("${grind[@]}"); else client+=("${grind[@]}"); fi
"${server[@]}" "$bin" server 127.0.0.1:0 --runtime "$runtime" >"$server_out" 2>/dev/null &
server_pid=$!
addr=$(listening_addr "$server_out" 200 0.1)
[[ -n $addr ]] || { echo "the server did not start" >&2; exit 1; }
# shellcheck disable=SC2086 # the scenario's flags are words
line=$("${client[@]}" "$bin" client "$addr" $flags --seconds "$seconds" --warmup 0 \
  --runtime "$runtime" 2>/dev/null)
# callgrind writes its file when the server ends on SIGTERM.
kill -TERM "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=
calls=$(grep -o ' calls=[0-9]*' <<<"$line" | cut -d= -f2)
instructions=$(awk '/^(summary|totals):/{print $2; exit}' "$out")
echo "$(basename "$bin") $side ($scenario, $runtime): calls=$calls instructions=$instructions per_call=$((instructions / calls)) file=$out"
