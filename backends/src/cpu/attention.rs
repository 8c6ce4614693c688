//! Packed multi-head self-attention ([`crate::Fused::packed_attention`]) and its backward pass
//! ([`crate::Fused::packed_attention_backward`]) as one kernel each: each thread takes one head
//! at a time and runs its products and softmax (or softmax backward) on an `N x N` block that
//! stays in cache, reading queries, keys and values where they lie in `qkv` and writing its
//! output straight into its columns of the result (no scale pass, no head merging or
//! concatenation copies).

use super::gemm::{gemm, gemm_to_ptr, GemmElement, MatRef, SendPtr};
use super::softmax::{softmax_backward_rows, softmax_rows_in_place, RowsBackward};
use crate::packed_attention::{
    check, dims, packed_attention_backward_composite, packed_attention_composite, AttentionDims,
};
use crate::{CpuStorage, Layout, Result};
use rayon::prelude::*;

/// The fused forward for f32 and f64 `qkv` in a contiguous view; the composite otherwise.
pub(crate) fn packed_attention(
    qkv: &CpuStorage,
    lqkv: &Layout,
    heads: usize,
    scale: f64,
) -> Result<(CpuStorage, CpuStorage)> {
    const OP: &str = "packed_attention";
    let d = dims(OP, lqkv, heads)?;
    super::strided::check_extent(OP, qkv, lqkv)?;
    match (qkv, lqkv.contiguous_range()) {
        (CpuStorage::F32(x), Some(r)) => {
            let (y, p) = heads_forward(d, &x[r], scale as f32);
            Ok((CpuStorage::F32(y), CpuStorage::F32(p)))
        }
        (CpuStorage::F64(x), Some(r)) => {
            let (y, p) = heads_forward(d, &x[r], scale);
            Ok((CpuStorage::F64(y), CpuStorage::F64(p)))
        }
        _ => packed_attention_composite(&super::CpuBackend, qkv, lqkv, heads, scale),
    }
}

/// `y` `[B, N, C]` and `p` `[B, H, N, N]` from contiguous `qkv` `[B, N, 3C]`, heads spread over
/// rayon's threads: per head the scores `(q kᵀ)·scale` go straight into the head's block of
/// `p`, are turned into probabilities there, and `p v` is written into the head's columns of `y`.
fn heads_forward<T: GemmElement + RowsBackward>(dims: AttentionDims, qkv: &[T], scale: T) -> (Vec<T>, Vec<T>) {
    let AttentionDims { b, n, h, d } = dims;
    let c = h * d;
    if b * n == 0 {
        return (Vec::new(), Vec::new());
    }
    let mut y = Vec::new();
    let fill_p = |p: &mut [std::mem::MaybeUninit<T>]| {
        let fill_y = |out: &mut [std::mem::MaybeUninit<T>]| {
            let out = SendPtr(out.as_mut_ptr().cast::<T>());
            p.par_chunks_mut(n * n).enumerate().for_each(|(bh, block)| {
                let (bi, hi) = (bh / h, bh % h);
                let at = |which: usize| bi * n * 3 * c + which * c + hi * d;
                let q = MatRef { data: qkv, offset: at(0), rs: 3 * c, cs: 1 };
                let (k, v) = (MatRef { offset: at(1), ..q }, MatRef { offset: at(2), ..q });
                let scores = block.as_mut_ptr().cast::<T>();
                // SAFETY: the product writes the whole `N x N` block (never reading it), after
                // which it is initialized.
                let probs = unsafe {
                    gemm_to_ptr(n, d, n, scale, q, MatRef { rs: 1, cs: 3 * c, ..k }, scores, n);
                    std::slice::from_raw_parts_mut(scores, n * n)
                };
                softmax_rows_in_place(probs, n);
                let pm = MatRef { data: &probs[..], offset: 0, rs: n, cs: 1 };
                // SAFETY: the head writes only its own `N x D` column block of `y` (rows of
                // batch bi, columns `hi·D ..+ D`), disjoint from every other head's, once, never
                // reading it.
                unsafe { gemm_to_ptr(n, n, d, T::one(), pm, v, out.get().add(bi * n * c + hi * d), c) };
            });
        };
        // SAFETY: the heads together write every element of `y`: each of the B·N rows has H
        // blocks of D columns, one per head.
        y = unsafe { super::strided::build(b * n * c, fill_y) };
    };
    // SAFETY: every head's block of `p` is written whole by its scores' product.
    let p = unsafe { super::strided::build(b * h * n * n, fill_p) };
    (y, p)
}

/// The fused kernel for f32 and f64 operands whose views are contiguous; the composite
/// otherwise (its errors name other dtypes).
#[allow(clippy::too_many_arguments)]
pub(crate) fn packed_attention_backward(
    qkv: &CpuStorage,
    lqkv: &Layout,
    p: &CpuStorage,
    lp: &Layout,
    g: &CpuStorage,
    lg: &Layout,
    heads: usize,
    scale: f64,
) -> Result<CpuStorage> {
    const OP: &str = "packed_attention_backward";
    let dims = check(lqkv, lp, lg, heads)?;
    super::strided::check_extent(OP, qkv, lqkv)?;
    super::strided::check_extent(OP, p, lp)?;
    super::strided::check_extent(OP, g, lg)?;
    let ranges = (lqkv.contiguous_range(), lp.contiguous_range(), lg.contiguous_range());
    match (qkv, p, g, ranges) {
        (CpuStorage::F32(x), CpuStorage::F32(pv), CpuStorage::F32(gv), (Some(rx), Some(rp), Some(rg))) => {
            Ok(CpuStorage::F32(heads_backward(dims, &x[rx], &pv[rp], &gv[rg], scale as f32)))
        }
        (CpuStorage::F64(x), CpuStorage::F64(pv), CpuStorage::F64(gv), (Some(rx), Some(rp), Some(rg))) => {
            Ok(CpuStorage::F64(heads_backward(dims, &x[rx], &pv[rp], &gv[rg], scale)))
        }
        _ => packed_attention_backward_composite(&super::CpuBackend, qkv, lqkv, p, lp, g, lg, heads, scale),
    }
}

/// The gradient of `qkv` from contiguous `qkv` `[B, N, 3C]`, `p` `[B, H, N, N]` and `g`
/// `[B, N, C]`, heads spread over rayon's threads.
fn heads_backward<T: GemmElement + RowsBackward>(dims: AttentionDims, qkv: &[T], p: &[T], g: &[T], scale: T) -> Vec<T> {
    let AttentionDims { b, n, h, d } = dims;
    let c = h * d;
    let total = b * n * 3 * c;
    if total == 0 {
        return Vec::new();
    }
    let fill = |out: &mut [std::mem::MaybeUninit<T>]| {
        let out = SendPtr(out.as_mut_ptr().cast::<T>());
        (0..b * h).into_par_iter().for_each_init(Default::default, |(gp, gs): &mut (Vec<T>, Vec<T>), bh| {
            let (bi, hi) = (bh / h, bh % h);
            // Columns of this head's queries, keys or values (`which` = 0, 1, 2) in batch bi's rows.
            let at = |which: usize| bi * n * 3 * c + which * c + hi * d;
            let q = MatRef { data: qkv, offset: at(0), rs: 3 * c, cs: 1 };
            let (k, v) = (MatRef { offset: at(1), ..q }, MatRef { offset: at(2), ..q });
            let go = MatRef { data: g, offset: bi * n * c + hi * d, rs: c, cs: 1 };
            let probs = &p[bh * n * n..(bh + 1) * n * n];
            let pm = MatRef { data: probs, offset: 0, rs: n, cs: 1 };
            // SAFETY: the head writes only its own `N x D` column blocks of the output (rows of
            // batch bi, columns `which·C + hi·D ..+ D`), disjoint from every other head's, each
            // written once and never read.
            unsafe { gemm_to_ptr(n, n, d, T::one(), MatRef { rs: 1, cs: n, ..pm }, go, out.get().add(at(2)), 3 * c) };
            // The probabilities' gradient go vᵀ, then the scores' gradient by the softmax
            // backward's row kernel.
            gp.resize(n * n, T::zero());
            gs.resize(n * n, T::zero());
            gemm(n, d, n, T::one(), go, MatRef { rs: 1, cs: 3 * c, ..v }, T::zero(), gp, n);
            softmax_backward_rows(probs, gp, gs, n);
            let sm = MatRef { data: &gs[..], offset: 0, rs: n, cs: 1 };
            // SAFETY: as above, for the queries' and the keys' columns.
            unsafe {
                gemm_to_ptr(n, n, d, scale, sm, k, out.get().add(at(0)), 3 * c);
                gemm_to_ptr(n, n, d, scale, MatRef { rs: 1, cs: n, ..sm }, q, out.get().add(at(1)), 3 * c);
            }
        });
    };
    // SAFETY: the heads together write every element: each of the B·N rows has 3·H blocks of D
    // columns, one per head and part.
    unsafe { super::strided::build(total, fill) }
}
