#!/usr/bin/env bash
# Regenerates the report test's fixtures (tests/fixtures/results/SLUG/) from
# smoke runs of the chapters on synthetic data: `make fixtures` (all of them)
# or `make fixtures FIXTURES="01 06"`. Each chapter runs in a fresh folder,
# one thread, seed 1; its complete result replaces the fixture. The
# deliberately broken fixtures (tests/fixtures/corrupt/, failed/, v1/) are
# left alone: they are written by hand to test the report's robustness and
# its reading of the older results layout.
#
# usage: scripts/make_fixtures.sh BUILD_DIR [NN ...]
set -euo pipefail

build=${1:?usage: $0 BUILD_DIR [NN ...]}
shift
chapters=("$@")
[ ${#chapters[@]} -gt 0 ] || chapters=(01 02 03 04 05 06)
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "$build" && pwd)/bin
fixtures=$root/tests/fixtures/results

# The options of each chapter's fixture, beyond the smoke profile.
extra_args() {
  case "$1" in
    01) echo "--nz 3,10,20" ;;  # three sweep models and the Nz = 2 manifold
    *) echo "" ;;
  esac
}

work=$(mktemp -d "${TMPDIR:-/tmp}/vaerepro-fixtures.XXXXXX")
trap 'rm -rf "$work"' EXIT
for n in "${chapters[@]}"; do
  program=$bin/chapter-$n
  [ -x "$program" ] || { echo "make_fixtures: $program is not built (make build)" >&2; exit 1; }
  # A relative --out inside the scratch folder: the fixture's recorded
  # command line and folders name no machine's paths.
  (cd "$work" && "$program" --profile smoke --dataset synthetic --seed 1 --threads 1 --out out $(extra_args "$n") \
     > "$work/chapter-$n.log" 2>&1) || {
    echo "make_fixtures: chapter-$n failed; its output:" >&2
    cat "$work/chapter-$n.log" >&2
    exit 1
  }
  slug=$(cd "$work/out" && ls -d "$n"-*/ | head -n 1)
  slug=${slug%/}
  [ -f "$work/out/$slug/run.json" ] || { echo "make_fixtures: chapter-$n wrote no $slug/run.json" >&2; exit 1; }
  rm -rf "${fixtures:?}/$slug"
  cp -r "$work/out/$slug" "$fixtures/$slug"
  # The checkout's own path (the program, the data folder) as relative paths.
  grep -rlF --include='*.json' "$root" "$fixtures/$slug" | while read -r f; do
    sed -i "s|$root/||g; s|$root|.|g" "$f"
  done
  echo "make_fixtures: tests/fixtures/results/$slug from a smoke run ($(du -sh "$fixtures/$slug" | cut -f1))"
done
