//! Integer kernels for quantized inference: i8 x i8 -> i32 GEMM and the ternary 1x1 convolution.
//!
//! [`gemm_i8`] runs the VNNI kernel where the CPU has AVX-512 VNNI (`int8_vnni`, threaded over
//! row groups; `LAMINA_NO_VNNI` turns it off). Otherwise it packs a panel of `B` into a
//! contiguous row-major block so its inner loop (`c[i, j] += a[i, p] * b[p, j]` over `j`, loop
//! order i-p-j) is unit-stride and auto-vectorizes (sign-extend, multiply in i16 lanes, where the
//! product is exact, widen and add in i32); that path is single-threaded: `matmul` parallelizes
//! over the batch.
//!
//! [`ternary_conv1x1`] multiplies by nothing: for each output channel it lists the input channels
//! whose weight is +1 and those whose weight is −1, then adds and subtracts whole `H*W` planes.

use super::gemm::MatRef;
use super::strided::contiguous_slice;
use crate::{CpuStorage, Error, Layout, Result};
use rayon::prelude::*;

/// Columns of `B` per packed panel (with `KC` rows: 64 KiB of i8, resident in L2).
const NC: usize = 256;
/// Rows of `B` (depth) per packed panel.
const KC: usize = 256;

/// `C = A B` for i8 operands with i32 accumulation (wrapping on overflow); `c` is row-major
/// `m x n`. `A` and `B` may have any strides.
pub(crate) fn gemm_i8(m: usize, k: usize, n: usize, a: MatRef<'_, i8>, b: MatRef<'_, i8>, c: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::isa::use_avx512_vnni() {
        return super::int8_vnni::gemm_i8_vnni(m, k, n, a, b, c);
    }
    let c = &mut c[..m * n];
    c.fill(0);
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let mut panel = vec![0i8; KC.min(k) * NC.min(n)];
    let mut arow = vec![0i8; KC.min(k)];
    for j0 in (0..n).step_by(NC) {
        let nc = NC.min(n - j0);
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            // Pack B[p0..p0+kc, j0..j0+nc] row-major.
            for p in 0..kc {
                let dst = &mut panel[p * nc..(p + 1) * nc];
                let base = b.offset + (p0 + p) * b.rs + j0 * b.cs;
                if b.cs == 1 {
                    dst.copy_from_slice(&b.data[base..base + nc]);
                } else {
                    for (j, d) in dst.iter_mut().enumerate() {
                        *d = b.data[base + j * b.cs];
                    }
                }
            }
            for i in 0..m {
                let abase = a.offset + i * a.rs + p0 * a.cs;
                for (p, x) in arow[..kc].iter_mut().enumerate() {
                    *x = a.data[abase + p * a.cs];
                }
                let crow = &mut c[i * n + j0..i * n + j0 + nc];
                for p in 0..kc {
                    // |a * b| <= 2^14: the product is exact in i16 lanes (16 per 256 bits,
                    // and a plain multiply even without SSE4.1's 32-bit one).
                    let av = arow[p] as i16;
                    if av == 0 {
                        continue;
                    }
                    let brow = &panel[p * nc..(p + 1) * nc];
                    for (cv, &bv) in crow.iter_mut().zip(brow) {
                        *cv = cv.wrapping_add((av * bv as i16) as i32);
                    }
                }
            }
        }
    }
}

/// `crow += Σ plus planes − Σ minus planes`, processed in tiles so the accumulator stays in L1.
fn accumulate_plane(out: &mut [i32], x: &[i8], hw: usize, plus: &[usize], minus: &[usize]) {
    const TILE: usize = 2048;
    for t0 in (0..hw).step_by(TILE) {
        let t = TILE.min(hw - t0);
        let acc = &mut out[t0..t0 + t];
        for &c in plus {
            let src = &x[c * hw + t0..c * hw + t0 + t];
            for (o, &v) in acc.iter_mut().zip(src) {
                *o += v as i32;
            }
        }
        for &c in minus {
            let src = &x[c * hw + t0..c * hw + t0 + t];
            for (o, &v) in acc.iter_mut().zip(src) {
                *o -= v as i32;
            }
        }
    }
}

/// 1x1 convolution with ternary weights: `x` i8 `[N, C, H, W]`, `w` i8 `[O, C]` with entries in
/// {−1, 0, 1} -> i32 `[N, O, H, W]`, by additions and subtractions only; parallel over `N*O`.
pub(crate) fn ternary_conv1x1(x: &CpuStorage, lx: &Layout, w: &CpuStorage, lw: &Layout) -> Result<CpuStorage> {
    const OP: &str = "ternary_conv1x1";
    super::strided::check_extent(OP, x, lx)?;
    super::strided::check_extent(OP, w, lw)?;
    let (xv, wv) = match (x, w) {
        (CpuStorage::I8(xv), CpuStorage::I8(wv)) => (xv, wv),
        (CpuStorage::I8(_), _) => return Err(Error::UnsupportedDType { op: OP, dtype: w.dtype() }),
        _ => return Err(Error::UnsupportedDType { op: OP, dtype: x.dtype() }),
    };
    if lx.ndim() != 4 || lw.ndim() != 2 || lw.shape()[1] != lx.shape()[1] {
        return Err(Error::shape(OP, lx.shape(), lw.shape()));
    }
    let (n, c, h, wd) = (lx.shape()[0], lx.shape()[1], lx.shape()[2], lx.shape()[3]);
    let o = lw.shape()[0];
    let hw = h * wd;
    let wc = contiguous_slice(wv, lw);
    if let Some((pos, &bad)) = wc.iter().enumerate().find(|(_, &v)| !(-1..=1).contains(&v)) {
        return Err(Error::invalid(
            OP,
            format!("weight [{}, {}] is {bad}; ternary weights must be -1, 0 or 1", pos / c.max(1), pos % c.max(1)),
        ));
    }
    let lists: Vec<(Vec<usize>, Vec<usize>)> = (0..o)
        .map(|oc| {
            let row = &wc[oc * c..(oc + 1) * c];
            let plus = (0..c).filter(|&ci| row[ci] == 1).collect();
            let minus = (0..c).filter(|&ci| row[ci] == -1).collect();
            (plus, minus)
        })
        .collect();
    let xc = contiguous_slice(xv, lx);
    let mut out = vec![0i32; n * o * hw];
    if hw > 0 {
        out.par_chunks_mut(hw).enumerate().for_each(|(i, plane)| {
            let (ni, oc) = (i / o, i % o);
            let (plus, minus) = &lists[oc];
            accumulate_plane(plane, &xc[ni * c * hw..(ni + 1) * c * hw], hw, plus, minus);
        });
    }
    Ok(CpuStorage::I32(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_i8_matches_naive_with_strides() {
        let (m, k, n) = (5, 300, 270);
        let a: Vec<i8> = (0..m * k).map(|i| ((i * 37 + 11) % 255) as u8 as i8).collect();
        let b: Vec<i8> = (0..k * n).map(|i| ((i * 53 + 7) % 255) as u8 as i8).collect();
        // A row-major, B read transposed (column-major storage).
        let am = MatRef { data: &a, offset: 0, rs: k, cs: 1 };
        let bm = MatRef { data: &b, offset: 0, rs: 1, cs: k };
        let mut c = vec![0i32; m * n];
        gemm_i8(m, k, n, am, bm, &mut c);
        for i in 0..m {
            for j in 0..n {
                let want: i32 = (0..k).map(|p| a[i * k + p] as i32 * b[j * k + p] as i32).sum();
                assert_eq!(c[i * n + j], want, "({i}, {j})");
            }
        }
    }

    #[test]
    fn ternary_rejects_non_ternary_weights() {
        let x = CpuStorage::I8(vec![1; 8]);
        let w = CpuStorage::I8(vec![1, 2]);
        let e = ternary_conv1x1(&x, &Layout::contiguous(&[1, 2, 2, 2]), &w, &Layout::contiguous(&[1, 2])).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
        let w = CpuStorage::I8(vec![1, -1]);
        let y = ternary_conv1x1(&x, &Layout::contiguous(&[1, 2, 2, 2]), &w, &Layout::contiguous(&[1, 2])).unwrap();
        assert_eq!(y, CpuStorage::I32(vec![0; 4]));
    }
}
