//! Packing strided operands into the micro-kernels' panel order.
//!
//! `A` (`mc x kc`) becomes `ceil(mc / MR)` panels, each `kc` steps of `MR` values (row `i` of
//! the panel at position `p * MR + i`), which is how `B`'s packing lays out `A^T`; `B` (`kc x nc`) becomes `ceil(nc / NR)` panels, each
//! `kc` steps of `NR` values. Rows or columns past the edge are zero, so the kernels always run
//! full tiles. Any strides work (transposed operands included); unit strides take the fast path.

/// Packs `mc x kc` of `A` (element `(i, p)` at `a + i * rs + p * cs`) into `MR`-row panels:
/// exactly [`pack_b`] of the transpose `A^T` (`kc x mc`).
///
/// # Safety
/// `a` must address the whole `mc x kc` block with these strides; `dst` must hold
/// `ceil(mc / MR) * MR * kc` floats.
pub(super) unsafe fn pack_a(mr: usize, mc: usize, kc: usize, a: *const f32, rs: isize, cs: isize, dst: *mut f32) {
    pack_b(mr, kc, mc, a, cs, rs, dst)
}

/// Packs `kc x nc` of `B` (element `(p, j)` at `b + p * rs + j * cs`) into `NR`-column panels.
///
/// # Safety
/// `b` must address the whole `kc x nc` block with these strides; `dst` must hold
/// `ceil(nc / NR) * NR * kc` floats.
pub(super) unsafe fn pack_b(nr: usize, kc: usize, nc: usize, b: *const f32, rs: isize, cs: isize, dst: *mut f32) {
    for (panel, j0) in (0..nc).step_by(nr).enumerate() {
        let cols = nr.min(nc - j0);
        let d = dst.add(panel * nr * kc);
        let src = b.offset(j0 as isize * cs);
        if cs == 1 {
            match (cols, nr) {
                (32, 32) => copy_rows::<32>(kc, src, rs, d),
                (16, 16) => copy_rows::<16>(kc, src, rs, d),
                // A column-major A (a transposed operand, as in weight gradients) packs 8 rows.
                (8, 8) => copy_rows::<8>(kc, src, rs, d),
                (6, 6) => copy_rows::<6>(kc, src, rs, d),
                _ => {
                    for p in 0..kc {
                        std::ptr::copy_nonoverlapping(src.offset(p as isize * rs), d.add(p * nr), cols);
                    }
                }
            }
        } else if rs == 1 {
            // Each column is contiguous in k: groups of 8 columns go through 8x8 transposes,
            // the rest column by column with stride NR.
            let grouped = cols / 8 * 8;
            for j0 in (0..grouped).step_by(8) {
                transpose_columns8(kc, src.offset(j0 as isize * cs), cs, d.add(j0), nr);
            }
            for j in grouped..cols {
                let col = src.offset(j as isize * cs);
                for p in 0..kc {
                    *d.add(p * nr + j) = *col.add(p);
                }
            }
        } else {
            for p in 0..kc {
                let row = src.offset(p as isize * rs);
                for j in 0..cols {
                    *d.add(p * nr + j) = *row.offset(j as isize * cs);
                }
            }
        }
        if cols < nr {
            for p in 0..kc {
                for j in cols..nr {
                    *d.add(p * nr + j) = 0.0;
                }
            }
        }
    }
}

/// Copies `kc` rows of `W` contiguous values (`rs` apart in `src`) into consecutive rows of
/// `dst`: a fixed-size copy the compiler turns into a few vector moves instead of a `memcpy`
/// call per row.
///
/// # Safety
/// `src` must address `kc` rows of `W` values `rs` apart; `dst` must hold `kc * W` values.
#[inline(always)]
unsafe fn copy_rows<const W: usize>(kc: usize, src: *const f32, rs: isize, dst: *mut f32) {
    for p in 0..kc {
        let row = src.offset(p as isize * rs) as *const [f32; W];
        (dst.add(p * W) as *mut [f32; W]).write_unaligned(row.read_unaligned());
    }
}

/// Writes 8 columns of `kc` values (column `j` at `src + j * cs`, contiguous in `k`) as `kc`
/// rows of 8 values `stride` apart in `dst` (row `p` at `dst + p * stride`): 8x8 transposes in
/// AVX registers, a scalar loop for the last `kc % 8` steps.
///
/// # Safety
/// The CPU must have AVX (every CPU the packed kernels run on does); `src` must address the 8
/// columns and `dst` the `kc` rows.
#[target_feature(enable = "avx")]
unsafe fn transpose_columns8(kc: usize, src: *const f32, cs: isize, dst: *mut f32, stride: usize) {
    use std::arch::x86_64::*;
    let col = |j: usize| src.offset(j as isize * cs);
    let full = kc / 8 * 8;
    for p in (0..full).step_by(8) {
        let r: [__m256; 8] = std::array::from_fn(|j| _mm256_loadu_ps(col(j).add(p)));
        let t = [
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        ];
        let u = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        for i in 0..4 {
            _mm256_storeu_ps(dst.add((p + i) * stride), _mm256_permute2f128_ps::<0x20>(u[i], u[i + 4]));
            _mm256_storeu_ps(dst.add((p + i + 4) * stride), _mm256_permute2f128_ps::<0x31>(u[i], u[i + 4]));
        }
    }
    for p in full..kc {
        for j in 0..8 {
            *dst.add(p * stride + j) = *col(j).add(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Column-contiguous operands (a row-major `A`, a transposed `B`) pack exactly as the
    /// element-by-element definition, for panel widths 8 and 32 and ragged `k` and widths.
    #[test]
    fn transposing_pack_matches_the_definition() {
        if !is_x86_feature_detected!("avx") {
            return;
        }
        for (nr, kc, nc) in [(8usize, 19usize, 13usize), (8, 64, 8), (32, 7, 45), (32, 33, 70), (8, 3, 5)] {
            let cs = kc + 3;
            let src: Vec<f32> = (0..nc * cs).map(|i| i as f32 * 0.5 - 7.0).collect();
            let panels = nc.div_ceil(nr);
            let mut got = vec![f32::NAN; panels * nr * kc];
            // SAFETY: `src` holds nc columns of cs >= kc values; `got` holds the packed panels.
            unsafe { pack_b(nr, kc, nc, src.as_ptr(), 1, cs as isize, got.as_mut_ptr()) };
            for panel in 0..panels {
                for p in 0..kc {
                    for j in 0..nr {
                        let col = panel * nr + j;
                        let want = if col < nc { src[col * cs + p] } else { 0.0 };
                        assert_eq!(got[panel * nr * kc + p * nr + j], want, "nr {nr} kc {kc} nc {nc} at ({p}, {col})");
                    }
                }
            }
        }
    }
}
