//! The linear-layer op, [`Tensor::linear`]: `x Wᵀ + b` as one product whose output starts from
//! the bias.

use backends::Layout;

use super::batch_norm::check_like;
use crate::graph::record_fn;
use crate::{Error, Result, Tensor};

/// Checks `x` `[..., in]`, `weight` `[out, in]` and `bias` `[out]` (dtypes and devices alike);
/// returns `(in, out)`.
fn check(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<(usize, usize)> {
    const OP: &str = "linear";
    let (sx, sw) = (x.shape(), weight.shape());
    if sx.is_empty() || sw.len() != 2 || sx[sx.len() - 1] != sw[1] {
        return Err(Error::invalid(OP, format!("input {sx:?} and weight {sw:?} are not [..., in] and [out, in]")));
    }
    check_like(OP, x, weight)?;
    if let Some(b) = bias {
        if b.shape() != [sw[0]] {
            return Err(Error::invalid(OP, format!("bias {:?} for a weight {sw:?} must be [{}]", b.shape(), sw[0])));
        }
        check_like(OP, x, b)?;
    }
    Ok((sw[1], sw[0]))
}

impl Tensor {
    /// `x Wᵀ + b` over the last axis (`torch.nn.functional.linear`): `self` `[..., in]`,
    /// `weight` `[out, in]`, an optional `bias` `[out]`; the result is `[..., out]`. All rows
    /// form one product, and with a bias the backend's fused
    /// [`matmul_bias`](backends::Fused::matmul_bias) adds it as the product's output is formed
    /// (on the CPU, as each panel of the output is started, in cache) rather than in a pass of
    /// its own. Differentiable in all three, to any order: `gx = g W`, `gW = gᵀ x` and
    /// `gb = Σ_rows g`.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2]).unwrap();
    /// let w = Tensor::from_vec(vec![1.0f32, 1.0, 0.0, 3.0], &[2, 2]).unwrap();
    /// let b = Tensor::from_vec(vec![0.5f32, -1.0], &[2]).unwrap();
    /// assert_eq!(x.linear(&w, Some(&b)).unwrap().to_vec::<f32>().unwrap(), vec![3.5, 5.0]);
    /// ```
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        const OP: &str = "linear";
        let (fin, fout) = check(self, weight, bias)?;
        let Some(bias) = bias else {
            return self.matmul(&weight.t()?);
        };
        let lead = &self.shape()[..self.ndim() - 1];
        let rows: usize = lead.iter().product();
        let x = self.reshape_to(&[rows, fin])?;
        let wt = weight.layout().transpose(0, 1)?;
        let y = crate::profile::forward(OP, self.device(), || {
            x.storage().matmul_bias(x.layout(), &weight.storage(), &wt, &bias.storage(), bias.layout())
        })?;
        let y = Tensor::from_storage(y, Layout::contiguous(&[rows, fout]));
        let (need_x, need_w, need_b) = (x.requires_grad(), weight.requires_grad(), bias.requires_grad());
        let (xs, w) = (x.clone(), weight.clone());
        let y = record_fn(y, OP, &[&x, weight, bias], move || {
            move |g: &Tensor| {
                let gx = if need_x { Some(g.matmul(&w)?) } else { None };
                let gw = if need_w { Some(g.t()?.matmul(&xs)?) } else { None };
                let gb = if need_b { Some(g.sum(&[0], false)?) } else { None };
                Ok(vec![gx, gw, gb])
            }
        });
        let mut out_shape = lead.to_vec();
        out_shape.push(fout);
        y.reshape_to(&out_shape)
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    /// The naive loops `y[r, o] = Σ_i x[r, i] w[o, i] + b[o]` over the rows of `x`.
    fn naive(x: &[f64], w: &[f64], b: Option<&[f64]>, fin: usize, fout: usize) -> Vec<f64> {
        let rows = x.len() / fin;
        let mut y = vec![0.0; rows * fout];
        for r in 0..rows {
            for o in 0..fout {
                let dot: f64 = (0..fin).map(|i| x[r * fin + i] * w[o * fin + i]).sum();
                y[r * fout + o] = dot + b.map_or(0.0, |b| b[o]);
            }
        }
        y
    }

    #[test]
    fn forward_matches_naive_loops_in_f32_and_f64() {
        for (lead, fin, fout) in
            [(vec![5usize], 3usize, 4usize), (vec![2, 3], 7, 1), (vec![], 6, 9), (vec![4, 65], 40, 33)]
        {
            let mut xs = lead.clone();
            xs.push(fin);
            let x = Tensor::randn(&xs, 1).unwrap().to_dtype(DType::F64).unwrap();
            let w = Tensor::randn(&[fout, fin], 2).unwrap().to_dtype(DType::F64).unwrap();
            let b = Tensor::randn(&[fout], 3).unwrap().to_dtype(DType::F64).unwrap();
            let (xv, wv, bv) = (x.to_vec::<f64>().unwrap(), w.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
            let mut ys = lead.clone();
            ys.push(fout);
            for bias in [None, Some(&b)] {
                let want = naive(&xv, &wv, bias.map(|_| bv.as_slice()), fin, fout);
                let y = x.linear(&w, bias).unwrap();
                assert_eq!(y.shape(), ys.as_slice());
                let got = y.to_vec::<f64>().unwrap();
                assert!(
                    got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-12),
                    "f64 {xs:?} bias {}",
                    bias.is_some()
                );
                let to32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
                let got32 = to32(&x).linear(&to32(&w), bias.map(to32).as_ref()).unwrap().to_vec::<f32>().unwrap();
                assert!(
                    got32
                        .iter()
                        .zip(&want)
                        .all(|(g, w)| (f64::from(*g) - w).abs() < 1e-5 * (1.0 + (fin as f64).sqrt())),
                    "f32 {xs:?} bias {}",
                    bias.is_some()
                );
            }
        }
    }

    #[test]
    fn bad_operands_are_errors_naming_the_op() {
        let x = Tensor::zeros(&[2, 3]);
        let w = Tensor::zeros(&[4, 3]);
        let msg = |r: crate::Result<Tensor>| r.unwrap_err().to_string();
        assert!(msg(x.linear(&w.t().unwrap(), None)).contains("linear: input [2, 3] and weight [3, 4]"));
        assert!(msg(x.linear(&w, Some(&Tensor::zeros(&[3])))).contains("bias [3] for a weight [4, 3] must be [4]"));
        assert!(msg(x.linear(&w, Some(&Tensor::zeros(&[4]).to_dtype(DType::F64).unwrap()))).starts_with("linear"));
        let scalar = Tensor::zeros(&[]);
        assert!(msg(scalar.linear(&w, None)).starts_with("linear"));
    }
}
