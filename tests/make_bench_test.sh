#!/usr/bin/env bash
# `make bench`'s recipe with OPENBLAS_CORETYPE unset and set (issue #17, item
# 16: under the Makefile's `set -u` an unset variable ended the target with
# "unbound variable" on most machines). The recipe runs for real; only what it
# calls is replaced: its prerequisites are taken as made (make -o), `cmake` is
# a stub on PATH, and BUILD_DIR/bin/bench-train a stub that writes its --json.
# Usage: make_bench_test.sh SOURCE_DIR
set -euo pipefail
src="${1:?usage: make_bench_test.sh SOURCE_DIR}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/stub" "$work/build/bin"
printf '#!/bin/sh\nexit 0\n' > "$work/stub/cmake"
cat > "$work/build/bin/bench-train" <<'STUB'
#!/bin/sh
while [ $# -gt 0 ]; do
  if [ "$1" = --json ]; then mkdir -p "$(dirname "$2")"; echo '{}' > "$2"; shift; fi
  shift
done
STUB
chmod +x "$work/stub/cmake" "$work/build/bin/bench-train"

run_bench() {  # OUT, then env assignments
  local out="$1"; shift
  env "$@" PATH="$work/stub:$PATH" make --no-print-directory -C "$src" -o deps-bench -o configure bench \
    BUILD_DIR="$work/build" OUT="$out" > "$work/log" 2>&1 || { cat "$work/log"; return 1; }
}

fail=0
if ! run_bench "$work/unset" -u OPENBLAS_CORETYPE; then
  echo "FAIL: make bench with OPENBLAS_CORETYPE unset"; fail=1
elif [ ! -f "$work/unset/bench/bench.json" ] || [ -e "$work/unset/bench/bench-coretype-unset.json" ]; then
  echo "FAIL: unset: expected bench.json only"; ls -R "$work/unset"; fail=1
else
  echo "ok: OPENBLAS_CORETYPE unset"
fi
if ! run_bench "$work/set" OPENBLAS_CORETYPE=Haswell; then
  echo "FAIL: make bench with OPENBLAS_CORETYPE=Haswell"; fail=1
elif [ ! -f "$work/set/bench/bench.json" ] || [ ! -f "$work/set/bench/bench-coretype-unset.json" ] ||
     ! grep -q "it is Haswell here" "$work/log"; then
  echo "FAIL: set: expected bench.json and bench-coretype-unset.json"; cat "$work/log"; fail=1
else
  echo "ok: OPENBLAS_CORETYPE=Haswell"
fi
exit "$fail"
