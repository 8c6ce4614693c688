//! The element-wise ends of an integer layer in one pass each (see [`crate::quantize`]):
//! [`quantize_i8`] (float input -> `i8` codes) and [`requantize`] (`i32` accumulators -> f32).
//!
//! The codes are rounded by the magic-number addition: for `|v| ≤ 2^22` (f32; `2^51` for f64),
//! `v + 1.5·2^23` lands where the floats are the integers, so the addition itself rounds `v`
//! half to even and the integer sits in the low mantissa bits, two's complement modulo 256 in
//! the lowest byte. After the clamp `|v| ≤ 255`, so the code is that byte minus `zero`, with
//! no float-to-integer conversion in the loop (it vectorizes in plain integer lanes). Both
//! kernels run on rayon's threads in blocks of [`PAR_THRESHOLD`] elements, f32 in an AVX-512
//! copy where the CPU has it.

use rayon::prelude::*;

use super::scalar::round_half_even;
use super::strided::{check_extent, contiguous_slice, PAR_THRESHOLD};
use crate::quantize::{check_lsq_range, check_quantize_args, check_requantize};
use crate::{CpuStorage, Error, FloatElement, Layout, Result};

/// A float type whose integers up to `2^22` can be read from the low mantissa bits after
/// adding [`Codes::MAGIC`].
trait Codes: FloatElement {
    /// `1.5 · 2^(mantissa bits)`.
    const MAGIC: Self;
    /// The lowest byte of the bit pattern.
    fn low_byte(self) -> u8;
}

impl Codes for f32 {
    const MAGIC: f32 = 12_582_912.0;
    #[inline(always)]
    fn low_byte(self) -> u8 {
        self.to_bits() as u8
    }
}

impl Codes for f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    #[inline(always)]
    fn low_byte(self) -> u8 {
        self.to_bits() as u8
    }
}

/// The codes of `src` into `dst` (same length): see [`crate::Fused::quantize_i8`].
#[inline(always)]
fn codes<T: Codes>(src: &[T], dst: &mut [i8], mul: T, div: T, lo: T, hi: T, zero: u8) {
    let scaled = mul != T::one();
    for (d, &x) in dst.iter_mut().zip(src) {
        let v = if scaled { x * mul } else { x } / div;
        // `max`/`min` of a NaN pick the other operand; a NaN is sent to 0 explicitly below.
        let c = v.max(lo).min(hi);
        let byte = (c + T::MAGIC).low_byte().wrapping_sub(zero);
        *d = if v.is_nan() { 0 } else { byte as i8 };
    }
}

f32_avx512!(fn codes_f32(src: &[f32], dst: &mut [i8], mul: f32, div: f32, lo: f32, hi: f32, zero: u8) => codes);

/// `f(src block, dst block)` over blocks of [`PAR_THRESHOLD`] elements, on rayon's threads
/// when there is more than one block.
fn blocks<S: Sync, D: Send>(src: &[S], dst: &mut [D], f: impl Fn(&[S], &mut [D]) + Sync) {
    if src.len() <= PAR_THRESHOLD {
        f(src, dst);
    } else {
        src.par_chunks(PAR_THRESHOLD).zip(dst.par_chunks_mut(PAR_THRESHOLD)).for_each(|(s, d)| f(s, d));
    }
}

/// See [`crate::Fused::quantize_i8`].
pub(crate) fn quantize_i8(
    x: &CpuStorage,
    lx: &Layout,
    mul: f64,
    div: f64,
    (lo, hi): (f64, f64),
    zero: i32,
) -> Result<CpuStorage> {
    const OP: &str = "quantize_i8";
    check_quantize_args(mul, div, (lo, hi), zero)?;
    check_extent(OP, x, lx)?;
    let zero = zero as u8; // subtracting it modulo 256 is subtracting `zero` in two's complement
    let mut out = vec![0i8; lx.numel()];
    match x {
        CpuStorage::F32(v) => {
            let (m, d, lo, hi) = (mul as f32, div as f32, lo as f32, hi as f32);
            blocks(&contiguous_slice(v, lx), &mut out, |s, o| codes_f32(s, o, m, d, lo, hi, zero));
        }
        CpuStorage::F64(v) => blocks(&contiguous_slice(v, lx), &mut out, |s, o| codes(s, o, mul, div, lo, hi, zero)),
        other => return Err(Error::UnsupportedDType { op: OP, dtype: other.dtype() }),
    }
    Ok(CpuStorage::I8(out))
}

/// `i32` to the float type, rounded once.
trait FromI32 {
    fn from_i32(v: i32) -> Self;
}

impl FromI32 for f32 {
    #[inline(always)]
    fn from_i32(v: i32) -> f32 {
        v as f32
    }
}

/// `(acc + terms)·scale + shift` over whole `s`-element planes, the first of them plane
/// `first` of the `[N, C]` planes (its channel `first % C`): see [`crate::Fused::requantize`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn requantize_planes<T: FloatElement + FromI32>(
    acc: &[i32],
    first: usize,
    s: usize,
    terms: Option<&[i32]>,
    scale: &[T],
    shift: &[T],
    (lo, hi, clamped): (T, T, bool),
    dst: &mut [T],
) {
    let c = scale.len();
    for (k, (a, d)) in acc.chunks_exact(s).zip(dst.chunks_exact_mut(s)).enumerate() {
        let ch = (first + k) % c;
        let (m, b) = (scale[ch], shift[ch]);
        match terms {
            Some(t) => {
                let t = &t[ch * s..(ch + 1) * s];
                for ((d, &a), &t) in d.iter_mut().zip(a).zip(t) {
                    *d = T::from_i32(a.wrapping_add(t)) * m + b;
                }
            }
            None => {
                for (d, &a) in d.iter_mut().zip(a) {
                    *d = T::from_i32(a) * m + b;
                }
            }
        }
        if clamped {
            for v in d.iter_mut() {
                *v = clamp_keep_nan(*v, lo, hi);
            }
        }
    }
}

f32_avx512!(fn requantize_planes_f32(acc: &[i32], first: usize, s: usize, terms: Option<&[i32]>, scale: &[f32], shift: &[f32], clamp: (f32, f32, bool), dst: &mut [f32]) => requantize_planes);

/// See [`crate::Fused::requantize`].
pub(crate) fn requantize(
    acc: &CpuStorage,
    lacc: &Layout,
    terms: Option<&CpuStorage>,
    scale: &CpuStorage,
    shift: &CpuStorage,
    clamp: Option<(f64, f64)>,
) -> Result<CpuStorage> {
    const OP: &str = "requantize";
    check_extent(OP, acc, lacc)?;
    let dtypes = (acc.dtype(), terms.map(CpuStorage::dtype), scale.dtype(), shift.dtype());
    let geom = check_requantize(lacc, dtypes, Some((terms.map(CpuStorage::len), scale.len(), shift.len())))?;
    let (Some(a), Some(m), Some(b)) = (acc.as_slice::<i32>(), scale.as_slice::<f32>(), shift.as_slice::<f32>()) else {
        return Err(Error::invalid(OP, "operand dtypes")); // excluded by the check above
    };
    let t = terms.and_then(|t| t.as_slice::<i32>());
    let a = contiguous_slice(a, lacc);
    let s = geom.s;
    let mut out = vec![0f32; a.len()];
    if s > 0 && geom.c > 0 {
        // Whole planes per task, about PAR_THRESHOLD elements each.
        let planes = (PAR_THRESHOLD / s).max(1);
        let bounds = clamp.map_or((0.0, 0.0, false), |(lo, hi)| (lo as f32, hi as f32, true));
        let run =
            |(i, (a, d)): (usize, (&[i32], &mut [f32]))| requantize_planes_f32(a, i * planes, s, t, m, b, bounds, d);
        if a.len() <= PAR_THRESHOLD {
            run((0, (&a, &mut out)));
        } else {
            a.par_chunks(planes * s).zip(out.par_chunks_mut(planes * s)).enumerate().for_each(run);
        }
    }
    Ok(CpuStorage::F32(out))
}

/// `v` clamped to `[lo, hi]` by comparisons (NaN stays NaN, as the clamp op).
#[inline(always)]
fn clamp_keep_nan<T: FloatElement>(v: T, lo: T, hi: T) -> T {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

/// LSQ's forward over one block: see [`crate::Fused::lsq_quantize`].
#[inline(always)]
fn lsq_block<T: FloatElement>(src: &[T], dst: &mut [T], s: T, lo: T, hi: T) {
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = round_half_even(clamp_keep_nan(x / s, lo, hi)) * s;
    }
}

f32_avx512!(fn lsq_block_f32(src: &[f32], dst: &mut [f32], s: f32, lo: f32, hi: f32) => lsq_block);

/// LSQ's backward over one block: `gx` written, the block's step-gradient sum returned (in
/// 16 lanes of `T` over the block, then f64).
#[inline(always)]
fn lsq_backward_block<T: FloatElement>(g: &[T], x: &[T], gx: &mut [T], s: T, lo: T, hi: T) -> f64 {
    const LANES: usize = 16;
    let mut acc = [T::zero(); LANES];
    let term = |g: T, x: T| -> (T, T) {
        let v = x / s;
        if v < lo {
            (T::zero(), g * lo)
        } else if v > hi {
            (T::zero(), g * hi)
        } else {
            // Inside, or NaN (no gradient to `x`, a NaN step gradient).
            let pass = if v >= lo { g } else { T::zero() };
            (pass, g * (round_half_even(v) - v))
        }
    };
    let (cg, cx) = (g.chunks_exact(LANES), x.chunks_exact(LANES));
    let (rg, rx) = (cg.remainder(), cx.remainder());
    let mut out = gx.chunks_exact_mut(LANES);
    for ((gc, xc), oc) in cg.zip(cx).zip(&mut out) {
        for k in 0..LANES {
            let (p, t) = term(gc[k], xc[k]);
            oc[k] = p;
            acc[k] += t;
        }
    }
    let mut total: f64 = acc.iter().map(|&v| v.to_f64()).sum();
    for ((&gv, &xv), o) in rg.iter().zip(rx).zip(out.into_remainder()) {
        let (p, t) = term(gv, xv);
        *o = p;
        total += t.to_f64();
    }
    total
}

f32_avx512!(fn lsq_backward_block_f32(g: &[f32], x: &[f32], gx: &mut [f32], s: f32, lo: f32, hi: f32) -> f64 => lsq_backward_block);

/// The one step value of [`crate::Fused::lsq_quantize`]'s `step` buffer, as `T`.
fn step_value<T: FloatElement>(op: &'static str, step: &CpuStorage) -> Result<T> {
    match step.as_slice::<T>() {
        Some([s]) => Ok(*s),
        Some(v) => Err(Error::invalid(op, format!("a step of {} elements; expected one", v.len()))),
        None => Err(Error::DTypeMismatch { op, lhs: T::DTYPE, rhs: step.dtype() }),
    }
}

/// See [`crate::Fused::lsq_quantize`].
pub(crate) fn lsq_quantize(x: &CpuStorage, lx: &Layout, step: &CpuStorage, range: (f64, f64)) -> Result<CpuStorage> {
    const OP: &str = "lsq_quantize";
    check_lsq_range(OP, range)?;
    check_extent(OP, x, lx)?;
    match x {
        CpuStorage::F32(v) => {
            let s = step_value::<f32>(OP, step)?;
            let (lo, hi) = (range.0 as f32, range.1 as f32);
            let mut out = vec![0f32; lx.numel()];
            blocks(&contiguous_slice(v, lx), &mut out, |a, d| lsq_block_f32(a, d, s, lo, hi));
            Ok(CpuStorage::F32(out))
        }
        CpuStorage::F64(v) => {
            let s = step_value::<f64>(OP, step)?;
            let mut out = vec![0f64; lx.numel()];
            blocks(&contiguous_slice(v, lx), &mut out, |a, d| lsq_block(a, d, s, range.0, range.1));
            Ok(CpuStorage::F64(out))
        }
        other => Err(Error::UnsupportedDType { op: OP, dtype: other.dtype() }),
    }
}

/// `f(g block, x block, gx block)` over blocks of [`PAR_THRESHOLD`] elements (on rayon's
/// threads when there is more than one), the blocks' sums added in f64.
fn sum_blocks<T: Sync + Send>(g: &[T], x: &[T], gx: &mut [T], f: impl Fn(&[T], &[T], &mut [T]) -> f64 + Sync) -> f64 {
    if g.len() <= PAR_THRESHOLD {
        return f(g, x, gx);
    }
    g.par_chunks(PAR_THRESHOLD)
        .zip(x.par_chunks(PAR_THRESHOLD))
        .zip(gx.par_chunks_mut(PAR_THRESHOLD))
        .map(|((g, x), o)| f(g, x, o))
        .sum()
}

/// See [`crate::Fused::lsq_quantize_backward`].
pub(crate) fn lsq_quantize_backward(
    g: &CpuStorage,
    lg: &Layout,
    x: &CpuStorage,
    lx: &Layout,
    step: &CpuStorage,
    range: (f64, f64),
) -> Result<(CpuStorage, CpuStorage)> {
    const OP: &str = "lsq_quantize_backward";
    check_lsq_range(OP, range)?;
    check_extent(OP, g, lg)?;
    check_extent(OP, x, lx)?;
    if lg.shape() != lx.shape() {
        return Err(Error::ShapeMismatch { op: OP, lhs: lg.shape().to_vec(), rhs: lx.shape().to_vec() });
    }
    match (g, x) {
        (CpuStorage::F32(gv), CpuStorage::F32(xv)) => {
            let s = step_value::<f32>(OP, step)?;
            let (lo, hi) = (range.0 as f32, range.1 as f32);
            let mut gx = vec![0f32; lx.numel()];
            let (gc, xc) = (contiguous_slice(gv, lg), contiguous_slice(xv, lx));
            let total = sum_blocks(&gc, &xc, &mut gx, |a, b, o| lsq_backward_block_f32(a, b, o, s, lo, hi));
            Ok((CpuStorage::F32(gx), CpuStorage::F32(vec![total as f32])))
        }
        (CpuStorage::F64(gv), CpuStorage::F64(xv)) => {
            let s = step_value::<f64>(OP, step)?;
            let mut gx = vec![0f64; lx.numel()];
            let (gc, xc) = (contiguous_slice(gv, lg), contiguous_slice(xv, lx));
            let total = sum_blocks(&gc, &xc, &mut gx, |a, b, o| lsq_backward_block(a, b, o, s, range.0, range.1));
            Ok((CpuStorage::F64(gx), CpuStorage::F64(vec![total])))
        }
        (a, b) if a.dtype() != b.dtype() => Err(Error::DTypeMismatch { op: OP, lhs: a.dtype(), rhs: b.dtype() }),
        (other, _) => Err(Error::UnsupportedDType { op: OP, dtype: other.dtype() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantize::{
        lsq_quantize_backward_composite, lsq_quantize_composite, quantize_i8_composite, requantize_composite,
    };
    use crate::CpuBackend;

    /// The fused codes equal the composite of separate ops (what a backend without the kernel
    /// runs), NaN and ±∞ included, in f32 and f64 and across the parallel block boundary.
    #[test]
    fn codes_equal_the_composite() {
        let n = 3 * PAR_THRESHOLD + 17;
        let v: Vec<f64> = (0..n)
            .map(|i| match i % 11 {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                3 => (i % 512) as f64 * 0.05 - 12.775, // ties of x / 0.05 near the range ends
                _ => ((i as f64 * 0.618_033_99).fract() - 0.5) * 30.0,
            })
            .collect();
        let l = Layout::contiguous(&[n]);
        for x in [CpuStorage::F64(v.clone()), CpuStorage::F32(v.iter().map(|&x| x as f32).collect())] {
            for (mul, div, range, zero) in [(1.0, 0.05, (-128.0, 127.0), 0), (255.0, 6.0, (0.0, 255.0), 128)] {
                let fused = quantize_i8(&x, &l, mul, div, range, zero).unwrap();
                let composite = quantize_i8_composite(&CpuBackend, &x, &l, mul, div, range, zero).unwrap();
                assert_eq!(fused.as_slice::<i8>(), composite.as_slice::<i8>(), "{:?} mul {mul}", x.dtype());
            }
        }
    }

    /// The fused requantization equals the composite to one rounding (the composite's channel
    /// multiply-add may be fused); mismatched lengths are errors naming the op.
    #[test]
    fn requantize_equals_the_composite_and_checks_lengths() {
        let (n, c, s) = (3, 5, PAR_THRESHOLD / 4 + 3);
        let acc: Vec<i32> = (0..n * c * s).map(|i| (i as i32 * 7919) % 200_001 - 100_000).collect();
        let terms: Vec<i32> = (0..c * s).map(|i| (i as i32 * 31) % 1001 - 500).collect();
        let (scale, shift) = (vec![1e-3f32, -2e-4, 5e-5, 0.0, 3e-3], vec![0.5f32, -1.0, 0.0, 2.0, 0.25]);
        let l = Layout::contiguous(&[n, c, s]);
        let (a, t) = (CpuStorage::I32(acc), CpuStorage::I32(terms));
        let (m, d) = (CpuStorage::F32(scale), CpuStorage::F32(shift));
        for (terms, clamp) in [(None, None), (Some(&t), None), (Some(&t), Some((0.0, 6.0))), (None, Some((-1.0, 0.5)))]
        {
            let fused = requantize(&a, &l, terms, &m, &d, clamp).unwrap();
            let composite = requantize_composite(&CpuBackend, &a, &l, terms, &m, &d, clamp).unwrap();
            for (f, g) in fused.as_slice::<f32>().unwrap().iter().zip(composite.as_slice::<f32>().unwrap()) {
                assert!((f - g).abs() <= 4.0 * f32::EPSILON * (1.0 + g.abs()), "{f} vs {g}");
            }
        }
        let short = CpuStorage::I32(vec![0; c * s - 1]);
        let e = requantize(&a, &l, Some(&short), &m, &d, None).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { op: "requantize", .. }), "{e}");
        let e = requantize(&a, &l, None, &CpuStorage::F32(vec![1.0; c + 1]), &d, None).unwrap_err();
        assert!(e.to_string().contains("scales"), "{e}");
    }

    /// LSQ's fused forward and backward equal the composites (NaN and ±∞ included: no `gx`,
    /// a NaN step gradient from a NaN), in f32 and f64, across the parallel block boundary.
    #[test]
    fn lsq_equals_the_composite() {
        let n = 2 * PAR_THRESHOLD + 29;
        let v: Vec<f64> = (0..n)
            .map(|i| match i % 13 {
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                3 => (i % 600) as f64 * 0.05 - 15.025,
                _ => ((i as f64 * 0.618_033_99).fract() - 0.5) * 40.0,
            })
            .collect();
        let g: Vec<f64> = (0..n).map(|i| ((i as f64 * 0.414_213_56).fract() - 0.5) * 2.0).collect();
        let l = Layout::contiguous(&[n]);
        let f32s = |v: &[f64]| CpuStorage::F32(v.iter().map(|&x| x as f32).collect());
        for (x, g, s) in [
            (CpuStorage::F64(v.clone()), CpuStorage::F64(g.clone()), CpuStorage::F64(vec![0.05])),
            (f32s(&v), f32s(&g), CpuStorage::F32(vec![0.05])),
        ] {
            for range in [(-128.0, 127.0), (0.0, 255.0)] {
                let fused = lsq_quantize(&x, &l, &s, range).unwrap();
                let composite = lsq_quantize_composite(&CpuBackend, &x, &l, &s, range).unwrap();
                assert_eq!(fused.to_f64_vec(), composite.to_f64_vec(), "{:?} {range:?}", x.dtype());
                let (gx, gs) = lsq_quantize_backward(&g, &l, &x, &l, &s, range).unwrap();
                let (cgx, cgs) = lsq_quantize_backward_composite(&CpuBackend, &g, &l, &x, &l, &s, range).unwrap();
                assert_eq!(gx.to_f64_vec(), cgx.to_f64_vec());
                let (a, b) = (gs.to_f64_vec()[0], cgs.to_f64_vec()[0]);
                assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
        let nan = CpuStorage::F64(vec![f64::NAN, 1.0]);
        let l2 = Layout::contiguous(&[2]);
        let (gx, gs) = lsq_quantize_backward(
            &CpuStorage::F64(vec![1.0, 1.0]),
            &l2,
            &nan,
            &l2,
            &CpuStorage::F64(vec![0.5]),
            (-4.0, 4.0),
        )
        .unwrap();
        assert_eq!(gx.to_f64_vec(), [0.0, 1.0]);
        assert!(gs.to_f64_vec()[0].is_nan());
    }
}
