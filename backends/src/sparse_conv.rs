//! Convolutions with a sparse weight: the [`SparsePattern`] of a weight in compressed sparse
//! rows (one row per output channel), and the composite fallback of the three sparse
//! convolution primitives for backends without a kernel of their own: densify the weight and
//! run the dense primitive.
//!
//! A sparse weight is its pattern (host data: which coordinates of `[O, C/groups, kH, kW]` are
//! stored, row by row) plus a device buffer of the stored values, `[nnz]` in the pattern's
//! order. A linear layer is the 1x1 case.
//!
//! Everything of the sparse convolution outside the kernels lives in this module so that it
//! stays apart from the op lists of the backend contract: the three [`Backend`] methods default
//! to the composites here (the CPU backend overrides them with `cpu::sparse_conv`), and the
//! `Storage` methods that route them to the operands' backend are written here rather than in
//! `dispatch.rs`.

use crate::ops::Conv2dParams;
use crate::{Backend, CpuBackend, CpuStorage, DType, Error, Layout, Result, Storage};

/// The non-zero coordinates of a convolution weight `[O, C/groups, kH, kW]` in compressed sparse
/// rows: the entries of output channel `o` are `row_ptr[o]..row_ptr[o + 1]`, each a flat index
/// into the channel's `[C/groups, kH, kW]` block, increasing within a row.
///
/// ```
/// use backends::sparse_conv::SparsePattern;
/// let mask = [1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0]; // [O = 2, 3, 1, 1]
/// let p = SparsePattern::from_mask([2, 3, 1, 1], &mask).unwrap();
/// assert_eq!((p.row_ptr.clone(), p.cols.clone(), p.nnz()), (vec![0, 1, 3], vec![0, 0, 1], 3));
/// assert_eq!(p.flat_indices(), vec![0, 3, 4]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparsePattern {
    /// The dense weight's shape `[O, C/groups, kH, kW]` (`[out, in, 1, 1]` for a linear layer).
    pub shape: [usize; 4],
    /// `O + 1` offsets into `cols`.
    pub row_ptr: Vec<u32>,
    /// The flat index in `[C/groups, kH, kW]` of every stored entry.
    pub cols: Vec<u32>,
}

impl SparsePattern {
    /// The pattern of the non-zero entries of a dense 0/1 (or any) mask of `shape`, row-major.
    pub fn from_mask(shape: [usize; 4], mask: &[f32]) -> Result<SparsePattern> {
        let n: usize = shape.iter().product();
        if mask.len() != n {
            return Err(Error::invalid(
                "SparsePattern",
                format!("a mask of {} entries for shape {shape:?}", mask.len()),
            ));
        }
        let block = shape[1] * shape[2] * shape[3];
        if block > u32::MAX as usize || n > u32::MAX as usize {
            return Err(Error::invalid("SparsePattern", format!("shape {shape:?} is too large for 32-bit indices")));
        }
        let mut row_ptr = Vec::with_capacity(shape[0] + 1);
        let mut cols = Vec::new();
        row_ptr.push(0);
        for o in 0..shape[0] {
            for (j, &m) in mask[o * block..(o + 1) * block].iter().enumerate() {
                if m != 0.0 {
                    cols.push(j as u32);
                }
            }
            row_ptr.push(cols.len() as u32);
        }
        Ok(SparsePattern { shape, row_ptr, cols })
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.cols.len()
    }

    /// The flat index of every stored entry in the dense weight.
    pub fn flat_indices(&self) -> Vec<usize> {
        let block = self.shape[1] * self.shape[2] * self.shape[3];
        let mut out = Vec::with_capacity(self.nnz());
        for o in 0..self.shape[0] {
            for &c in &self.cols[self.row_ptr[o] as usize..self.row_ptr[o + 1] as usize] {
                out.push(o * block + c as usize);
            }
        }
        out
    }

    /// Checks the offsets and indices (an error names `op`).
    pub fn validate(&self, op: &'static str) -> Result<()> {
        let block = self.shape[1] * self.shape[2] * self.shape[3];
        let ok = self.row_ptr.len() == self.shape[0] + 1
            && self.row_ptr.first() == Some(&0)
            && self.row_ptr.windows(2).all(|w| w[0] <= w[1])
            && *self.row_ptr.last().unwrap_or(&0) as usize == self.cols.len()
            && self.cols.iter().all(|&c| (c as usize) < block)
            && self.shape.iter().all(|&d| d > 0);
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(op, format!("a malformed sparse pattern for a weight of shape {:?}", self.shape)))
        }
    }

    /// Checks a values buffer layout: contiguous `[nnz]`.
    pub fn check_values(&self, op: &'static str, lv: &Layout) -> Result<()> {
        if lv.shape() != [self.nnz()] {
            return Err(Error::invalid(
                op,
                format!("values of shape {:?} for a pattern of {} entries", lv.shape(), self.nnz()),
            ));
        }
        Ok(())
    }

    fn dense_layout(&self) -> Layout {
        Layout::contiguous(&self.shape)
    }
}

/// The dense weight of `values` (host `f64` copies) on the pattern, as a host buffer of `dtype`.
fn densify_host(pattern: &SparsePattern, values: &[f64], dtype: DType) -> Result<CpuStorage> {
    let mut dense = vec![0.0f64; pattern.shape.iter().product()];
    for (i, v) in pattern.flat_indices().into_iter().zip(values) {
        dense[i] = *v;
    }
    match dtype {
        DType::F32 => Ok(CpuStorage::F32(dense.into_iter().map(|v| v as f32).collect())),
        DType::F64 => Ok(CpuStorage::F64(dense)),
        other => Err(Error::UnsupportedDType { op: "sparse_conv2d", dtype: other }),
    }
}

fn densify<B: Backend + ?Sized>(
    b: &B,
    op: &'static str,
    values: &B::Storage,
    lv: &Layout,
    pattern: &SparsePattern,
) -> Result<B::Storage> {
    pattern.validate(op)?;
    pattern.check_values(op, lv)?;
    let host = b.to_host(values, lv)?;
    let dtype = host.dtype();
    b.from_host(&densify_host(pattern, &host.to_f64_vec(), dtype)?)
}

/// [`Backend::sparse_conv2d`] for any backend: the dense weight, then [`Backend::conv2d`].
pub fn conv2d_composite<B: Backend + ?Sized>(
    b: &B,
    x: &B::Storage,
    lx: &Layout,
    values: &B::Storage,
    lv: &Layout,
    pattern: &SparsePattern,
    p: &Conv2dParams,
) -> Result<B::Storage> {
    let w = densify(b, "sparse_conv2d", values, lv, pattern)?;
    b.conv2d(x, lx, &w, &pattern.dense_layout(), p)
}

/// [`Backend::sparse_conv2d_backward_data`] for any backend: the dense weight, then
/// [`Backend::conv2d_backward_data`].
#[allow(clippy::too_many_arguments)]
pub fn backward_data_composite<B: Backend + ?Sized>(
    b: &B,
    gy: &B::Storage,
    lgy: &Layout,
    values: &B::Storage,
    lv: &Layout,
    pattern: &SparsePattern,
    p: &Conv2dParams,
    input_hw: (usize, usize),
) -> Result<B::Storage> {
    let w = densify(b, "sparse_conv2d_backward_data", values, lv, pattern)?;
    b.conv2d_backward_data(gy, lgy, &w, &pattern.dense_layout(), p, input_hw)
}

/// [`Backend::sparse_conv2d_backward_weight`] for any backend: the dense weight gradient, then
/// its entries on the pattern.
pub fn backward_weight_composite<B: Backend + ?Sized>(
    b: &B,
    x: &B::Storage,
    lx: &Layout,
    gy: &B::Storage,
    lgy: &Layout,
    pattern: &SparsePattern,
    p: &Conv2dParams,
) -> Result<B::Storage> {
    pattern.validate("sparse_conv2d_backward_weight")?;
    let dense = b.conv2d_backward_weight(x, lx, gy, lgy, p, (pattern.shape[2], pattern.shape[3]))?;
    let host = b.to_host(&dense, &pattern.dense_layout())?;
    let all = host.to_f64_vec();
    let picked: Vec<f64> = pattern.flat_indices().into_iter().map(|i| all[i]).collect();
    b.from_host(&match host.dtype() {
        DType::F32 => CpuStorage::F32(picked.into_iter().map(|v| v as f32).collect()),
        DType::F64 => CpuStorage::F64(picked),
        other => return Err(Error::UnsupportedDType { op: "sparse_conv2d_backward_weight", dtype: other }),
    })
}

/// Runs `$body` with the backend `$b` of two operands and their buffers `$s`, `$t`, or a
/// device-mismatch error naming `$op`.
macro_rules! on_backend {
    ($op:expr, $first:expr, $second:expr, |$b:ident, $s:ident, $t:ident| $body:expr) => {
        match ($first, $second) {
            (Storage::Cpu($s), Storage::Cpu($t)) => {
                crate::cpu::memory::retain_freed_memory();
                let $b = CpuBackend;
                $body.map(Storage::Cpu)
            }
            #[cfg(feature = "cuda")]
            (Storage::Cuda($s), Storage::Cuda($t)) if $s.device() == $t.device() => {
                let $b = crate::cuda::CudaBackend::for_storage($s)?;
                $body.map(Storage::Cuda)
            }
            #[allow(unreachable_patterns)]
            (a, b) => Err(Error::DeviceMismatch { op: $op, lhs: a.device(), rhs: b.device() }),
        }
    };
}

impl Storage {
    /// See [`Backend::sparse_conv2d`]; `self` is the input.
    pub fn sparse_conv2d(
        &self,
        lx: &Layout,
        values: &Storage,
        lv: &Layout,
        pattern: &SparsePattern,
        p: &Conv2dParams,
    ) -> Result<Storage> {
        on_backend!("sparse_conv2d", self, values, |b, x, v| b.sparse_conv2d(x, lx, v, lv, pattern, p))
    }

    /// See [`Backend::sparse_conv2d_backward_data`]; `self` is the output gradient.
    pub fn sparse_conv2d_backward_data(
        &self,
        lgy: &Layout,
        values: &Storage,
        lv: &Layout,
        pattern: &SparsePattern,
        p: &Conv2dParams,
        input_hw: (usize, usize),
    ) -> Result<Storage> {
        on_backend!("sparse_conv2d_backward_data", self, values, |b, g, v| {
            b.sparse_conv2d_backward_data(g, lgy, v, lv, pattern, p, input_hw)
        })
    }

    /// See [`Backend::sparse_conv2d_backward_weight`]; `self` is the input.
    pub fn sparse_conv2d_backward_weight(
        &self,
        lx: &Layout,
        gy: &Storage,
        lgy: &Layout,
        pattern: &SparsePattern,
        p: &Conv2dParams,
    ) -> Result<Storage> {
        on_backend!("sparse_conv2d_backward_weight", self, gy, |b, x, g| {
            b.sparse_conv2d_backward_weight(x, lx, g, lgy, pattern, p)
        })
    }
}
