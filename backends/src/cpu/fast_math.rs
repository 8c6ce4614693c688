//! Branch-free f32 `exp`, GELU (forward and backward) and `atan` that the compiler vectorizes,
//! for the hot elementwise paths. libm's scalar `expf`/`erff`/`atanf` cost a call and several
//! branches per element; these run 16 lanes at a time.
//!
//! Accuracy: `exp_f32` is within a few ulp of `exp` on its whole range; the GELU functions use
//! Abramowitz & Stegun 7.1.26 for `erfc` (absolute error below 1.5e-7), so their absolute error
//! is below `2e-7 · max(1, |x|)`, under f32's own rounding of the inputs of a training step;
//! `atan_f32` (Cephes' `atanf` reduction and polynomial, with selects for its branches) is
//! within 3 ulp of `atan`. f64 keeps libm's exact functions.

use std::mem::MaybeUninit;

use super::isa::use_avx512;

/// 1.5 · 2^23: `v + SHIFT` rounds `v` to an integer held in the low mantissa bits.
const SHIFT: f32 = 12_582_912.0;
/// ln 2 split in a part exact in f32 and the rest (Cody–Waite range reduction).
pub(super) const LN2_HI: f32 = 0.693_359_4;
pub(super) const LN2_LO: f32 = -2.121_944_4e-4;
/// The Taylor coefficients of `e^r` on `|r| <= ln2/2` for Horner's rule: the degree-7 one
/// first, then the rest in falling degree (error below 1e-8 relative).
pub(super) const EXP_TAYLOR: [f32; 8] = [1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0];
/// A&S 7.1.26: `erfc(z) ≈ t (A1 + t (A2 + t (A3 + t (A4 + t A5)))) e^{-z²}`, `t = 1 / (1 + P z)`.
const P: f32 = 0.327_591_1;
const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_8, -1.453_152, 1.061_405_4];
/// `1 / sqrt(2π)`.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// How `a·b + c` is evaluated: [`Fused`] where the code is compiled with FMA (one rounding, one
/// instruction), [`Separate`] elsewhere (a software `fma` call would be far slower than the two
/// operations).
pub(crate) trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// `a.mul_add(b, c)`: for kernels compiled with the `fma` target feature.
pub(crate) struct Fused;

/// `a * b + c`, rounded twice.
pub(crate) struct Separate;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// `e^x` in f32, branch-free: within a few ulp of the exact value where that is a normal f32,
/// gradually underflowing to 0 below about −87.3 and overflowing to infinity above about 88.7;
/// NaN stays NaN.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    exp_with::<Separate>(x)
}

/// [`exp_f32`] with its multiply-adds evaluated by `M`.
#[inline(always)]
fn exp_with<M: MulAdd>(x: f32) -> f32 {
    // Past these bounds the result is 0 or infinity anyway; clamp keeps NaN.
    let x = x.clamp(-104.0, 89.0);
    let k = M::mul_add(x, std::f32::consts::LOG2_E, SHIFT);
    let n = k - SHIFT;
    let r = M::mul_add(-n, LN2_LO, M::mul_add(-n, LN2_HI, x));
    // e^r on |r| <= ln2/2 by its Taylor polynomial of degree 7.
    let mut p = EXP_TAYLOR[0];
    for c in &EXP_TAYLOR[1..] {
        p = M::mul_add(p, r, *c);
    }
    // n (in -150..=128) from k's low bits (k's bits are 0x4B40_0000 + n), and 2^n as two
    // normal factors 2^h · 2^(n−h), so that neither end of the range overflows the exponent.
    let n = (k.to_bits() as i32).wrapping_sub(0x4B40_0000);
    let h = n >> 1;
    let pow2 = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    p * pow2(h) * pow2(n - h)
}

/// `atan(x)` in f32, branch-free (Cephes' `atanf`): `|x|` is reduced to `|t| <= tan(π/8)` by
/// `atan x = π/2 + atan(−1/x)` above `tan(3π/8)` and `π/4 + atan((x − 1)/(x + 1))` above
/// `tan(π/8)`, then a degree-9 odd polynomial; the sign is restored last. NaN stays NaN,
/// `±∞` gives `±π/2`.
#[inline(always)]
pub(crate) fn atan_f32(x: f32) -> f32 {
    atan_with::<Separate>(x)
}

#[inline(always)]
fn atan_with<M: MulAdd>(x: f32) -> f32 {
    let a = x.abs();
    let big = a > 2.414_213_6; // tan(3π/8)
    let mid = a > 0.414_213_57; // tan(π/8)
    let num = if big {
        -1.0
    } else if mid {
        a - 1.0
    } else {
        a
    };
    let den = if big {
        a
    } else if mid {
        a + 1.0
    } else {
        1.0
    };
    let base = if big {
        std::f32::consts::FRAC_PI_2
    } else if mid {
        std::f32::consts::FRAC_PI_4
    } else {
        0.0
    };
    let t = num / den;
    let z = t * t;
    let p = M::mul_add(M::mul_add(M::mul_add(8.053_744_5e-2, z, -1.387_768_6e-1), z, 1.997_771_1e-1), z, -3.333_295e-1);
    (base + M::mul_add(t * z, p, t)).copysign(x)
}

/// The standard normal CDF `Φ(x)` and `e^{-x²/2}`, which the GELU derivative reuses.
#[inline(always)]
fn normal_cdf_and_gauss<M: MulAdd>(x: f32) -> (f32, f32) {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / M::mul_add(P, z, 1.0);
    let mut poly = A[4];
    for a in [A[3], A[2], A[1], A[0]] {
        poly = M::mul_add(poly, t, a);
    }
    let poly = poly * t;
    let gauss = exp_with::<M>(-z * z);
    // erfc(|x|/√2) = 2 Φ(-|x|); computing the lower tail directly avoids cancellation.
    let lower = 0.5 * poly * gauss;
    let cdf = if x >= 0.0 { 1.0 - lower } else { lower };
    (cdf, gauss)
}

/// GELU, erf form: `x Φ(x)`.
#[inline(always)]
pub(crate) fn gelu_f32(x: f32) -> f32 {
    gelu_with::<Separate>(x)
}

#[inline(always)]
fn gelu_with<M: MulAdd>(x: f32) -> f32 {
    x * normal_cdf_and_gauss::<M>(x).0
}

/// GELU's backward: `g (Φ(x) + x φ(x))`.
#[inline(always)]
pub(crate) fn gelu_backward_f32(g: f32, x: f32) -> f32 {
    gelu_backward_with::<Separate>(g, x)
}

#[inline(always)]
fn gelu_backward_with<M: MulAdd>(g: f32, x: f32) -> f32 {
    let (cdf, gauss) = normal_cdf_and_gauss::<M>(x);
    g * M::mul_add(x * gauss, INV_SQRT_2PI, cdf)
}

/// Defines `$name(inputs.., out)`, which maps `$f` (generic over [`MulAdd`] as `M`) over
/// equally long slices into an output that need not be initialized: compiled with AVX-512 and
/// FMA enabled when the CPU has them (so the loop runs 16 lanes at a time, with fused
/// multiply-adds), as built otherwise (with separate ones).
macro_rules! slice_kernel {
    ($(#[$doc:meta])* $name:ident / $avx:ident: |$($x:ident),+| $f:expr) => {
        $(#[$doc])*
        pub(crate) fn $name($($x: &[f32],)+ out: &mut [MaybeUninit<f32>]) {
            $(assert_eq!($x.len(), out.len());)+
            #[cfg(target_arch = "x86_64")]
            if use_avx512() {
                // SAFETY: the CPU has AVX-512F (checked above).
                return unsafe { $avx($($x,)+ out) };
            }
            {
                type M = Separate;
                for (i, o) in out.iter_mut().enumerate() {
                    $(let $x = $x[i];)+
                    o.write($f);
                }
            }
        }

        /// # Safety
        /// The CPU must have AVX-512F and FMA.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn $avx($($x: &[f32],)+ out: &mut [MaybeUninit<f32>]) {
            type M = Fused;
            for (i, o) in out.iter_mut().enumerate() {
                $(let $x = $x[i];)+
                o.write($f);
            }
        }
    };
}

slice_kernel!(
    /// [`gelu_f32`] of every element of `x` into `out`.
    gelu_slice / gelu_slice_avx512: |x| gelu_with::<M>(x)
);
slice_kernel!(
    /// [`gelu_backward_f32`] of every pair of `g` and `x` into `out`.
    gelu_backward_slice / gelu_backward_slice_avx512: |g, x| gelu_backward_with::<M>(g, x)
);
slice_kernel!(
    /// [`atan_f32`] of every element of `x` into `out`.
    atan_slice / atan_slice_avx512: |x| atan_with::<M>(x)
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Points spread over the range, including the clamps and the tails.
    fn points() -> impl Iterator<Item = f32> {
        (-20_000..=20_000).map(|i| i as f32 * 0.005)
    }

    #[test]
    fn exp_matches_libm_to_a_few_ulp() {
        for x in (-87_000..=88_700).map(|i| i as f32 * 0.001) {
            let (got, want) = (exp_f32(x), (x as f64).exp());
            assert!(((got as f64 - want) / want).abs() < 4.0 * f32::EPSILON as f64, "exp({x}) = {got}, want {want}");
        }
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(-1000.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(1000.0), f32::INFINITY);
        // The ends of the range: overflow just past ln(f32::MAX), gradual underflow.
        assert!(exp_f32(88.7).is_finite() && exp_f32(88.8).is_infinite());
        let sub = exp_f32(-95.0) as f64;
        assert!((sub - (-95f64).exp()).abs() < 1e-44, "{sub}");
    }

    /// GELU, its derivative and the tolerance of the f32 versions at `x`, in f64 (libm's erf).
    fn reference(x: f32) -> (f64, f64, f64) {
        let xd = x as f64;
        let cdf = 0.5 * (1.0 + libm::erf(xd / std::f64::consts::SQRT_2));
        let pdf = (-0.5 * xd * xd).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let tol = 2e-7 * xd.abs().max(1.0) + 2.0 * f32::EPSILON as f64 * (xd * cdf).abs();
        (xd * cdf, cdf + xd * pdf, tol)
    }

    #[test]
    fn gelu_and_its_backward_match_f64() {
        for x in points() {
            let (gelu, slope, tol) = reference(x);
            let got = gelu_f32(x) as f64;
            assert!((got - gelu).abs() < tol, "gelu({x}) = {got}, want {gelu}");
            let got = gelu_backward_f32(1.5, x) as f64;
            assert!((got - 1.5 * slope).abs() < 1.5 * tol, "gelu'({x}) = {got}, want {}", 1.5 * slope);
        }
        assert!(gelu_f32(f32::NAN).is_nan() && gelu_backward_f32(1.0, f32::NAN).is_nan());
        assert_eq!(gelu_f32(f32::INFINITY), f32::INFINITY);
    }

    /// `atan_f32` and its slice kernel are within 3 ulp of the f64 `atan` (rounded to f32) over
    /// the reduction's three ranges, at their boundaries, near 0 and on huge values.
    #[test]
    fn atan_matches_f64_to_3_ulp() {
        let mut x: Vec<f32> = (-40_000..=40_000).map(|i| i as f32 * 0.00123).collect();
        x.extend([0.414_213_57, 0.414_213_6, 2.414_213_6, 2.414_214, 1e-30, -1e-7, 3e5, -1e30, f32::MAX]);
        let mut out = vec![MaybeUninit::new(f32::NAN); x.len()];
        atan_slice(&x, &mut out);
        for (i, &v) in x.iter().enumerate() {
            let want = (v as f64).atan();
            let ulp = (want.abs() as f32).max(f32::MIN_POSITIVE);
            let ulp = (f32::from_bits(ulp.to_bits() + 1) - ulp) as f64;
            for got in [atan_f32(v) as f64, unsafe { out[i].assume_init() } as f64] {
                assert!((got - want).abs() <= 3.0 * ulp, "atan({v}) = {got}, want {want}");
            }
        }
        assert!(atan_f32(f32::NAN).is_nan());
        assert_eq!(atan_f32(f32::INFINITY), std::f32::consts::FRAC_PI_2);
        assert_eq!(atan_f32(f32::NEG_INFINITY), -std::f32::consts::FRAC_PI_2);
        assert_eq!(atan_f32(-0.0).to_bits(), (-0.0f32).to_bits());
    }

    /// The slice kernels (fused multiply-adds under AVX-512) meet the same bounds as the scalar
    /// functions, on every point and on a length that leaves a partial vector.
    #[test]
    fn slice_kernels_match_f64() {
        let x: Vec<f32> = points().chain([0.25, f32::NAN, f32::INFINITY]).collect();
        let g: Vec<f32> = x.iter().map(|v| 1.0 - v.clamp(-10.0, 10.0) * 0.1).collect();
        let mut out = vec![MaybeUninit::new(f32::NAN); x.len()];
        gelu_slice(&x, &mut out);
        let got: Vec<f32> = out.iter().map(|o| unsafe { o.assume_init() }).collect();
        gelu_backward_slice(&g, &x, &mut out);
        let grad: Vec<f32> = out.iter().map(|o| unsafe { o.assume_init() }).collect();
        for (i, &x) in x.iter().enumerate() {
            if x.is_nan() {
                assert!(got[i].is_nan() && grad[i].is_nan());
                continue;
            }
            if x.is_infinite() {
                assert_eq!(got[i], x, "gelu({x})");
                continue;
            }
            let (gelu, slope, tol) = reference(x);
            assert!((got[i] as f64 - gelu).abs() < tol, "gelu({x}) = {}, want {gelu}", got[i]);
            let want = g[i] as f64 * slope;
            assert!((grad[i] as f64 - want).abs() < 1.5 * tol, "gelu'({x}) = {}, want {want}", grad[i]);
        }
    }
}
