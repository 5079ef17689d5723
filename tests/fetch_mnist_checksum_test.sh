#!/usr/bin/env bash
# scripts/fetch_mnist.sh against a local file:// mirror: a file whose checksum
# does not match is refused (message, exit 1, nothing left in the data folder,
# no temporary files); with the right checksums everything lands; a file
# already present with a wrong checksum is fetched again.
# Usage: fetch_mnist_checksum_test.sh path/to/fetch_mnist.sh
set -u
script="${1:?usage: $0 path/to/fetch_mnist.sh}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mirror="$work/mirror"
mkdir -p "$mirror"
names="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
for n in $names; do printf 'fake %s\n' "$n" | gzip -c > "$mirror/$n"; done
good="$work/good.md5"
: > "$good"
for n in $names; do echo "$(md5sum "$mirror/$n" | cut -d' ' -f1)  $n" >> "$good"; done
bad="$work/bad.md5"
sed '2s/^[0-9a-f]\{8\}/00000000/' "$good" > "$bad"
cmp -s "$good" "$bad" && fail "the bad checksum file equals the good one"

# 1. A wrong checksum: exit 1, a message naming the file, nothing half-done.
dest="$work/data-bad"
out="$(MNIST_MIRRORS="file://$mirror" bash "$script" --dest "$dest" --sums "$bad" 2>&1)"; rc=$?
[ "$rc" = 1 ] || fail "wrong checksum: exit $rc, expected 1. Output: $out"
echo "$out" | grep -q "checksum mismatch for file://$mirror/train-labels-idx1-ubyte.gz" ||
  fail "no checksum message naming the file. Output: $out"
[ ! -e "$dest/train-labels-idx1-ubyte.gz" ] || fail "the file with the wrong checksum was kept"
if [ -d "$dest" ] && ls -A "$dest" | grep -q '^\.'; then fail "temporary files left in $dest: $(ls -A "$dest")"; fi

# 2. The right checksums: exit 0, all four files, verified.
dest="$work/data-good"
out="$(MNIST_MIRRORS="file://$mirror" bash "$script" --dest "$dest" --sums "$good" 2>&1)"; rc=$?
[ "$rc" = 0 ] || fail "good checksums: exit $rc. Output: $out"
for n in $names; do cmp -s "$mirror/$n" "$dest/$n" || fail "$n did not land intact"; done

# 3. A file already present but damaged is fetched again.
echo "damaged" > "$dest/t10k-labels-idx1-ubyte.gz"
out="$(MNIST_MIRRORS="file://$mirror" bash "$script" --dest "$dest" --sums "$good" 2>&1)"; rc=$?
[ "$rc" = 0 ] || fail "refetch: exit $rc. Output: $out"
echo "$out" | grep -q "wrong checksum" || fail "no warning about the damaged file. Output: $out"
cmp -s "$mirror/t10k-labels-idx1-ubyte.gz" "$dest/t10k-labels-idx1-ubyte.gz" || fail "the damaged file was not replaced"

# 4. A missing checksum file: exit 1 with a message.
out="$(bash "$script" --dest "$work/x" --sums "$work/none.md5" 2>&1)"; rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "checksum file" || fail "missing checksum file: exit $rc. Output: $out"
echo "fetch_mnist.sh: checksum handling OK"
