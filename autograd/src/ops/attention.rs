//! Multi-head self-attention on a packed `qkv` tensor as one recorded op,
//! [`Tensor::packed_self_attention`].
//!
//! Splitting `qkv` into queries, keys and values with three views would give `qkv` three
//! gradients, each padded with zeros to the full size and then summed; this op returns the one
//! gradient of `qkv` directly and yields the heads already merged (`[B, N, C]`). At first order
//! the gradient is the backend's fused
//! [`packed_attention_backward`](backends::Fused::packed_attention_backward) (on the CPU one head
//! at a time in cache, written straight into `qkv`'s layout); under `create_graph` it is built
//! from differentiable ops.

use crate::graph::record_fn;
use crate::{is_grad_enabled, Error, Result, Tensor};
use backends::Layout;

/// Sizes of a packed attention input: batch, tokens, heads, head width.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    n: usize,
    h: usize,
    d: usize,
}

impl Dims {
    /// Queries, keys and values (`[B, H, N, D]` views) of `qkv` laid out as `[B, N, 3, H, D]`.
    fn split(&self, qkv: &Tensor) -> Result<[Tensor; 3]> {
        let t = qkv.reshape_to(&[self.b, self.n, 3, self.h, self.d])?.permute(&[2, 0, 3, 1, 4])?;
        Ok([t.select(0, 0)?, t.select(0, 1)?, t.select(0, 2)?])
    }
}

/// `softmax(q kᵀ · scale)` over the last axis.
fn probabilities(q: &Tensor, k: &Tensor, scale: f64) -> Result<Tensor> {
    q.matmul(&k.transpose(2, 3)?)?.mul_scalar(scale)?.softmax(3)
}

impl Tensor {
    /// Multi-head self-attention (timm's layout) on `qkv` `[B, N, 3C]` whose features are laid out
    /// as `[3, heads, C / heads]` (queries, keys, values): each head computes
    /// `softmax(q kᵀ · scale) v`, and the heads come back concatenated as `[B, N, C]`. The same
    /// values as splitting `qkv` and calling scaled dot-product attention per head, recorded as one
    /// op with one gradient for `qkv`. Differentiable to any order.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let qkv = Tensor::randn(&[2, 5, 12], 0).unwrap();
    /// let y = qkv.packed_self_attention(2, 0.5).unwrap();
    /// assert_eq!(y.shape(), &[2, 5, 4]);
    /// ```
    pub fn packed_self_attention(&self, num_heads: usize, scale: f64) -> Result<Tensor> {
        const OP: &str = "packed_self_attention";
        let s = self.shape();
        if s.len() != 3 || num_heads == 0 || !s[2].is_multiple_of(3 * num_heads) || s[2] == 0 {
            return Err(Error::invalid(
                OP,
                format!("expected qkv [B, N, 3 * heads * D] with {num_heads} heads, got {:?}", s),
            ));
        }
        let dims = Dims { b: s[0], n: s[1], h: num_heads, d: s[2] / (3 * num_heads) };
        // The backend's one-pass kernel (on the CPU one head at a time in cache): the merged
        // heads and the probabilities the backward pass reuses.
        let (y, p) = crate::profile::forward(OP, self.device(), || {
            self.storage().packed_attention(self.layout(), num_heads, scale)
        })?;
        let y = Tensor::from_storage(y, Layout::contiguous(&[dims.b, dims.n, dims.h * dims.d]));
        let p = Tensor::from_storage(p, Layout::contiguous(&[dims.b, dims.h, dims.n, dims.n]));
        let x = self.clone();
        Ok(record_fn(y, OP, &[self], move || {
            move |g: &Tensor| {
                if !is_grad_enabled() {
                    // First order: the backend's one-pass kernel (per head, in cache).
                    let s = x.storage().packed_attention_backward(
                        x.layout(),
                        &p.storage(),
                        p.layout(),
                        &g.storage(),
                        g.layout(),
                        dims.h,
                        scale,
                    )?;
                    return Ok(vec![Some(Tensor::from_storage(s, Layout::contiguous(x.shape())))]);
                }
                // Under create_graph: differentiable ops, the probabilities recomputed so that
                // they carry a graph.
                let [q, k, v] = dims.split(&x)?;
                let p = probabilities(&q, &k, scale)?;
                let go = g.reshape_to(&[dims.b, dims.n, dims.h, dims.d])?.transpose(1, 2)?;
                let gv = p.transpose(2, 3)?.matmul(&go)?;
                let gp = go.matmul(&v.transpose(2, 3)?)?;
                let gs = p.mul(&gp.sub(&gp.mul(&p)?.sum(&[3], true)?)?)?.mul_scalar(scale)?;
                let gq = gs.matmul(&k)?;
                let gk = gs.transpose(2, 3)?.matmul(&q)?;
                // [B, H, N, D] each -> [B, N, 1, H, D], concatenated as qkv's [B, N, 3, H, D].
                let part = |t: &Tensor| t.transpose(1, 2)?.unsqueeze(2);
                let gx = Tensor::cat(&[&part(&gq)?, &part(&gk)?, &part(&gv)?], 2)?;
                Ok(vec![Some(gx.reshape_to(x.shape())?)])
            }
        }))
    }
}
