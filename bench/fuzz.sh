#!/usr/bin/env bash
# bench/fuzz.sh — runs every fuzz target of mfa-fuzz (fuzz/src/main.rs) for a set number of
# executions or a set time, and prints per target: executions, exec/s, the share of inputs
# the parser accepted, and the findings (each saved under fuzz/crashes/TARGET/ with a .txt
# saying what happened).
#
#   bench/fuzz.sh                       every target, 1,000,000 executions each (the full run)
#   ITERATIONS=50000 bench/fuzz.sh      fewer executions per target
#   SECONDS_PER_TARGET=30 bench/fuzz.sh a set time per target instead
#   SEED=42 bench/fuzz.sh snapshot net  chosen targets, a repeatable run
#   PROFILE=debug bench/fuzz.sh         the debug build (overflow checks on; much slower)
#
# Builds mfa-fuzz first (the release profile by default). The targets write their files to a
# private directory under /dev/shm (or $TMPDIR) that is removed afterwards; nothing touches
# /etc/mfa, /var/lib/mfa or /var/spool/mfa. Exit status: 0 when nothing was found, 1 when
# something was (the table and the findings are printed either way), 2 on a usage error.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

cargo=${CARGO:-cargo}
profile=${PROFILE:-release}
case "$profile" in
  release) build_flag=(--release) ;;
  debug) build_flag=() ;;
  *) echo "fuzz.sh: PROFILE must be release or debug, not '$profile'" >&2; exit 2 ;;
esac

targets=()
if [ "$#" -eq 0 ]; then
  targets=(--all)
else
  for t in "$@"; do targets+=(--target "$t"); done
fi

limit=()
if [ -n "${SECONDS_PER_TARGET:-}" ]; then
  limit=(--seconds "$SECONDS_PER_TARGET")
else
  limit=(--iterations "${ITERATIONS:-1000000}")
fi

seed=()
if [ -n "${SEED:-}" ]; then
  seed=(--seed "$SEED")
fi

"$cargo" build --locked -p mfa-fuzz "${build_flag[@]}"
exec "$here/target/$profile/mfa-fuzz" "${targets[@]}" "${limit[@]}" "${seed[@]}"
