#!/usr/bin/env bash
# Builds prpc_echo (the peer comparison's prpc program) at another commit, so that
# compare.sh can run it beside this tree's as the framework "before":
#
#   BASELINE_BIN=$(benches/baseline.sh 357dcb2) FRAMEWORKS="prpc before" benches/compare.sh
#
# The commit is checked out in a temporary git worktree and built in release with this tree's
# target directory (so dependencies built here are reused); the program is copied to
# $CARGO_TARGET_DIR/baseline/prpc_echo-REV and that path is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: benches/baseline.sh REV}
commit=$(git rev-parse --short "$rev^{commit}")
target=$(realpath "${CARGO_TARGET_DIR:-target}")
out="$target/baseline/prpc_echo-$commit"
if [[ ! -x $out ]]; then
  tree=$(mktemp -d)
  trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || true; rm -rf "$tree"' EXIT
  git worktree add --detach "$tree" "$commit" >/dev/null 2>&1
  (cd "$tree" && CARGO_TARGET_DIR="$target" cargo build --release -q -p prpc-benches --bin prpc_echo)
  mkdir -p "$target/baseline"
  cp "$target/release/prpc_echo" "$out"
  # The next build of this tree puts its own prpc_echo back.
  rm -f "$target/release/prpc_echo"
fi
echo "$out"
