//! The parameter of the sparse convolutions ([`crate::Fused::sparse_conv2d`] and its
//! gradients): which entries of a convolution weight are stored.

use crate::{Error, Layout, Result};

/// The non-zero coordinates of a convolution weight `[O, C/groups, kH, kW]` in compressed sparse
/// rows: the entries of output channel `o` are `row_ptr[o]..row_ptr[o + 1]`, each a flat index
/// into the channel's `[C/groups, kH, kW]` block, increasing within a row.
///
/// ```
/// use backends::ops::SparsePattern;
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

    /// The dense weight's contiguous layout.
    pub(crate) fn dense_layout(&self) -> Layout {
        Layout::contiguous(&self.shape)
    }
}
