//! Matrix products with NumPy/PyTorch semantics (1-D operands, broadcast batch dims).

use crate::graph::record_fn;
use crate::{Error, Result, Tensor};
use backends::{broadcast_shapes, Layout};

impl Tensor {
    /// Matrix product as `torch.matmul`: 1-D operands are promoted (and the added dim removed),
    /// batch dimensions broadcast. Differentiable in both operands.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        if self.ndim() == 0 || other.ndim() == 0 {
            return Err(Error::shape("matmul", self.shape(), other.shape()));
        }
        if self.ndim() == 1 {
            return self.unsqueeze(0)?.matmul(other)?.squeeze_matmul(if other.ndim() == 1 {
                0
            } else {
                other.ndim() - 2
            });
        }
        if other.ndim() == 1 {
            let out = self.matmul(&other.unsqueeze(1)?)?;
            let last = out.ndim() - 1;
            return out.squeeze(last);
        }
        self.matmul_nd(other)
    }

    fn squeeze_matmul(&self, axis: usize) -> Result<Tensor> {
        self.squeeze(axis)
    }

    fn matmul_nd(&self, other: &Tensor) -> Result<Tensor> {
        if self.dtype() != other.dtype() {
            return Err(Error::DTypeMismatch { op: "matmul", lhs: self.dtype(), rhs: other.dtype() });
        }
        if self.device() != other.device() {
            return Err(Error::DeviceMismatch { op: "matmul", lhs: self.device(), rhs: other.device() });
        }
        let (sa, sb) = (self.shape(), other.shape());
        let (na, nb) = (sa.len(), sb.len());
        if sa[na - 1] != sb[nb - 2] {
            return Err(Error::shape("matmul", sa, sb));
        }
        if na > 2 && nb == 2 {
            // A batch of rows times one matrix (a linear layer): fold the batch into the rows so
            // that the product, and both gradients, are single large GEMMs. Without this the
            // weight gradient would be a batch of small products summed afterwards.
            let rows = sa[..na - 1].iter().product();
            let y = self.reshape_to(&[rows, sa[na - 1]])?.matmul_nd(other)?;
            let mut out_shape = sa[..na - 1].to_vec();
            out_shape.push(sb[1]);
            return y.reshape_to(&out_shape);
        }
        let batch =
            broadcast_shapes("matmul", &sa[..na - 2], &sb[..nb - 2]).map_err(|_| Error::shape("matmul", sa, sb))?;
        let mut ta = batch.clone();
        ta.extend_from_slice(&sa[na - 2..]);
        let mut tb = batch.clone();
        tb.extend_from_slice(&sb[nb - 2..]);
        let la = self.layout().broadcast_to(&ta)?;
        let lb = other.layout().broadcast_to(&tb)?;
        let s = crate::profile::forward("matmul", self.device(), || self.storage().matmul(&la, &other.storage(), &lb))?;
        let mut out_shape = batch;
        out_shape.extend([sa[na - 2], sb[nb - 1]]);
        let y = Tensor::from_storage(s, Layout::contiguous(&out_shape));
        let (a, b) = (self.clone(), other.clone());
        let (need_a, need_b) = (self.requires_grad(), other.requires_grad());
        Ok(record_fn(y, "matmul", &[self, other], move || {
            move |g: &Tensor| {
                let ga = if need_a {
                    Some(g.matmul_nd(&b.transpose(b.ndim() - 2, b.ndim() - 1)?)?.sum_to(a.shape())?)
                } else {
                    None
                };
                let gb = if need_b {
                    Some(a.transpose(a.ndim() - 2, a.ndim() - 1)?.matmul_nd(g)?.sum_to(b.shape())?)
                } else {
                    None
                };
                Ok(vec![ga, gb])
            }
        }))
    }
}
