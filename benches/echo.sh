#!/usr/bin/env bash
# prpc alone, scenarios (a) and (b) of the peer comparison, once: a quick look while working
# on the runtime. The full comparison with tarpc, tonic and the raw baseline is compare.sh.
# Usage: benches/echo.sh [seconds] [runtime: current|multi]
set -euo pipefail
FRAMEWORKS=prpc SCENARIOS="a b" RUNTIMES=${2:-current} SECONDS_PER_RUN=${1:-5} REPEATS=1 \
  exec "$(dirname "$0")/compare.sh"
