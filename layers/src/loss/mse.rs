//! Mean squared error (`torch.nn.functional.mse_loss`).

use autograd::{Error, Result, Tensor};

use super::Reduction;

/// `(input − target)²` per element, reduced. Shapes must be equal (no silent broadcasting, as a
/// `[N]` vs `[N, 1]` mix-up would otherwise compute an `[N, N]` loss).
///
/// ```
/// use layers::loss::{mse_loss, Reduction};
/// use autograd::Tensor;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
/// let y = Tensor::from_vec(vec![0.0f32, 4.0], &[2]).unwrap();
/// assert_eq!(mse_loss(&x, &y, Reduction::Mean).unwrap().item().unwrap(), 2.5);
/// ```
pub fn mse_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    if input.shape() != target.shape() {
        return Err(Error::shape("mse_loss", input.shape(), target.shape()));
    }
    reduction.apply(input.sub(target)?.square()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_and_shape_errors() {
        let x = Tensor::from_vec(vec![1.0f64, -2.0, 0.5, 3.0], &[2, 2]).unwrap();
        let y = Tensor::from_vec(vec![0.0f64, 1.0, 0.5, -1.0], &[2, 2]).unwrap();
        assert_eq!(mse_loss(&x, &y, Reduction::None).unwrap().to_vec::<f64>().unwrap(), vec![1.0, 9.0, 0.0, 16.0]);
        assert_eq!(mse_loss(&x, &y, Reduction::Sum).unwrap().item().unwrap(), 26.0);
        assert_eq!(mse_loss(&x, &y, Reduction::Mean).unwrap().item().unwrap(), 6.5);
        let e = mse_loss(&x, &y.reshape_to(&[4]).unwrap(), Reduction::Mean).unwrap_err().to_string();
        assert!(e.contains("mse_loss") && e.contains("[2, 2]") && e.contains("[4]"), "{e}");
    }
}
