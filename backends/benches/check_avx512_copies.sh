#!/usr/bin/env bash
# Lists every AVX-512 copy made by `f32_avx512!` (the `::built` functions) in a release binary,
# with its count of instructions on zmm registers and the functions it calls directly. A copy
# with no zmm instructions and a call to an iterator adaptor (`Iterator::fold`, `from_iter`)
# left its loop out of line, compiled for baseline x86-64: rewrite that loop as a plain `for`.
# Exits 1 when some copy has no zmm instruction.
#
# backends/benches/check_avx512_copies.sh [binary]   (default: target/release/train; needs objdump)
set -euo pipefail
bin=${1:-target/release/train}
dis=$(mktemp)
trap 'rm -f "$dis"' EXIT
objdump -d --no-show-raw-insn -C "$bin" >"$dis"
status=0
for sym in $(nm -C "$bin" | awk '/::built$/ {print $3}' | sort -u); do
    body=$(awk -v s="<$sym>:" 'index($0, s) {p = 1; next} p && /^$/ {exit} p' "$dis")
    zmm=$(grep -c zmm <<<"$body" || true)
    calls=$(grep -E 'call +[0-9a-f]+ <' <<<"$body" | sed 's/.*<//; s/>$//' | grep -v Unwind | sort -u | tr '\n' ' ' || true)
    printf '%-60s zmm %4d  calls: %s\n' "$sym" "$zmm" "${calls:-none}"
    if [ "$zmm" -eq 0 ]; then status=1; fi
done
exit $status
