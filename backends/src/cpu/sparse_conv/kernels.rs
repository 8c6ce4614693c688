//! The three inner loops of the sparse convolution, over runs of [`CHUNK`] values: a generic
//! version (f64, and f32 without AVX-512) and an f32 AVX-512 version with four 16-lane
//! accumulators and fused multiply-adds.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use crate::FloatElement;

/// Values per chunk of a run (four 16-lane f32 vectors).
pub(crate) const CHUNK: usize = 64;

/// `grid[t] = Σ_k vals[k] · p[offs[k] + t]`, every `t` of `grid` (a multiple of [`CHUNK`] long).
type ForwardRun<T> = fn(&[T], &[u32], &[T], &mut [T]);
/// `dp[offs[k] + t] += vals[k] · grid[t]`, every `k` and `t`.
type ScatterRun<T> = fn(&mut [T], &[u32], &[T], &[T]);
/// `dv[k] += Σ_t grid[t] · p[offs[k] + t]`, every `k`.
type DotRuns<T> = fn(&[T], &[u32], &[T], &mut [T]);

/// The kernels of an element type (f32 picks AVX-512 at run time).
pub(super) trait SparseKernels: FloatElement {
    /// See [`ForwardRun`].
    const FORWARD: ForwardRun<Self> = forward_run_of::<Self>;
    /// See [`ScatterRun`].
    const SCATTER: ScatterRun<Self> = scatter_run_of::<Self>;
    /// See [`DotRuns`].
    const DOT: DotRuns<Self> = dot_runs_of::<Self>;

    /// Checks the bounds, then runs [`Self::FORWARD`].
    fn forward_run(p: &[Self], offs: &[u32], vals: &[Self], grid: &mut [Self]) {
        check(p.len(), offs, grid.len());
        Self::FORWARD(p, offs, vals, grid)
    }

    /// Checks the bounds, then runs [`Self::SCATTER`].
    fn scatter_run(dp: &mut [Self], offs: &[u32], vals: &[Self], grid: &[Self]) {
        check(dp.len(), offs, grid.len());
        Self::SCATTER(dp, offs, vals, grid)
    }

    /// Checks the bounds, then runs [`Self::DOT`].
    fn dot_runs(p: &[Self], offs: &[u32], grid: &[Self], dv: &mut [Self]) {
        check(p.len(), offs, grid.len());
        Self::DOT(p, offs, grid, dv)
    }
}

impl SparseKernels for f64 {}

impl SparseKernels for f32 {
    const FORWARD: ForwardRun<f32> = forward_run_f32;
    const SCATTER: ScatterRun<f32> = scatter_run_f32;
    const DOT: DotRuns<f32> = dot_runs_f32;
}

/// Every run `offs[k] .. offs[k] + run` lies inside a buffer of `len`, and `run` is whole chunks
/// (the AVX-512 loops rely on it: a broken invariant here is a bug, so it panics).
fn check(len: usize, offs: &[u32], run: usize) {
    assert!(run.is_multiple_of(CHUNK), "sparse_conv: a run of {run} is not whole chunks");
    let max = offs.iter().copied().max().unwrap_or(0) as usize;
    assert!(offs.is_empty() || max + run <= len, "sparse_conv: run {max}+{run} past a buffer of {len}");
}

fn forward_run_of<T: FloatElement>(p: &[T], offs: &[u32], vals: &[T], grid: &mut [T]) {
    for (t0, out) in (0..).step_by(CHUNK).zip(grid.chunks_exact_mut(CHUNK)) {
        let mut acc = [T::zero(); CHUNK];
        for (&off, &v) in offs.iter().zip(vals) {
            let src = &p[off as usize + t0..][..CHUNK];
            for l in 0..CHUNK {
                acc[l] += v * src[l];
            }
        }
        out.copy_from_slice(&acc);
    }
}

fn scatter_run_of<T: FloatElement>(dp: &mut [T], offs: &[u32], vals: &[T], grid: &[T]) {
    for (t0, g) in (0..).step_by(CHUNK).zip(grid.chunks_exact(CHUNK)) {
        if g.iter().all(|&x| x == T::zero()) {
            continue;
        }
        for (&off, &v) in offs.iter().zip(vals) {
            let dst = &mut dp[off as usize + t0..][..CHUNK];
            for l in 0..CHUNK {
                dst[l] += v * g[l];
            }
        }
    }
}

fn dot_runs_of<T: FloatElement>(p: &[T], offs: &[u32], grid: &[T], dv: &mut [T]) {
    for (&off, d) in offs.iter().zip(dv.iter_mut()) {
        let src = &p[off as usize..][..grid.len()];
        let mut acc = [T::zero(); 16];
        for (g, s) in grid.chunks_exact(16).zip(src.chunks_exact(16)) {
            for l in 0..16 {
                acc[l] += g[l] * s[l];
            }
        }
        *d += acc.iter().fold(T::zero(), |a, &b| a + b);
    }
}

fn forward_run_f32(p: &[f32], offs: &[u32], vals: &[f32], grid: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::super::isa::use_avx512() {
        // SAFETY: AVX-512F is present (checked) and `check` bounded every run by the buffers.
        return unsafe { forward_run_avx512(p, offs, vals, grid) };
    }
    forward_run_of(p, offs, vals, grid)
}

fn scatter_run_f32(dp: &mut [f32], offs: &[u32], vals: &[f32], grid: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::super::isa::use_avx512() {
        // SAFETY: as in `forward_run_f32`.
        return unsafe { scatter_run_avx512(dp, offs, vals, grid) };
    }
    scatter_run_of(dp, offs, vals, grid)
}

fn dot_runs_f32(p: &[f32], offs: &[u32], grid: &[f32], dv: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::super::isa::use_avx512() {
        // SAFETY: as in `forward_run_f32`.
        return unsafe { dot_runs_avx512(p, offs, grid, dv) };
    }
    dot_runs_of(p, offs, grid, dv)
}

/// # Safety
/// AVX-512F must be present; `offs[k] + grid.len() <= p.len()` for every `k`; `grid.len()` a
/// multiple of [`CHUNK`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn forward_run_avx512(p: &[f32], offs: &[u32], vals: &[f32], grid: &mut [f32]) {
    let (pp, gp) = (p.as_ptr(), grid.as_mut_ptr());
    let mut t0 = 0;
    while t0 < grid.len() {
        let (mut a0, mut a1, mut a2, mut a3) =
            (_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps());
        for (&off, &v) in offs.iter().zip(vals) {
            let s = pp.add(off as usize + t0);
            let w = _mm512_set1_ps(v);
            a0 = _mm512_fmadd_ps(w, _mm512_loadu_ps(s), a0);
            a1 = _mm512_fmadd_ps(w, _mm512_loadu_ps(s.add(16)), a1);
            a2 = _mm512_fmadd_ps(w, _mm512_loadu_ps(s.add(32)), a2);
            a3 = _mm512_fmadd_ps(w, _mm512_loadu_ps(s.add(48)), a3);
        }
        let d = gp.add(t0);
        _mm512_storeu_ps(d, a0);
        _mm512_storeu_ps(d.add(16), a1);
        _mm512_storeu_ps(d.add(32), a2);
        _mm512_storeu_ps(d.add(48), a3);
        t0 += CHUNK;
    }
}

/// # Safety
/// As [`forward_run_avx512`], with `dp` for `p`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn scatter_run_avx512(dp: &mut [f32], offs: &[u32], vals: &[f32], grid: &[f32]) {
    let (dpp, gp) = (dp.as_mut_ptr(), grid.as_ptr());
    let mut t0 = 0;
    while t0 < grid.len() {
        let g = gp.add(t0);
        let (g0, g1, g2, g3) =
            (_mm512_loadu_ps(g), _mm512_loadu_ps(g.add(16)), _mm512_loadu_ps(g.add(32)), _mm512_loadu_ps(g.add(48)));
        let bits = |v: __m512| _mm512_castps_si512(v);
        let any = _mm512_or_si512(_mm512_or_si512(bits(g0), bits(g1)), _mm512_or_si512(bits(g2), bits(g3)));
        // All-zero chunks (the discarded columns' runs) scatter nothing.
        if _mm512_test_epi32_mask(any, any) != 0 {
            for (&off, &v) in offs.iter().zip(vals) {
                let d = dpp.add(off as usize + t0);
                let w = _mm512_set1_ps(v);
                _mm512_storeu_ps(d, _mm512_fmadd_ps(w, g0, _mm512_loadu_ps(d)));
                _mm512_storeu_ps(d.add(16), _mm512_fmadd_ps(w, g1, _mm512_loadu_ps(d.add(16))));
                _mm512_storeu_ps(d.add(32), _mm512_fmadd_ps(w, g2, _mm512_loadu_ps(d.add(32))));
                _mm512_storeu_ps(d.add(48), _mm512_fmadd_ps(w, g3, _mm512_loadu_ps(d.add(48))));
            }
        }
        t0 += CHUNK;
    }
}

/// # Safety
/// As [`forward_run_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_runs_avx512(p: &[f32], offs: &[u32], grid: &[f32], dv: &mut [f32]) {
    let (pp, gp) = (p.as_ptr(), grid.as_ptr());
    for (&off, d) in offs.iter().zip(dv.iter_mut()) {
        let s = pp.add(off as usize);
        let (mut a0, mut a1, mut a2, mut a3) =
            (_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps());
        let mut t = 0;
        while t < grid.len() {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(gp.add(t)), _mm512_loadu_ps(s.add(t)), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(gp.add(t + 16)), _mm512_loadu_ps(s.add(t + 16)), a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(gp.add(t + 32)), _mm512_loadu_ps(s.add(t + 32)), a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(gp.add(t + 48)), _mm512_loadu_ps(s.add(t + 48)), a3);
            t += CHUNK;
        }
        *d += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}
