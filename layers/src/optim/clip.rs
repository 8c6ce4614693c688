//! Gradient clipping by global norm (`torch.nn.utils.clip_grad_norm_`).

use autograd::{no_grad, Error, Result};

use crate::Param;

/// Scales the gradients of `params` so that their global L2 norm is at most `max_norm`, and
/// returns the norm before clipping. As PyTorch: the scale is `max_norm / (norm + 1e-6)` when
/// that is below 1 (otherwise the gradients are left alone); parameters without a gradient are
/// ignored. A non-finite norm is returned as is: a NaN norm leaves the gradients alone, an
/// infinite one zeroes them (check the returned norm to skip such steps).
///
/// ```
/// use layers::{optim::clip_grad_norm, Param};
/// use autograd::Tensor;
/// let p = Param::new(Tensor::zeros(&[2]));
/// p.leaf().set_grad(Some(Tensor::from_vec(vec![3.0f32, 4.0], &[2]).unwrap())).unwrap();
/// let norm = clip_grad_norm(&[p.clone()], 1.0).unwrap();
/// assert!((norm - 5.0).abs() < 1e-6);
/// let g = p.grad().unwrap().to_vec::<f32>().unwrap();
/// assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
/// ```
pub fn clip_grad_norm(params: &[Param], max_norm: f64) -> Result<f64> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(Error::invalid("clip_grad_norm", format!("max_norm {max_norm} must be >= 0")));
    }
    no_grad(|| {
        let grads: Vec<_> = params.iter().filter_map(|p| p.grad().map(|g| (p.leaf(), g))).collect();
        let mut total = 0.0;
        for (_, g) in &grads {
            total += g.square()?.sum_all()?.item()?;
        }
        let norm = total.sqrt();
        let coef = max_norm / (norm + 1e-6);
        if coef.is_nan() || coef >= 1.0 {
            return Ok(norm);
        }
        for (leaf, g) in grads {
            leaf.set_grad(Some(g.mul_scalar(coef)?))?;
        }
        Ok(norm)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::Tensor;

    #[test]
    fn clips_to_the_global_norm_and_ignores_gradless_params() {
        let vals = [vec![1.0f64, -2.0, 2.0], vec![4.0, 0.0]];
        let ps: Vec<Param> = vals
            .iter()
            .map(|v| Param::new(Tensor::zeros(&[v.len()]).to_dtype(autograd::DType::F64).unwrap()))
            .collect();
        for (p, v) in ps.iter().zip(&vals) {
            p.leaf().set_grad(Some(Tensor::from_slice(v, &[v.len()]).unwrap())).unwrap();
        }
        let none = Param::new(Tensor::zeros(&[4]));
        let all = [ps[0].clone(), ps[1].clone(), none.clone()];
        // norm = √(1 + 4 + 4 + 16) = 5
        assert_eq!(clip_grad_norm(&all, 10.0).unwrap(), 5.0);
        assert_eq!(ps[1].grad().unwrap().to_vec::<f64>().unwrap(), vec![4.0, 0.0], "under the limit: unchanged");
        assert_eq!(clip_grad_norm(&all, 2.0).unwrap(), 5.0);
        let coef = 2.0 / (5.0 + 1e-6);
        for (p, v) in ps.iter().zip(&vals) {
            let g = p.grad().unwrap().to_vec::<f64>().unwrap();
            assert!(g.iter().zip(v).all(|(a, b)| (a - b * coef).abs() < 1e-15), "{g:?}");
        }
        assert!(none.grad().is_none());
        assert!((clip_grad_norm(&all, 2.0).unwrap() - 5.0 * coef).abs() < 1e-12);
        assert!(clip_grad_norm(&all, -1.0).is_err());
    }
}
