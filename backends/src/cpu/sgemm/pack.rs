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
                _ => {
                    for p in 0..kc {
                        std::ptr::copy_nonoverlapping(src.offset(p as isize * rs), d.add(p * nr), cols);
                    }
                }
            }
        } else if rs == 1 {
            // Each column is contiguous in k: read columns, write with stride NR.
            for j in 0..cols {
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
