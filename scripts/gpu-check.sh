#!/usr/bin/env bash
# The GPU check (issue #23; README.md, "On a GPU"): on a machine with an
# NVIDIA GPU, python3's CUDA LibTorch, CMake and a C++ compiler, but none of
# the suite's other libraries and no network, in one go (about 8 minutes):
#   1. unpacks the Debian packages of the bundle (`make gpu-bundle`, carried
#      with the working tree) into a private prefix (dpkg-deb -x; nothing
#      outside WORK is touched) and builds GoogleTest from its sources there;
#   2. configures and builds the suite against python3's LibTorch (Release,
#      all cores), every other library from the prefix, and checks that the
#      build found them there;
#   3. runs the test suite (ctest), the CUDA tests (*_cuda) included, and
#      prints ctest's summary;
#   4. times chapter 1's full profile for Nz = 20 (KW2013's 1e8 samples, or
#      as many as fit in the time left, from a short calibration run), the
#      chapter 6 probe [500, 500, 3] at the seed's budget (1000 epochs, 6e7
#      samples, or as many as fit), and bench-train on the GPU;
#   5. writes what it measured into OUT: gpu-check.json (the summary: machine,
#      steps, tests, rates) and at most seven more files (logs, the chapters'
#      results, bench.json). Every step has its own time limit.
#
# Usage: scripts/gpu-check.sh [--dry-run] [--bundle DIR] [--work DIR] [--out DIR]
#                             [--budget SECONDS] [--jobs N] [--skip STEP,...]
#   --dry-run      here, without a GPU: Debian's CPU LibTorch, a subset of the
#                  build (the library, chapter 1, chapter 6, the CUDA tests and
#                  chapter 1's smoke test), the timings at smoke size on the
#                  CPU; checks everything the real run writes (make gpu-check-dry)
#   --bundle DIR   the bundle (default: gpu-bundle/ in the checkout; in a dry
#                  run it is made when missing, and the run skips, exit 77,
#                  when it cannot be)
#   --work DIR     build folder, prefix and results (default: build-gpu-check/,
#                  build-gpu-check-dry/ for a dry run)
#   --out DIR      where the files to bring back go (default: $OUT, else WORK/out)
#   --budget S     seconds for the whole check (default 470; a dry run 3600);
#                  the timing steps share what the build and the tests leave
#   --jobs N       build and test parallelism (default: all cores)
#   --skip LIST    steps to leave out: tests, chapter-01, chapter-06, bench
# Environment: GPU_CHECK_CH1_SAMPLES / GPU_CHECK_CH6_SAMPLES cap the samples
# (default: the papers' budgets), TORCH_CMAKE_PREFIX overrides python3's.
# Exit status: 0 every step passed (or was skipped on purpose), 1 a step
# failed (gpu-check.json says which), 77 (dry run) no bundle can be made here.
set -uo pipefail

root="${GPU_CHECK_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"  # GPU_CHECK_ROOT: when run from a copy
dry=0
bundle="$root/gpu-bundle"
work=""
out="${OUT:-}"
budget=""
jobs="$(nproc 2>/dev/null || echo 2)"
skip=","

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1; shift ;;
    --bundle) bundle="${2:?--bundle needs a directory}"; shift 2 ;;
    --work) work="${2:?--work needs a directory}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --budget) budget="${2:?--budget needs seconds}"; shift 2 ;;
    --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
    --skip) skip=",${2:?--skip needs a list},"; shift 2 ;;
    -h|--help) sed -n '2,38s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

# The real check fits in about 8 minutes; a dry run builds on a small CI
# machine (2 cores), which takes longer.
build_cap=600
if [ "$dry" = 1 ]; then build_cap=2700; fi
[ -n "$budget" ] || { [ "$dry" = 1 ] && budget=3600 || budget=470; }
if [ -z "$work" ]; then
  work="$root/build-gpu-check"
  [ "$dry" = 1 ] && work="$root/build-gpu-check-dry"
fi
mkdir -p "$work"
work="$(cd "$work" && pwd)"
[ -n "$out" ] || out="$work/out"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
bundle="$(cd "$(dirname "$bundle")" && pwd)/$(basename "$bundle")"
prefix="$work/prefix"
build="$work/build"
export root bundle work prefix build jobs  # the step functions run in a child bash
logs="$work/logs"
steps_tsv="$work/steps.tsv"
rm -rf "$logs" "$work/results"
mkdir -p "$logs"
: > "$steps_tsv"
t0=$(date +%s)
failed=0

say() { echo "gpu-check: $*"; }
elapsed() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( budget - $(elapsed) )); }

# step NAME LIMIT COMMAND...: runs COMMAND under `timeout` (LIMIT seconds,
# then KILL 10 s later), its output into logs/NAME.log (and a tail on the
# terminal), and records name, status, exit code, seconds and limit.
step() {
  local name="$1" limit="$2"
  shift 2
  if [ "$limit" -lt 5 ]; then limit=5; fi
  local s e rc status
  s=$(date +%s)
  say "--- $name (limit ${limit} s, $(elapsed) s into the check)"
  if declare -F "$1" >/dev/null; then
    # A function of this script: `timeout` runs it in a child bash (with
    # every function of this script; the variables they read are exported).
    export -f $(declare -F | awk '{print $3}')
    timeout --kill-after=10 "$limit" bash -o pipefail -c "$(printf '%q ' "$@")" > "$logs/$name.log" 2>&1
  else
    timeout --kill-after=10 "$limit" "$@" > "$logs/$name.log" 2>&1
  fi
  rc=$?
  e=$(date +%s)
  case $rc in
    0) status=passed ;;
    124|137) status=timed-out ;;
    *) status=failed ;;
  esac
  tail -n 8 "$logs/$name.log" | sed 's/^/  | /'
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$((e - s))" "$limit" >> "$steps_tsv"
  say "$name: $status (exit $rc, $((e - s)) s)"
  [ "$status" = passed ] || failed=1
  return $rc
}
skipped() { printf '%s\tskipped\t0\t0\t0\t%s\n' "$1" "$2" >> "$steps_tsv"; say "$1: skipped ($2)"; }
wants() { case "$skip" in *",$1,"*) return 1 ;; *) return 0 ;; esac; }

# ------------------------------------------------------------ the bundle
if [ ! -d "$bundle/debs" ]; then
  if [ "$dry" = 1 ]; then
    say "no bundle at $bundle: making it (scripts/gpu-bundle.sh)"
    "$root/scripts/gpu-bundle.sh" --dest "$bundle"
    rc=$?
    if [ $rc -ne 0 ]; then
      say "SKIP: the bundle cannot be made here (gpu-bundle.sh exit $rc), so the dry check cannot run"
      exit 77
    fi
  else
    say "no bundle at $bundle: run \`make gpu-bundle\` where apt works and carry gpu-bundle/ with the working tree"
    exit 1
  fi
fi

# ------------------------------------------------------------ 1. unpack
unpack() {
  # A prefix made from this very bundle is kept (a rerun, make test again).
  if [ -f "$prefix/.bundle-manifest" ] && cmp -s "$prefix/.bundle-manifest" "$bundle/MANIFEST" &&
     [ -f "$prefix/gtest/lib/cmake/GTest/GTestConfig.cmake" ]; then
    echo "the prefix $prefix holds this bundle already"
    return 0
  fi
  rm -rf "$prefix" "$work/gtest-build"
  mkdir -p "$prefix"
  local deb member z
  for deb in "$bundle"/debs/*.deb; do
    if command -v dpkg-deb >/dev/null 2>&1; then
      dpkg-deb -x "$deb" "$prefix" || return 1
    else  # a .deb is an ar archive holding data.tar.*
      member="$(ar t "$deb" | grep '^data\.tar')"
      case "$member" in *.xz) z=-J ;; *.zst) z=--zstd ;; *.gz) z=-z ;; *) z= ;; esac
      ar p "$deb" "$member" | tar -x $z -C "$prefix" -f - || return 1
    fi
    echo "unpacked $(basename "$deb")"
  done
  # Links that point at absolute paths (libz.so -> /lib/...) point into the prefix.
  local link target
  while IFS= read -r link; do
    target="$(readlink "$link")"
    case "$target" in
      /*) ln -sfn "$prefix$target" "$link" && echo "relinked $link -> $prefix$target" ;;
    esac
  done < <(find "$prefix" -type l)
  # GoogleTest from its sources, with this machine's compiler.
  local gen=()
  command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
  cmake -S "$prefix/usr/src/googletest" -B "$work/gtest-build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5 -DBUILD_GMOCK=OFF -DINSTALL_GTEST=ON -DCMAKE_INSTALL_PREFIX="$prefix/gtest" -DCMAKE_INSTALL_LIBDIR=lib &&
    cmake --build "$work/gtest-build" -j "$jobs" && cmake --install "$work/gtest-build" &&
    cp "$bundle/MANIFEST" "$prefix/.bundle-manifest"
}
step unpack 180 unpack || { say "cannot go on without the prefix"; }

multiarch="x86_64-linux-gnu"
libdir="$prefix/usr/lib/$multiarch"
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The system's zlib is used at run time where there is one (the prefix's is
# the fallback).
if ! ldconfig -p 2>/dev/null | grep -q 'libz\.so\.1 '; then
  export LD_LIBRARY_PATH="$prefix/lib/$multiarch:$LD_LIBRARY_PATH"
fi

# ------------------------------------------------------------ 2. configure and build
if [ "$dry" = 1 ]; then
  torch_prefix="${TORCH_CMAKE_PREFIX:-}"  # Debian's LibTorch: CMake finds it in /usr
  device=cpu
  targets=(--target vaerepro chapter-01 chapter-06 cuda_test chapter01_smoke_test)
  ctest_filter=(-R '^Chapter01Smoke')
else
  torch_prefix="${TORCH_CMAKE_PREFIX:-$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)' 2>/dev/null)}"
  device=cuda
  targets=()
  ctest_filter=()
  # CMake's CUDA toolkit search (Torch's config asks for it) wants nvcc.
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
    if [ -x "$d/nvcc" ] && ! command -v nvcc >/dev/null 2>&1; then export PATH="$d:$PATH"; fi
  done
fi

# How LibTorch is found: its CMake files (find_package(Torch)), or, where
# they fail there (Torch's CUDA config wants a complete CUDA toolkit), its
# folder without them (cmake/TorchWithoutConfig.cmake). GPU_CHECK_TORCH=config
# or =folder forces one.
torch_root=""
torch_abi=1
if [ "$dry" = 1 ]; then
  # Debian's LibTorch as such a folder, for GPU_CHECK_TORCH=folder here.
  mkdir -p "$work/debian-torch"
  ln -sfn /usr/include "$work/debian-torch/include"
  ln -sfn "/usr/lib/$multiarch" "$work/debian-torch/lib"
  torch_root="$work/debian-torch"
else
  torch_root="$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)"
  torch_abi="$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null || echo 1)"
fi
export libdir torch_prefix torch_root torch_abi
configure() {
  local mode="${GPU_CHECK_TORCH:-auto}"
  if [ "$mode" != folder ]; then
    configure_with config && return 0
    [ "$mode" = config ] && return 1
    echo "find_package(Torch) failed: again with LibTorch's folder ($torch_root) without its CMake files"
  fi
  rm -rf "$build"
  configure_with folder
}
configure_with() {
  local gen=() launcher=() torch_args=()
  command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
  command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  local cmake_prefix="$prefix/usr;$prefix/gtest"
  if [ "$1" = folder ]; then
    torch_args=(-DVAEREPRO_TORCH_ROOT="$torch_root" -DVAEREPRO_TORCH_CXX11_ABI="$torch_abi")
  elif [ -n "$torch_prefix" ]; then
    cmake_prefix="$torch_prefix;$cmake_prefix"
  fi
  echo "LibTorch through its ${1/config/CMake files}; CMAKE_PREFIX_PATH=$cmake_prefix"
  # Each library's location is named, so that nothing from /usr is picked up
  # where the system has its own copy (the dry run), and nothing is missed
  # where the compiler does not search the multiarch folders.
  cmake -S "$root" -B "$build" "${gen[@]}" "${launcher[@]}" "${torch_args[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DVAEREPRO_GPU_CHECK_DRY=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
    -DCMAKE_PREFIX_PATH="$cmake_prefix" \
    -DBoost_DIR="$libdir/cmake/Boost-1.74.0" -DBoost_NO_SYSTEM_PATHS=ON -DBOOST_ROOT="$prefix/usr" \
    -Dboost_program_options_DIR="$libdir/cmake/boost_program_options-1.74.0" \
    -Dboost_headers_DIR="$libdir/cmake/boost_headers-1.74.0" \
    -Dnlohmann_json_DIR="$prefix/usr/share/cmake/nlohmann_json" \
    -DGTest_DIR="$prefix/gtest/lib/cmake/GTest" \
    -DPNG_PNG_INCLUDE_DIR="$prefix/usr/include" -DPNG_LIBRARY_RELEASE="$libdir/libpng16.so" \
    -DZLIB_INCLUDE_DIR="$prefix/usr/include" -DZLIB_LIBRARY_RELEASE="$libdir/libz.so" \
    || return 1
  # Where each dependency was found: the prefix, not the system.
  local bad=0 var val
  for var in Boost_DIR boost_program_options_DIR nlohmann_json_DIR GTest_DIR PNG_LIBRARY_RELEASE ZLIB_LIBRARY_RELEASE; do
    val="$(sed -n "s/^$var:[A-Z]*=//p" "$build/CMakeCache.txt")"
    echo "found: $var = $val"
    case "$val" in "$prefix"/*) ;; *) echo "ERROR: $var is not in the prefix"; bad=1 ;; esac
  done
  echo "found: Torch_DIR = $(sed -n 's/^Torch_DIR:[A-Z]*=//p' "$build/CMakeCache.txt")"
  echo "found: VAEREPRO_TORCH_ROOT = $(sed -n 's/^VAEREPRO_TORCH_ROOT:[A-Z]*=//p' "$build/CMakeCache.txt")"
  return $bad
}
built=0
if step configure 150 configure; then
  limit=$(( $(left) - 200 ))
  [ "$limit" -gt "$build_cap" ] && limit=$build_cap
  [ "$limit" -lt 120 ] && limit=120
  if step build "$limit" \
       cmake --build "$build" -j "$jobs" "${targets[@]}"; then
    built=1
    # The programs take their libraries from the prefix.
    ldd "$build/bin/chapter-01" > "$logs/ldd.log" 2>&1
    if grep -q 'not found' "$logs/ldd.log"; then
      say "chapter-01 lacks libraries:"; grep 'not found' "$logs/ldd.log"; failed=1
    fi
    if ! grep -q "libboost_program_options.*=> $prefix" "$logs/ldd.log"; then
      say "chapter-01 does not take Boost from the prefix:"; grep boost "$logs/ldd.log"; failed=1
    fi
  fi
fi

# ------------------------------------------------------------ 3. tests
# The CUDA tests first (seconds), then the timings, then the rest of the
# suite with the time that is left: one slow test cannot take the timings'.
run_ctest() {  # NAME LIMIT FILTER...
  local name="$1" limit="$2"
  shift 2
  step "$name" "$limit" ctest --test-dir "$build" -j "$jobs" --output-on-failure --timeout $((limit - 15)) \
    --output-junit "$work/$name.xml" "$@"
  # The summary, as ctest printed it.
  sed -n '/tests passed\|tests failed/,$p' "$logs/$name.log" | head -n 60 | sed 's/^/  /'
}
if [ "$built" = 1 ] && wants tests; then
  run_ctest ctest-cuda 150 -R '_cuda$'
else
  skipped ctest-cuda "$([ "$built" = 1 ] && echo 'left out (--skip)' || echo 'the build failed')"
fi

# ------------------------------------------------------------ 4. timings
data_args=(--dataset synthetic)
if [ -d "$bundle/data/mnist" ]; then data_args=(--dataset mnist --data-dir "$bundle/data"); fi
results="$work/results"
if [ "$dry" = 1 ]; then
  profile=smoke
  ch1_full=3000
  ch6_full=2000
  data_args=(--dataset synthetic)
else
  profile=full
  ch1_full="${GPU_CHECK_CH1_SAMPLES:-100000000}"  # KW2013 Fig. 2: 1e8 samples per model
  ch6_full="${GPU_CHECK_CH6_SAMPLES:-60000000}"   # seed 000: 1000 epochs of 60,000
fi
# What the timings leave for the rest of the suite (3b).
tests_reserve=130
[ "$dry" = 1 ] && tests_reserve=600
wants tests || tests_reserve=30
ch1_args=(--profile "$profile" --nz 20 --manifold-nz 0 --device "$device" --force --checkpoint-every 0 "${data_args[@]}")
ch6_args=(--profile "$profile" --only-probe 500-500-3.r0 --device "$device" --force --checkpoint-every 0 "${data_args[@]}")

# rate_of KIND DIR: samples/s of the training in DIR's results (train time only).
rate_of() {
  python3 - "$1" "$2" <<'EOF'
import json, pathlib, sys
kind, d = sys.argv[1], pathlib.Path(sys.argv[2])
try:
    if kind == "chapter-01":
        m = json.loads(next(d.glob("*/metrics.json")).read_text())["models"][0]
        s, t = m["samples_seen"], m["train_seconds"]
    else:
        p = json.loads(next(d.glob(".points/*/*/point.json")).read_text())
        s, t = p["samples_seen"], p["train_seconds"]
    print(f"{s / t:.1f}" if t > 0 else "0")
except Exception as e:  # noqa: BLE001
    print("0")
EOF
}
# samples_for RATE SECONDS FULL BATCH: as many samples as fit, at most FULL.
samples_for() {
  python3 -c "import sys; r,s,f,b=map(float,sys.argv[1:]); n=min(f, max(b*10, r*s)); print(int(n//b*b))" "$@"
}

timed_chapter() {  # KIND PROGRAM FULL SHARE ARGS...
  local kind="$1" program="$2" full="$3" share="$4"
  shift 4
  local calib=$(( full < 200000 ? full : 200000 ))
  [ "$dry" = 1 ] && calib=$(( full / 3 / 100 * 100 ))
  local quick=()
  [ "$kind" = chapter-01 ] && quick=(--eval-points 2)  # the calibration measures steps, not evaluations
  if ! step "$kind-calibrate" 90 "$build/bin/$program" "$@" "${quick[@]}" --samples "$calib" \
       --out "$results/$kind-calibrate"; then
    return 1
  fi
  local rate seconds samples
  rate="$(rate_of "$kind" "$results/$kind-calibrate")"
  seconds=$(( ( $(left) - tests_reserve ) * share / 100 ))
  [ "$seconds" -lt 20 ] && seconds=20
  samples="$(samples_for "$rate" "$seconds" "$full" 100)"
  [ "$dry" = 1 ] && samples="$full"
  say "$kind: calibration ran at $rate samples/s; training $samples of $full samples in about $seconds s"
  step "$kind" $(( seconds * 3 / 2 + 60 )) "$build/bin/$program" "$@" --samples "$samples" --out "$results/$kind"
}

if [ "$built" = 1 ] && wants chapter-01; then
  timed_chapter chapter-01 chapter-01 "$ch1_full" 45 "${ch1_args[@]}"
else
  skipped chapter-01 "$([ "$built" = 1 ] && echo 'left out (--skip)' || echo 'the build failed')"
fi
if [ "$built" = 1 ] && wants chapter-06; then
  timed_chapter chapter-06 chapter-06 "$ch6_full" 70 "${ch6_args[@]}"
else
  skipped chapter-06 "$([ "$built" = 1 ] && echo 'left out (--skip)' || echo 'the build failed')"
fi
if [ "$built" = 1 ] && wants bench && [ -x "$build/bin/bench-train" ]; then
  bench_data=()
  [ -d "$bundle/data/mnist" ] && bench_data=(--dataset mnist --data-dir "$bundle/data")
  limit=$(( $(left) - tests_reserve ))
  [ "$limit" -gt 240 ] && limit=240
  [ "$limit" -lt 40 ] && limit=40
  step bench "$limit" "$build/bin/bench-train" --device "$device" --configs kw --rounds 1 --repeats 3 \
    --steps 500 --wait-seconds 0 --child-timeout $(( limit / 6 > 20 ? limit / 6 : 20 )) --python python3 \
    "${bench_data[@]}" --json "$results/bench/bench.json"
else
  skipped bench "$([ "$built" = 1 ] && echo 'left out (--skip, or bench-train not built: the dry run does not build it)' || echo 'the build failed')"
fi

# ------------------------------------------------------------ 3b. the other tests
if [ "$built" = 1 ] && wants tests; then
  limit=$(( $(left) - 25 ))
  [ "$limit" -gt 600 ] && limit=600
  [ "$limit" -lt 60 ] && limit=60
  run_ctest ctest "$limit" -E '_cuda$' "${ctest_filter[@]}"
else
  skipped ctest "$([ "$built" = 1 ] && echo 'left out (--skip)' || echo 'the build failed')"
fi

# ------------------------------------------------------------ 5. what comes back
python3 "$root/scripts/gpu_check_summary.py" --work "$work" --out "$out" --dry-run "$dry" \
  --budget "$budget" --elapsed "$(elapsed)" --device "$device" --ch1-full "$ch1_full" --ch6-full "$ch6_full" \
  || failed=1
say "$(elapsed) s in all; results in $out:"
ls -l "$out" | sed 's/^/  /'
if [ "$failed" != 0 ]; then
  say "FAILED: see $out/gpu-check.json (steps) and $out/gpu-check.log"
  exit 1
fi
say "passed"
