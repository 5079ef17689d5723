#!/usr/bin/env bash
# Fetches the four files of real MNIST into data/mnist/, each checked against
# data/mnist.md5 (torchvision's published MD5 sums) before it is moved into
# place. Idempotent: files already present with a good checksum are kept.
# Without a network it says so in one line and exits 0, leaving nothing
# behind, so that `make data` works offline (the suite then uses
# Fashion-MNIST or the 10k subset).
#
# Usage: scripts/fetch_mnist.sh [--dest DIR] [--sums FILE] [--timeout SECONDS]
# Environment: MNIST_MIRRORS="URL ..." replaces the default mirror list.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/data/mnist"
sums="$root/data/mnist.md5"
timeout=300          # seconds per file, whole transfer
connect_timeout=10   # seconds to reach a mirror
read -r -a mirrors <<< "${MNIST_MIRRORS:-https://ossci-datasets.s3.amazonaws.com/mnist https://storage.googleapis.com/cvdf-datasets/mnist}"

usage() {
  sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dest) dest="${2:?--dest needs a directory}"; shift 2 ;;
    --sums) sums="${2:?--sums needs a file}"; shift 2 ;;
    --timeout) timeout="${2:?--timeout needs seconds}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fetch_mnist.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

fallback="the suite will use Fashion-MNIST (DATASET=auto) or DATASET=mnist-10k"

if [ ! -r "$sums" ]; then
  echo "fetch_mnist.sh: checksum file $sums is missing" >&2
  exit 1
fi

md5_of() {
  if command -v md5sum > /dev/null; then
    md5sum "$1" | cut -d' ' -f1
  else
    md5 -q "$1"  # macOS
  fi
}

# download URL FILE: 0 on success, 100 on a network failure (no route, no
# name resolution, timeout), anything else for other failures (HTTP errors).
download() {
  local rc=0
  if command -v curl > /dev/null; then
    curl -fsSL --connect-timeout "$connect_timeout" --max-time "$timeout" \
      -o "$2" "$1" 2> /dev/null || rc=$?
    case "$rc" in
      0) return 0 ;;
      5|6|7|28|35|52|55|56) return 100 ;;
      *) return "$rc" ;;
    esac
  elif command -v wget > /dev/null; then
    wget -q --connect-timeout="$connect_timeout" --timeout="$timeout" \
      --tries=1 -O "$2" "$1" 2> /dev/null || rc=$?
    case "$rc" in
      0) return 0 ;;
      4) return 100 ;;
      *) return "$rc" ;;
    esac
  else
    return 100
  fi
}

created_dest=0
if [ ! -d "$dest" ]; then
  mkdir -p "$dest"
  created_dest=1
fi
tmp=""
cleanup() {
  [ -n "$tmp" ] && rm -f "$tmp"
  # Leave no empty directory behind when nothing was fetched.
  if [ "$created_dest" = 1 ]; then rmdir "$dest" 2> /dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! command -v curl > /dev/null && ! command -v wget > /dev/null; then
  echo "no network tool (curl or wget): real MNIST not fetched; $fallback"
  exit 0
fi

failed=0
fetched=0
while read -r want name; do
  [ -z "${want:-}" ] && continue
  case "$want" in \#*) continue ;; esac
  name="${name#\*}"  # md5sum's binary-mode marker
  target="$dest/$name"
  if [ -f "$target" ]; then
    if [ "$(md5_of "$target")" = "$want" ]; then
      echo "ok: $target (checksum verified)"
      continue
    fi
    echo "warning: $target has the wrong checksum; fetching a fresh copy" >&2
  fi
  got=0
  offline=1
  for mirror in "${mirrors[@]}"; do
    tmp="$(mktemp "$dest/.$name.XXXXXX")"
    rc=0
    download "$mirror/$name" "$tmp" || rc=$?
    if [ "$rc" = 0 ]; then
      offline=0
      have="$(md5_of "$tmp")"
      if [ "$have" = "$want" ]; then
        mv -f "$tmp" "$target"
        tmp=""
        echo "fetched: $target from $mirror (checksum verified)"
        got=1
        fetched=1
        break
      fi
      echo "checksum mismatch for $mirror/$name: expected $want, got $have" >&2
    elif [ "$rc" != 100 ]; then
      offline=0
      echo "download failed: $mirror/$name (exit status $rc)" >&2
    fi
    rm -f "$tmp"
    tmp=""
  done
  if [ "$got" = 0 ]; then
    if [ "$offline" = 1 ] && [ "$fetched" = 0 ]; then
      echo "no network: real MNIST not fetched; $fallback"
      exit 0
    fi
    failed=1
  fi
done < "$sums"

if [ "$failed" = 1 ]; then
  echo "fetch_mnist.sh: real MNIST is incomplete in $dest (see above); $fallback" >&2
  exit 1
fi
created_dest=0
echo "real MNIST is in $dest (all checksums match $sums)"
