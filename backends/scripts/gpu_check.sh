#!/usr/bin/env bash
# Runs on a GPU machine, in one go, what gpu_build.sh prepared in .gpu/: the CUDA conformance
# suite, the autograd gradchecks on cuda:0, then the GPU benchmark beside PyTorch (when torch is
# installed). Exits non-zero when a test failed. Usage: bash .gpu/gpu_check.sh
set -uo pipefail
dir="$(cd "$(dirname "$0")" && pwd)"
status=0
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
for t in cuda_conformance grad_cuda; do
    echo "== $t"
    "$dir/$t" --test-threads=1 || status=1
done
echo "== benchmark (Lamina)"
"$dir/cuda" || status=1
echo "== benchmark (PyTorch)"
if python3 -c 'import torch' 2>/dev/null; then
    python3 "$dir/torch_cuda.py" || status=1
else
    echo "PyTorch is not installed: reference timings skipped"
fi
exit $status
