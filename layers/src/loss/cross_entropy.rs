//! Cross-entropy over logits and negative log-likelihood over log-probabilities, both with
//! class-index targets (`torch.nn.functional.cross_entropy` / `nll_loss`).

use autograd::{Error, Result, Tensor};

use super::Reduction;

/// Options of [`cross_entropy`]: PyTorch's `label_smoothing` and `reduction`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CrossEntropyOptions {
    /// Amount `ε` in `[0, 1]` of probability mass spread uniformly over the `C` classes: the
    /// target becomes `(1 − ε)·onehot + ε/C`.
    pub label_smoothing: f64,
    /// How the per-sample losses are combined.
    pub reduction: Reduction,
}

impl CrossEntropyOptions {
    /// With label smoothing `eps`.
    pub fn label_smoothing(mut self, eps: f64) -> Self {
        self.label_smoothing = eps;
        self
    }

    /// With the given reduction.
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }
}

/// Checks `[N, C, d...]` scores against `[N, d...]` integer targets; returns the targets with a
/// class axis of size 1 inserted (`[N, 1, d...]`), ready for `gather`.
fn class_targets(op: &'static str, scores: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let s = scores.shape();
    let fits = s.len() >= 2
        && s[1] > 0
        && targets.ndim() + 1 == s.len()
        && targets.shape()[0] == s[0]
        && targets.shape()[1..] == s[2..];
    if !fits {
        return Err(Error::invalid(
            op,
            format!(
                "expected scores [N, C, ...] with C > 0 and class-index targets [N, ...], got {s:?} and {:?}",
                targets.shape()
            ),
        ));
    }
    if targets.dtype().is_float() || !scores.dtype().is_float() {
        return Err(Error::invalid(
            op,
            format!("expected float scores and integer (i64) targets, got {} and {}", scores.dtype(), targets.dtype()),
        ));
    }
    targets.unsqueeze(1)
}

/// `−log_probs[n, target[n], ...]` per sample, with the class-range error named after `op`.
fn picked_nll(op: &'static str, log_probs: &Tensor, idx: &Tensor) -> Result<Tensor> {
    let picked = log_probs.gather(1, idx).map_err(|e| Error::invalid(op, format!("bad targets: {e}")))?;
    picked.squeeze(1)?.neg()
}

/// Cross-entropy between logits `[N, C]` (or `[N, C, d...]`) and class indices `[N]` (or
/// `[N, d...]`, i64), computed stably through `log_softmax`. With label smoothing `ε` the loss of
/// a sample is `(1 − ε)·(−log p_target) + ε/C · Σ_c (−log p_c)`, exactly as PyTorch's
/// `label_smoothing`.
///
/// ```
/// use layers::loss::{cross_entropy, CrossEntropyOptions};
/// use autograd::Tensor;
/// let logits = Tensor::from_vec(vec![2.0f32, 0.0, 0.0, 0.0, 0.0, 0.0], &[2, 3]).unwrap();
/// let targets = Tensor::from_vec(vec![0i64, 2], &[2]).unwrap();
/// let loss = cross_entropy(&logits, &targets, CrossEntropyOptions::default()).unwrap();
/// let e2 = 2f64.exp();
/// let expect = (-(e2 / (e2 + 2.0)).ln() + 3f64.ln()) / 2.0;
/// assert!((loss.item().unwrap() - expect).abs() < 1e-6);
/// ```
pub fn cross_entropy(logits: &Tensor, targets: &Tensor, opts: CrossEntropyOptions) -> Result<Tensor> {
    const OP: &str = "cross_entropy";
    let idx = class_targets(OP, logits, targets)?;
    let eps = opts.label_smoothing;
    if !(0.0..=1.0).contains(&eps) {
        return Err(Error::invalid(OP, format!("label_smoothing {eps} is outside [0, 1]")));
    }
    let log_probs = logits.log_softmax(1)?;
    let nll = picked_nll(OP, &log_probs, &idx)?;
    let per_sample = if eps == 0.0 {
        nll
    } else {
        let uniform = log_probs.mean(&[1], false)?.neg()?;
        nll.mul_scalar(1.0 - eps)?.add(&uniform.mul_scalar(eps)?)?
    };
    opts.reduction.apply(per_sample)
}

/// Cross-entropy between logits `[N, C, ...]` and class probabilities of the same shape (soft
/// targets, as mixup and cutmix make them): `Σ_c −t_c · log p_c` per sample, with the targets
/// first smoothed to `(1 − ε)·t + ε/C` — PyTorch's `cross_entropy` with probability targets.
///
/// ```
/// use layers::loss::{cross_entropy, cross_entropy_soft, CrossEntropyOptions};
/// use autograd::Tensor;
/// let logits = Tensor::from_vec(vec![1.0f64, -0.5, 2.0], &[1, 3]).unwrap();
/// let onehot = Tensor::from_vec(vec![0.0f64, 0.0, 1.0], &[1, 3]).unwrap();
/// let opts = CrossEntropyOptions::default().label_smoothing(0.1);
/// let soft = cross_entropy_soft(&logits, &onehot, opts).unwrap().item().unwrap();
/// let hard = cross_entropy(&logits, &Tensor::from_vec(vec![2i64], &[1]).unwrap(), opts).unwrap().item().unwrap();
/// assert!((soft - hard).abs() < 1e-12);
/// ```
pub fn cross_entropy_soft(logits: &Tensor, targets: &Tensor, opts: CrossEntropyOptions) -> Result<Tensor> {
    const OP: &str = "cross_entropy_soft";
    let s = logits.shape();
    if s.len() < 2 || targets.shape() != s || !logits.dtype().is_float() || targets.dtype() != logits.dtype() {
        return Err(Error::invalid(
            OP,
            format!(
                "expected logits [N, C, ...] and probabilities of the same shape and dtype, got {s:?} {} and {:?} {}",
                logits.dtype(),
                targets.shape(),
                targets.dtype()
            ),
        ));
    }
    let eps = opts.label_smoothing;
    if !(0.0..=1.0).contains(&eps) {
        return Err(Error::invalid(OP, format!("label_smoothing {eps} is outside [0, 1]")));
    }
    let t = if eps == 0.0 { targets.clone() } else { targets.mul_scalar(1.0 - eps)?.add_scalar(eps / s[1] as f64)? };
    let per_sample = logits.log_softmax(1)?.mul(&t)?.sum(&[1], false)?.neg()?;
    opts.reduction.apply(per_sample)
}

/// Negative log-likelihood of class indices `[N]` (or `[N, d...]`, i64) under log-probabilities
/// `[N, C]` (or `[N, C, d...]`): `−log_probs[n, target[n]]`, reduced.
///
/// ```
/// use layers::loss::{nll_loss, Reduction};
/// use autograd::Tensor;
/// let lp = Tensor::from_vec(vec![-0.1f32, -2.0, -3.0, -0.5], &[2, 2]).unwrap();
/// let t = Tensor::from_vec(vec![1i64, 0], &[2]).unwrap();
/// assert_eq!(nll_loss(&lp, &t, Reduction::Sum).unwrap().item().unwrap(), 5.0);
/// ```
pub fn nll_loss(log_probs: &Tensor, targets: &Tensor, reduction: Reduction) -> Result<Tensor> {
    const OP: &str = "nll_loss";
    let idx = class_targets(OP, log_probs, targets)?;
    reduction.apply(picked_nll(OP, log_probs, &idx)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Tensor {
        Tensor::from_vec(vec![1.0f64, -2.0, 0.5, 3.0, 0.0, -1.0], &[2, 3]).unwrap()
    }

    /// Naive `−log softmax(x)[c]` for one row.
    fn neg_log_p(row: &[f64], c: usize) -> f64 {
        let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
        lse - row[c]
    }

    #[test]
    fn matches_a_naive_loop_with_and_without_smoothing() {
        let t = Tensor::from_vec(vec![2i64, 0], &[2]).unwrap();
        let rows = [[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]];
        for eps in [0.0, 0.1, 1.0] {
            let per: Vec<f64> = rows
                .iter()
                .zip([2usize, 0])
                .map(|(r, c)| (1.0 - eps) * neg_log_p(r, c) + eps / 3.0 * (0..3).map(|k| neg_log_p(r, k)).sum::<f64>())
                .collect();
            let opts = CrossEntropyOptions::default().label_smoothing(eps);
            let none = cross_entropy(&logits(), &t, opts.reduction(Reduction::None)).unwrap().to_f64_vec().unwrap();
            let sum = cross_entropy(&logits(), &t, opts.reduction(Reduction::Sum)).unwrap().item().unwrap();
            let mean = cross_entropy(&logits(), &t, opts).unwrap().item().unwrap();
            for (a, b) in none.iter().zip(&per) {
                assert!((a - b).abs() < 1e-12, "eps {eps}: {a} vs {b}");
            }
            assert!((sum - per.iter().sum::<f64>()).abs() < 1e-12);
            assert!((mean - per.iter().sum::<f64>() / 2.0).abs() < 1e-12);
        }
    }

    #[test]
    fn huge_logits_stay_finite() {
        let x = Tensor::from_vec(vec![1000.0f32, -1000.0, 0.0, 800.0], &[2, 2]).unwrap();
        let t = Tensor::from_vec(vec![1i64, 0], &[2]).unwrap();
        let l = cross_entropy(&x, &t, CrossEntropyOptions::default().reduction(Reduction::None)).unwrap();
        assert_eq!(l.to_vec::<f32>().unwrap(), vec![2000.0, 800.0]);
    }

    #[test]
    fn spatial_targets_match_the_flattened_loss() {
        // [N=1, C=3, L=2] against the same scores as two rows of [2, 3].
        let x = logits().reshape_to(&[2, 3]).unwrap().t().unwrap().unsqueeze(0).unwrap();
        let t = Tensor::from_vec(vec![2i64, 0], &[1, 2]).unwrap();
        let spatial = cross_entropy(&x, &t, CrossEntropyOptions::default()).unwrap().item().unwrap();
        let flat = cross_entropy(&logits(), &t.reshape_to(&[2]).unwrap(), CrossEntropyOptions::default()).unwrap();
        assert!((spatial - flat.item().unwrap()).abs() < 1e-12);
    }

    #[test]
    fn bad_inputs_are_errors_naming_the_loss() {
        let x = logits();
        let cases = [
            (Tensor::from_vec(vec![0i64, 1, 2], &[3]).unwrap(), "[2, 3]"),
            (Tensor::from_vec(vec![0.0f64, 1.0], &[2]).unwrap(), "f64"),
            (Tensor::from_vec(vec![0i64, 3], &[2]).unwrap(), "bad targets"),
            (Tensor::from_vec(vec![0i64, -1], &[2]).unwrap(), "bad targets"),
        ];
        for (t, needle) in cases {
            let e = cross_entropy(&x, &t, CrossEntropyOptions::default()).unwrap_err().to_string();
            assert!(e.contains("cross_entropy") && e.contains(needle), "{e}");
        }
        let t = Tensor::from_vec(vec![0i64, 1], &[2]).unwrap();
        let e = cross_entropy(&x, &t, CrossEntropyOptions::default().label_smoothing(1.5)).unwrap_err();
        assert!(e.to_string().contains("label_smoothing"));
        let e = nll_loss(&x.reshape_to(&[6]).unwrap(), &t, Reduction::Mean).unwrap_err();
        assert!(e.to_string().contains("nll_loss"), "{e}");
    }
}
