//! The int8 GEMM on AVX-512 VNNI: `C = A B` (i8 x i8 -> i32) with `vpdpbusd`, which multiplies
//! four unsigned bytes of one operand by four signed bytes of the other and adds the four
//! products into a 32-bit lane.
//!
//! `vpdpbusd` wants one operand unsigned: `A` goes in as `a + 128` (a byte in `0..=255`), and
//! the extra `128 · Σ_p b[p, j]` is taken off each column at the end (the column sums come with
//! `B`'s packing). `B` is packed per block of 64 columns into groups of four rows, each column's
//! four bytes together (one 32-bit lane), zero past `k`; `A`'s rows are packed as `a + 128`,
//! padded to a multiple of four. The micro-kernel holds 4 rows x 64 columns of `C` in 16
//! registers: per group of four depths it loads 4 vectors of `B` and broadcasts 4 words of
//! `A`, 16 `vpdpbusd`. Row groups run in parallel. Accumulation wraps in `i32` (`vpdpbusd` does
//! not saturate), so the results equal the portable kernel's modulo 2^32 in every case, and
//! exactly while the true sums fit (always below 65,000 terms).

use super::gemm::MatRef;
use rayon::prelude::*;
use std::arch::x86_64::*;

/// Columns per packed block of `B` (four 16-lane vectors).
const NR: usize = 64;
/// Rows per micro-kernel call.
const MR: usize = 4;
/// Rows of `C` per parallel task (a multiple of `MR`).
const ROWS_PER_TASK: usize = 32;

/// `B` packed for the micro-kernel: per block of `NR` columns, `kp / 4` groups of `NR` words
/// (four depths of one column each), and `128 · Σ_p b[p, j]` per column.
struct PackedB {
    data: Vec<i8>,
    shift: Vec<i32>,
    kp: usize,
}

fn pack_b(k: usize, n: usize, b: MatRef<'_, i8>) -> PackedB {
    let kp = k.next_multiple_of(4);
    let blocks = n.div_ceil(NR);
    let mut data = vec![0i8; blocks * kp * NR];
    let mut shift = vec![0i32; blocks * NR];
    for jb in 0..blocks {
        let block = &mut data[jb * kp * NR..(jb + 1) * kp * NR];
        for jj in 0..NR.min(n - jb * NR) {
            let j = jb * NR + jj;
            let mut sum = 0i32;
            for p in 0..k {
                let v = b.data[b.offset + p * b.rs + j * b.cs];
                block[(p / 4) * NR * 4 + jj * 4 + p % 4] = v;
                sum += i32::from(v);
            }
            shift[j] = 128 * sum;
        }
    }
    PackedB { data, shift, kp }
}

/// `C = A B`, `c` row-major `m x n` (every element written). The caller checks that the CPU
/// has AVX-512F, BW and VNNI ([`crate::cpu::isa::use_avx512_vnni`]).
pub(crate) fn gemm_i8_vnni(m: usize, k: usize, n: usize, a: MatRef<'_, i8>, b: MatRef<'_, i8>, c: &mut [i32]) {
    let c = &mut c[..m * n];
    if m == 0 || n == 0 {
        return;
    }
    let pb = pack_b(k, n, b);
    let kp = pb.kp;
    c.par_chunks_mut(ROWS_PER_TASK * n).enumerate().for_each(|(t, ct)| {
        let r0 = t * ROWS_PER_TASK;
        let rows = ct.len() / n;
        // A's rows of this task as `a + 128`, padded with zeros (zero columns of B there).
        let mut ap = vec![0u8; rows.next_multiple_of(MR) * kp];
        for r in 0..rows {
            for p in 0..k {
                ap[r * kp + p] = (i16::from(a.data[a.offset + (r0 + r) * a.rs + p * a.cs]) + 128) as u8;
            }
        }
        let mut tile = [0i32; MR * NR];
        for jb in 0..n.div_ceil(NR) {
            let bblock = &pb.data[jb * kp * NR..(jb + 1) * kp * NR];
            let cols = NR.min(n - jb * NR);
            for rb in (0..rows).step_by(MR) {
                // SAFETY: the caller checked AVX-512F/BW/VNNI; `ap` holds `MR` padded rows of
                // `kp` bytes from `rb`, `bblock` `kp / 4` groups of `NR` words, `tile` `MR NR`.
                unsafe { micro(&ap[rb * kp..(rb + MR) * kp], bblock, kp, &mut tile) };
                for r in 0..MR.min(rows - rb) {
                    let crow = &mut ct[(rb + r) * n + jb * NR..(rb + r) * n + jb * NR + cols];
                    for (jj, cv) in crow.iter_mut().enumerate() {
                        *cv = tile[r * NR + jj].wrapping_sub(pb.shift[jb * NR + jj]);
                    }
                }
            }
        }
    });
}

/// `tile = A' B'` for `MR` packed rows of `A` (`a`: `MR` rows of `kp` unsigned bytes) and one
/// packed block of `B` (`b`).
///
/// # Safety
/// AVX-512F, BW and VNNI; `a.len() >= MR kp`, `b.len() >= kp NR`, `kp` a multiple of 4.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn micro(a: &[u8], b: &[i8], kp: usize, tile: &mut [i32; MR * NR]) {
    let mut acc = [[_mm512_setzero_si512(); 4]; MR];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for g in 0..kp / 4 {
        let bv: [__m512i; 4] = std::array::from_fn(|v| _mm512_loadu_si512(bp.add(g * NR * 4 + v * 64).cast()));
        for (r, row) in acc.iter_mut().enumerate() {
            let word = (ap.add(r * kp + 4 * g) as *const i32).read_unaligned();
            let av = _mm512_set1_epi32(word);
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm512_dpbusd_epi32(*x, av, bv[v]);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, x) in row.iter().enumerate() {
            _mm512_storeu_si512(tile.as_mut_ptr().add(r * NR + v * 16).cast(), *x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(m: usize, k: usize, n: usize, a: &[i8], b: &[i8]) -> Vec<i32> {
        let mut c = vec![0i32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| i32::from(a[i * k + p]) * i32::from(b[p * n + j])).sum();
            }
        }
        c
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Against the naive product on odd shapes, all byte values (−128 included), `B` read
        /// row-major or transposed.
        #[test]
        fn vnni_gemm_matches_the_naive_product(m in 1usize..40, k in 1usize..70, n in 1usize..150, seed in 0u64..1000, transposed in any::<bool>()) {
            if !crate::cpu::isa::use_avx512_vnni() {
                return Ok(());
            }
            let byte = |i: usize, s: u64| ((i as u64 * 2654435761 + s * 97) % 256) as u8 as i8;
            let a: Vec<i8> = (0..m * k).map(|i| byte(i, seed)).collect();
            let b: Vec<i8> = (0..k * n).map(|i| byte(i, seed + 1)).collect();
            let bt: Vec<i8> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let am = MatRef { data: &a, offset: 0, rs: k, cs: 1 };
            let bm = if transposed { MatRef { data: &bt, offset: 0, rs: 1, cs: k } } else { MatRef { data: &b, offset: 0, rs: n, cs: 1 } };
            let mut c = vec![7i32; m * n];
            gemm_i8_vnni(m, k, n, am, bm, &mut c);
            prop_assert_eq!(c, naive(m, k, n, &a, &b));
        }
    }
}
