#!/usr/bin/env bash
# Builds the CUDA test and benchmark executables (release, feature `cuda`) on this machine and
# copies them into .gpu/ at the repository root, with gpu_check.sh and the PyTorch reference, so
# a GPU machine without the Rust toolchain can run them: `bash .gpu/gpu_check.sh`.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gpu
executables() {  # prints the executables cargo reports for the given build command
    "$@" --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"], m["executable"])
'
}
{
    executables cargo test --release --no-run -p backends --features cuda --test cuda_conformance
    executables cargo test --release --no-run -p autograd --features cuda --test grad_cuda
    executables cargo bench --no-run -p backends --features cuda --bench cuda
} | while read -r name path; do
    cp "$path" ".gpu/$name"
    echo "built .gpu/$name"
done
cp backends/scripts/gpu_check.sh backends/benches/torch_cuda.py .gpu/
