#!/usr/bin/env bash
# Makes the folder that travels to a GPU machine with the working tree
# (`make gpu-bundle`; README.md, "On a GPU"): the Debian packages the build
# needs there and python3's CUDA LibTorch lacks there (Boost.Program_options,
# GoogleTest's sources, nlohmann-json, libpng, zlib), downloaded with
# `apt-get download` (nothing is installed), and real MNIST gzipped when
# data/mnist/ holds it. scripts/gpu-check.sh unpacks the packages into a
# private prefix there. Idempotent: packages already in the folder are kept.
#
# Usage: scripts/gpu-bundle.sh [--dest DIR] [--data DIR] [--max-mib N]
#   --dest DIR     the folder (default: gpu-bundle/ in the checkout; git ignores it)
#   --data DIR     MNIST idx files, raw or .gz (default: data/mnist; none: no data)
#   --max-mib N    fail when the folder is larger than this (default 40: the
#                  working tree and the folder travel together, 64 MiB in all)
# Exit status: 0 made; 77 the packages cannot be downloaded here (no apt-get,
# no package lists and no network); 1 anything else.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/gpu-bundle"
data="$root/data/mnist"
max_mib=40

while [ $# -gt 0 ]; do
  case "$1" in
    --dest) dest="${2:?--dest needs a directory}"; shift 2 ;;
    --data) data="${2:?--data needs a directory}"; shift 2 ;;
    --max-mib) max_mib="${2:?--max-mib needs a number}"; shift 2 ;;
    -h|--help) sed -n '2,17s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu-bundle.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

# The packages, by name; apt-get picks the candidate version (Debian 12's).
# Boost's headers are one package (libboost1.74-dev, the largest: about
# 9.5 MB); its program_options library and CMake files are the next two.
# GoogleTest travels as its sources (googletest): gpu-check.sh builds it with
# that machine's compiler (seconds), so no GCC-12-built archive has to link
# there. zlib1g holds the library zlib1g-dev's libz.so points at.
packages=(
  libboost1.74-dev
  libboost-program-options1.74-dev
  libboost-program-options1.74.0
  googletest
  nlohmann-json3-dev
  libpng-dev
  libpng16-16
  zlib1g-dev
  zlib1g
)

skip() {
  echo "gpu-bundle.sh: SKIP: $*" >&2
  exit 77
}

command -v apt-get >/dev/null 2>&1 || skip "no apt-get here (the bundle is made on a Debian 12 machine)"
command -v dpkg-deb >/dev/null 2>&1 || skip "no dpkg-deb here"

mkdir -p "$dest/debs"
missing=()
for p in "${packages[@]}"; do
  compgen -G "$dest/debs/${p}_*.deb" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  tmp="$(mktemp -d "$dest/debs/.download.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  download() { (cd "$tmp" && apt-get download -q "${missing[@]}") > "$tmp/apt.log" 2>&1; }
  if ! download; then
    # No package lists yet (a fresh image): read them once, as root.
    if [ "$(id -u)" = 0 ] && apt-get update -qq > "$tmp/update.log" 2>&1 && download; then
      :
    else
      tail -n 5 "$tmp/apt.log" >&2 || true
      skip "apt-get download failed for: ${missing[*]} (no network or no package lists?)"
    fi
  fi
  mv "$tmp"/*.deb "$dest/debs/"
  rm -rf "$tmp"
  trap - EXIT
fi

# MNIST, gzipped (the readers take .gz): about 11 MB for the four files.
if [ -d "$data" ]; then
  mkdir -p "$dest/data/mnist"
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ -s "$dest/data/mnist/$f.gz" ]; then continue; fi
    if [ -s "$data/$f.gz" ]; then
      cp "$data/$f.gz" "$dest/data/mnist/$f.gz.tmp"
    elif [ -s "$data/$f" ]; then
      gzip -9 -c "$data/$f" > "$dest/data/mnist/$f.gz.tmp"
    else
      echo "gpu-bundle.sh: $data has no $f: the check there trains on the synthetic set" >&2
      rm -rf "$dest/data"
      break
    fi
    mv "$dest/data/mnist/$f.gz.tmp" "$dest/data/mnist/$f.gz"
  done
  [ -f "$data/SOURCE" ] && [ -d "$dest/data/mnist" ] && cp "$data/SOURCE" "$dest/data/mnist/SOURCE"
elif [ -s "$dest/data/mnist/train-images-idx3-ubyte.gz" ]; then
  echo "gpu-bundle.sh: no $data: the bundle keeps the MNIST it has"
else
  echo "gpu-bundle.sh: no $data: the check there trains on the synthetic set (make data first for MNIST)" >&2
fi

# What is in it, with sizes (each .deb's too).
{
  echo "# gpu-bundle, made by scripts/gpu-bundle.sh (package, version, size)"
  for deb in "$dest"/debs/*.deb; do
    printf '%s\t%s\t%s bytes\n' "$(dpkg-deb -f "$deb" Package)" "$(dpkg-deb -f "$deb" Version)" "$(stat -c %s "$deb")"
  done
  [ -d "$dest/data/mnist" ] && for f in "$dest"/data/mnist/*.gz; do
    printf 'data/mnist/%s\t%s bytes\n' "$(basename "$f")" "$(stat -c %s "$f")"
  done
} > "$dest/MANIFEST"

kib="$(du -sk "$dest" | cut -f1)"
echo "gpu-bundle.sh: $dest: $((kib / 1024)) MiB ($kib KiB); carry it with the working tree (README.md, On a GPU)"
if [ "$kib" -gt $((max_mib * 1024)) ]; then
  echo "gpu-bundle.sh: the folder is over ${max_mib} MiB" >&2
  exit 1
fi
