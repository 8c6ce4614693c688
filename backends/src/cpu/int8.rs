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
//! whose weight is +1 and those whose weight is −1, then adds and subtracts whole `H*W` planes:
//! on AVX-512BW tile by tile with the sums in `i16` registers (`ternary_avx512`;
//! `LAMINA_NO_AVX512_BYTES` turns it off), else into an `i32` plane in memory.

use super::gemm::MatRef;
use super::strided::contiguous_slice;
use crate::{CpuStorage, Error, Layout, Result};
use rayon::prelude::*;

/// Columns of `B` per packed panel (with `KC` rows: 64 KiB of i8, resident in L2).
const NC: usize = 256;
/// Rows of `B` (depth) per packed panel.
const KC: usize = 256;
/// Byte additions of a ternary convolution below which it runs on the calling thread.
const PARALLEL_WORK: usize = 1 << 20;

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

/// Per output channel of a ternary weight `[O, C]`, the input channels whose weight is +1 and
/// those whose weight is −1, in one flat buffer.
struct SignLists {
    flat: Vec<u32>,
    /// Per output channel: start of its +1 list, start of its −1 list, end.
    bounds: Vec<[usize; 3]>,
}

impl SignLists {
    fn new(w: &[i8], o: usize, c: usize) -> SignLists {
        let (mut plus, mut minus) = (vec![0u32; c], vec![0u32; c]);
        let mut flat = Vec::new();
        let mut bounds = Vec::with_capacity(o);
        for row in w.chunks(c.max(1)).take(o) {
            // Branch-free: every index is written to both scratch lists, and each list's
            // length advances only where the weight matches (ternary signs defeat branch
            // prediction).
            let (mut np, mut nm) = (0, 0);
            for (ci, &v) in row.iter().enumerate() {
                plus[np] = ci as u32;
                minus[nm] = ci as u32;
                np += usize::from(v == 1);
                nm += usize::from(v == -1);
            }
            let start = flat.len();
            flat.extend_from_slice(&plus[..np]);
            flat.extend_from_slice(&minus[..nm]);
            bounds.push([start, start + np, start + np + nm]);
        }
        SignLists { flat, bounds }
    }

    /// The +1 and −1 input channels of output channel `oc`.
    fn row(&self, oc: usize) -> (&[u32], &[u32]) {
        let [a, b, e] = self.bounds[oc];
        (&self.flat[a..b], &self.flat[b..e])
    }
}

/// `crow += Σ plus planes − Σ minus planes`, processed in tiles so the accumulator stays in L1.
fn accumulate_plane(out: &mut [i32], x: &[i8], hw: usize, plus: &[u32], minus: &[u32]) {
    const TILE: usize = 2048;
    for t0 in (0..hw).step_by(TILE) {
        let t = TILE.min(hw - t0);
        let acc = &mut out[t0..t0 + t];
        for &c in plus {
            let c = c as usize;
            let src = &x[c * hw + t0..c * hw + t0 + t];
            for (o, &v) in acc.iter_mut().zip(src) {
                *o += v as i32;
            }
        }
        for &c in minus {
            let c = c as usize;
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
    // A branch-free scan first (it vectorizes); the position only when something is wrong.
    let all_ternary = wc.iter().fold(true, |ok, &v| ok & (-1..=1).contains(&v));
    if let Some((pos, &bad)) =
        (!all_ternary).then(|| wc.iter().enumerate().find(|(_, &v)| !(-1..=1).contains(&v))).flatten()
    {
        return Err(Error::invalid(
            OP,
            format!("weight [{}, {}] is {bad}; ternary weights must be -1, 0 or 1", pos / c.max(1), pos % c.max(1)),
        ));
    }

    let lists = SignLists::new(&wc, o, c);
    let xc = contiguous_slice(xv, lx);
    let mut out = vec![0i32; n * o * hw];
    if hw == 0 {
        return Ok(CpuStorage::I32(out));
    }
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::isa::use_avx512_bw() {
        use super::ternary_avx512::{accumulate_plane_avx512, PaddedPlanes};
        let padded: Vec<PaddedPlanes> =
            (0..n).map(|ni| PaddedPlanes::new(&xc[ni * c * hw..(ni + 1) * c * hw], c, hw)).collect();
        let plane = |(i, plane): (usize, &mut [i32])| {
            let (plus, minus) = lists.row(i % o);
            // SAFETY: AVX-512F/BW/VL checked; every listed channel is below `c`, one of the
            // image's padded planes; `plane` has `hw <= ld` elements.
            unsafe { accumulate_plane_avx512(plane, &padded[i / o], plus, minus) };
        };
        // Byte additions in all: below about a million, waking the thread pool costs more
        // than the work.
        let work = n * padded.first().map_or(0, |p| p.ld) * lists.flat.len();
        if work < PARALLEL_WORK {
            out.chunks_mut(hw).enumerate().for_each(plane);
        } else {
            out.par_chunks_mut(hw).enumerate().for_each(plane);
        }
        return Ok(CpuStorage::I32(out));
    }
    out.par_chunks_mut(hw).enumerate().for_each(|(i, plane)| {
        let (ni, oc) = (i / o, i % o);
        let (plus, minus) = lists.row(oc);
        accumulate_plane(plane, &xc[ni * c * hw..(ni + 1) * c * hw], hw, plus, minus);
    });
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

    /// The portable plane kernel (the path of CPUs without AVX-512BW) and the sign lists
    /// against the naive sum, on planes past its 2048-pixel tile.
    #[test]
    fn the_portable_ternary_plane_kernel_matches_the_naive_sum() {
        let (c, o, hw) = (37, 5, 2100);
        let x: Vec<i8> = (0..c * hw).map(|i| ((i * 37 + 11) % 255) as u8 as i8).collect();
        let w: Vec<i8> = (0..o * c).map(|i| ((i * 7919 + 3) % 3) as i8 - 1).collect();
        let lists = SignLists::new(&w, o, c);
        for oc in 0..o {
            let (plus, minus) = lists.row(oc);
            assert_eq!(plus.len() + minus.len(), w[oc * c..(oc + 1) * c].iter().filter(|&&v| v != 0).count());
            let mut out = vec![0i32; hw];
            accumulate_plane(&mut out, &x, hw, plus, minus);
            for (p, &got) in out.iter().enumerate() {
                let want: i32 = (0..c).map(|ci| i32::from(w[oc * c + ci]) * i32::from(x[ci * hw + p])).sum();
                assert_eq!(got, want, "output {oc}, pixel {p}");
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
