//! The backend conformance suite: one set of checks, written once, run against every backend.
//!
//! Each `check_*` function takes a backend, runs its primitives on random inputs (contiguous and
//! strided views, odd sizes) and compares the results with naive f64 reference loops, panicking
//! with a message that names the op, dtype, shape and worst element on a mismatch. The CPU
//! backend's test `tests/cpu_conformance.rs` calls every one of them; a GPU backend's test does
//! the same with its own backend value.

#![allow(missing_docs)]

pub mod attention;
pub mod channel;
pub mod conv;
pub mod elementwise;
pub mod fft;
pub mod indexing;
pub mod int8;
pub mod linalg;
pub mod pool;
pub mod random;
pub mod row_norm;
pub mod sort;
pub mod sparse_conv;

pub use conv::{check_conv2d, check_conv2d_errors, check_conv2d_i8, check_conv2d_large, check_conv2d_thread_counts};
pub use pool::{check_adaptive_avg_pool2d, check_avg_pool2d, check_max_pool2d, check_pool2d_errors};

pub use attention::{check_packed_attention, check_packed_attention_backward};
pub use channel::check_channel_ops;
pub use elementwise::*;
pub use fft::*;
pub use indexing::*;
pub use int8::*;
pub use linalg::*;
pub use random::*;
pub use row_norm::check_layer_norm;
pub use sort::*;
pub use sparse_conv::{check_sparse_conv2d, check_sparse_conv2d_errors};

use crate::{Backend, CpuStorage, DType, Fused, Layout};

/// Calls `$m!(check_a, check_b, ...)` with the name of every check of the suite, so each backend's
/// test file instantiates the same list (see `tests/cpu_conformance.rs`).
#[macro_export]
macro_rules! conformance_checks {
    ($m:ident) => {
        $m!(
            check_unary_float,
            check_unary_int,
            check_binary,
            check_binary_errors,
            check_activation_backward,
            check_compare_where,
            check_copy_cast,
            check_concat_pad,
            check_reduce,
            check_arg_reduce,
            check_softmax,
            check_softmax_backward,
            check_channel_ops,
            check_layer_norm,
            check_matmul,
            check_matmul_bias,
            check_packed_attention,
            check_packed_attention_backward,
            check_conv2d,
            check_conv2d_thread_counts,
            check_conv2d_large,
            check_conv2d_i8,
            check_conv2d_errors,
            check_sparse_conv2d,
            check_sparse_conv2d_errors,
            check_max_pool2d,
            check_avg_pool2d,
            check_adaptive_avg_pool2d,
            check_pool2d_errors,
            check_gather,
            check_scatter_add,
            check_index_select,
            check_sort,
            check_topk,
            check_random_streams,
            check_random_matches_reference,
            check_random_distributions,
            check_rfft2,
            check_irfft2,
            check_int8_matmul,
            check_ternary_conv1x1,
            check_quantize_i8,
            check_requantize,
            check_lsq_quantize,
        );
    };
}

/// Sizes every kernel must handle (odd and awkward on purpose).
pub const ODD_SIZES: [usize; 6] = [1, 3, 7, 33, 127, 2];

/// A small deterministic generator for test data (xorshift64*), independent of any backend.
#[derive(Clone, Debug)]
pub struct TestRng(u64);

impl TestRng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        TestRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform on `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform on `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// An integer in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `n` values uniform on `[lo, hi)`.
    pub fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| self.range(lo, hi)).collect()
    }
}

/// Host values converted to a buffer of `dtype`.
pub fn host(data: &[f64], dtype: DType) -> CpuStorage {
    match dtype {
        DType::F32 => CpuStorage::F32(data.iter().map(|&x| x as f32).collect()),
        DType::F64 => CpuStorage::F64(data.to_vec()),
        DType::I64 => CpuStorage::I64(data.iter().map(|&x| x as i64).collect()),
        DType::I32 => CpuStorage::I32(data.iter().map(|&x| x as i32).collect()),
        DType::U32 => CpuStorage::U32(data.iter().map(|&x| x as u32).collect()),
        DType::U8 => CpuStorage::U8(data.iter().map(|&x| x as u8).collect()),
        DType::I8 => CpuStorage::I8(data.iter().map(|&x| x as i8).collect()),
    }
}

/// Uploads host values as `dtype`.
pub fn upload<B: Backend>(b: &B, data: &[f64], dtype: DType) -> B::Storage {
    b.from_host(&host(data, dtype)).expect("upload")
}

/// Downloads a view as f64 values in row-major order.
pub fn download<B: Backend>(b: &B, s: &B::Storage, l: &Layout) -> Vec<f64> {
    b.to_host(s, l).expect("download").to_f64_vec()
}

/// A view of `shape` and the length of the buffer it needs.
#[derive(Clone, Debug)]
pub struct View {
    /// What kind of view this is (for messages).
    pub kind: &'static str,
    /// The layout.
    pub layout: Layout,
    /// The buffer length the layout addresses.
    pub buffer_len: usize,
}

/// Views of `shape`: contiguous, permuted (reversed dims), narrowed out of a larger buffer
/// (nonzero offset), and with a stride of 2 in the last dimension.
pub fn views_of(shape: &[usize]) -> Vec<View> {
    let mut out =
        vec![View { kind: "contiguous", layout: Layout::contiguous(shape), buffer_len: shape.iter().product() }];
    let nd = shape.len();
    if nd >= 2 {
        let rev: Vec<usize> = shape.iter().rev().copied().collect();
        let perm: Vec<usize> = (0..nd).rev().collect();
        out.push(View {
            kind: "permuted",
            layout: Layout::contiguous(&rev).permute(&perm).unwrap(),
            buffer_len: shape.iter().product(),
        });
    }
    if nd >= 1 {
        let big: Vec<usize> = shape.iter().map(|&d| d + 2).collect();
        let mut l = Layout::contiguous(&big);
        for (d, &s) in shape.iter().enumerate() {
            l = l.narrow(d, 1, s).unwrap();
        }
        out.push(View { kind: "narrowed", layout: l, buffer_len: big.iter().product() });
        let mut big = shape.to_vec();
        big[nd - 1] = 2 * shape[nd - 1];
        let l = Layout::contiguous(&big).slice_step(nd - 1, 0, big[nd - 1], 2).unwrap();
        out.push(View { kind: "stepped", layout: l, buffer_len: big.iter().product() });
    }
    out
}

/// The value of a view at a multi-index, read from a host buffer.
pub fn at(data: &[f64], l: &Layout, idx: &[usize]) -> f64 {
    data[l.offset() + idx.iter().zip(l.strides()).map(|(i, s)| i * s).sum::<usize>()]
}

/// The row-major values of a view of a host buffer.
pub fn logical(data: &[f64], l: &Layout) -> Vec<f64> {
    let n = l.numel();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0; l.ndim()];
    for _ in 0..n {
        out.push(at(data, l, &idx));
        for d in (0..l.ndim()).rev() {
            idx[d] += 1;
            if idx[d] < l.shape()[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// Asserts `|got - want| <= atol + rtol * |want|` elementwise (NaNs must match NaNs), naming the
/// worst element.
#[track_caller]
pub fn assert_close(got: &[f64], want: &[f64], rtol: f64, atol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length {} != {}", got.len(), want.len());
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g.is_nan() && w.is_nan() {
            continue;
        }
        if g == w {
            continue;
        }
        let excess = (g - w).abs() - (atol + rtol * w.abs());
        if excess > 0.0 || g.is_nan() != w.is_nan() {
            let e = if excess.is_nan() { f64::INFINITY } else { excess };
            if worst.is_none_or(|(_, we)| e > we) {
                worst = Some((i, e));
            }
        }
    }
    if let Some((i, _)) = worst {
        panic!("{what}: element {i} is {} but the reference is {} (rtol {rtol}, atol {atol})", got[i], want[i]);
    }
}

/// The tolerance for comparing a `dtype` result with an f64 reference of ordinary magnitude.
pub fn tol(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F32 => (2e-5, 1e-5),
        DType::F64 => (1e-12, 1e-12),
        _ => (0.0, 0.0),
    }
}
