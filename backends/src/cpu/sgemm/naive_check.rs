//! The tests' check of one GEMM (f32 or bf16) against a naive f64 loop, written once.

use super::Operand;
use crate::cpu::testing::values;

/// The product's shape, storage and scalars: `m x k` times `k x n`; `ta`/`tb` store the
/// operands transposed (column-major), so the packing reads them with non-unit strides.
#[derive(Clone, Copy, Debug)]
pub(super) struct Case {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub ta: bool,
    pub tb: bool,
    pub alpha: f32,
    pub beta: f32,
    /// Whether a bias row (`n` values added to every row of `C`) is passed.
    pub bias: bool,
}

/// How the reference is formed and judged: each operand passes through `round` (the identity,
/// or the rounding the kernel applies), and `C[i, j]` may differ from it by
/// `tol(k, want, |alpha| Σ|a b| + |beta C₀|)`.
pub(super) struct Reference {
    pub round: fn(f32) -> f32,
    pub tol: fn(usize, f64, f64) -> f64,
}

/// Runs `gemm(a, b, bias, c, ldc)` (computing `C = alpha A B + beta C + bias` for `case`, the
/// bias pointer null when the case has none) on seeded operands and a `C` with 3 padding
/// columns (NaN where `beta == 0`, which must never be read), then checks every element
/// against the naive f64 product of the rounded operands and that the padding is untouched.
/// `label` names the kernel in failure messages.
pub(super) fn check(
    case: Case,
    reference: &Reference,
    label: &str,
    gemm: impl FnOnce(Operand, Operand, *const f32, *mut f32, usize),
) {
    let Case { m, k, n, ta, tb, alpha, beta, bias } = case;
    let bias_row: Vec<f32> = if bias { values(n, (n * 7 + 1) as u64) } else { Vec::new() };
    let a: Vec<f32> = values(m * k, (m * 31 + k) as u64);
    let b: Vec<f32> = values(k * n, (k * 17 + n) as u64);
    let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
    let ldc = n + 3;
    let c0: Vec<f32> = if beta == 0.0 { vec![f32::NAN; m * ldc] } else { values(m * ldc, 5) };
    let mut c = c0.clone();
    gemm(
        Operand { ptr: a.as_ptr(), rs: rsa, cs: csa },
        Operand { ptr: b.as_ptr(), rs: rsb, cs: csb },
        if bias { bias_row.as_ptr() } else { std::ptr::null() },
        c.as_mut_ptr(),
        ldc,
    );
    for i in 0..m {
        for j in 0..n {
            let (mut s, mut mag) = (0f64, 0f64);
            for p in 0..k {
                let av = f64::from((reference.round)(a[(i as isize * rsa + p as isize * csa) as usize]));
                let bv = f64::from((reference.round)(b[(p as isize * rsb + j as isize * csb) as usize]));
                s += av * bv;
                mag += (av * bv).abs();
            }
            let mut old = if beta == 0.0 { 0.0 } else { f64::from(beta) * f64::from(c0[i * ldc + j]) };
            if bias {
                old += f64::from(bias_row[j]);
            }
            let want = f64::from(alpha) * s + old;
            let got = f64::from(c[i * ldc + j]);
            let tol = (reference.tol)(k, want, f64::from(alpha.abs()) * mag + old.abs());
            assert!(
                (got - want).abs() <= tol,
                "{label} m={m} k={k} n={n} ta={ta} tb={tb} alpha={alpha} beta={beta} bias={bias}: C[{i},{j}] = {got}, want {want}"
            );
        }
        // The padding between rows is never written.
        for j in n..ldc {
            let (got, old) = (c[i * ldc + j], c0[i * ldc + j]);
            assert!(got.to_bits() == old.to_bits(), "{label}: wrote past column {n} in row {i}");
        }
    }
}
