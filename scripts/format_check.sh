#!/usr/bin/env bash
# Checks that every tracked C++ file is formatted by the tree's .clang-format
# (`make format` applies it). Exit 0: all formatted; 1: the files that are
# not, with clang-format's first complaints; 77: clang-format is not
# installed (the test is then reported as skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
tool="${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}"
if [[ -z "$tool" ]]; then
  echo "format_check: clang-format is not installed (apt-get install clang-format); skipped"
  exit 77
fi
mapfile -d '' files < <(git ls-files -z -- '*.h' '*.cpp')
bad=()
for f in "${files[@]}"; do
  if ! "$tool" --dry-run -Werror "$f" > /dev/null 2>&1; then bad+=("$f"); fi
done
if ((${#bad[@]})); then
  echo "format_check: ${#bad[@]} file(s) differ from .clang-format ($("$tool" --version | head -1)):"
  printf '  %s\n' "${bad[@]}"
  "$tool" --dry-run "${bad[0]}" 2>&1 | head -20
  echo "format_check: run \`make format\` and commit the result"
  exit 1
fi
echo "format_check: ${#files[@]} files formatted as .clang-format says"
