#!/bin/sh
# Regenerates the embedded Fashion-MNIST subset from the official files.
# Usage: sh make.sh [FASHION_MNIST_DIR]   (default: $LAMINA_DATA/fashion-mnist or ../../../../shared/data/fashion-mnist)
# Writes valid IDX files whose header counts say 20000 (train) / 10000 (test),
# holding the FIRST 20000 training images+labels and the full test set, gzip -9 -n.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=${1:-${LAMINA_DATA:-$here/../../../../shared/data}/fashion-mnist}
cd "$here"
# u32 big-endian as 4 raw bytes
be32() { printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(( ($1 >> 24) & 255 )) $(( ($1 >> 16) & 255 )) $(( ($1 >> 8) & 255 )) $(( $1 & 255 )))"; }
images() { # $1 source .gz, $2 count, $3 output
  { be32 2051; be32 "$2"; be32 28; be32 28; gzip -dc "$1" | tail -c +17 | head -c $(( $2 * 784 )); } | gzip -9 -n > "$3"
}
labels() {
  { be32 2049; be32 "$2"; gzip -dc "$1" | tail -c +9 | head -c "$2"; } | gzip -9 -n > "$3"
}
images "$src/train-images-idx3-ubyte.gz" 20000 train-images-idx3-ubyte.gz
labels "$src/train-labels-idx1-ubyte.gz" 20000 train-labels-idx1-ubyte.gz
images "$src/t10k-images-idx3-ubyte.gz" 10000 t10k-images-idx3-ubyte.gz
labels "$src/t10k-labels-idx1-ubyte.gz" 10000 t10k-labels-idx1-ubyte.gz
