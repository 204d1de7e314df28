#!/usr/bin/env bash
# Builds one of the echo programs at another commit, so that compare.sh can run it beside
# this tree's as the framework "before":
#
#   BASELINE_BIN=$(benches/baseline.sh 357dcb2) FRAMEWORKS="prpc before" benches/compare.sh
#   BASELINE_BIN=$(benches/baseline.sh 357dcb2 macro_echo) FRAMEWORKS="macro before" \
#     benches/compare.sh
#
# BIN defaults to prpc_echo. When the commit lacks BIN's source, this tree's
# benches/src/bin/BIN.rs is built there (macro_echo compiles against older APIs too). The
# commit is checked out in a temporary git worktree and built in release with this tree's
# target directory (so dependencies built here are reused); the program is copied to
# $CARGO_TARGET_DIR/baseline/BIN-REV and that path is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: benches/baseline.sh REV [BIN]}
bin=${2:-prpc_echo}
commit=$(git rev-parse --short "$rev^{commit}")
target=$(realpath "${CARGO_TARGET_DIR:-target}")
out="$target/baseline/$bin-$commit"
if [[ ! -x $out ]]; then
  tree=$(mktemp -d)
  trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || true; rm -rf "$tree"' EXIT
  git worktree add --detach "$tree" "$commit" >/dev/null 2>&1
  if [[ ! -e $tree/benches/src/bin/$bin.rs ]]; then
    cp "benches/src/bin/$bin.rs" "$tree/benches/src/bin/$bin.rs"
  fi
  (cd "$tree" && CARGO_TARGET_DIR="$target" cargo build --release -q -p prpc-benches --bin "$bin")
  mkdir -p "$target/baseline"
  cp "$target/release/$bin" "$out"
  # The next build of this tree puts its own program back. Cargo names a workspace's own
  # crates by their path within the workspace, so the two trees share artifact names: touch
  # this tree's sources so that cargo rebuilds them (a proc-macro built at REV was seen
  # taken as fresh here otherwise).
  rm -f "$target/release/$bin"
  touch prpc/src/lib.rs prpc-macros/src/lib.rs prpc-build/src/lib.rs
fi
echo "$out"
