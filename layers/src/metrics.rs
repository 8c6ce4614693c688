//! Classification metrics over a batch: how many samples have their target among the top-k
//! scores.

use autograd::{Error, Result, Tensor};

/// For each `k` in `ks`, the number of rows of `logits` (`[N, C]`) whose target class (`[N]`,
/// integer) is among the `k` highest scores. `k` larger than `C` counts every row (as timm's
/// `accuracy`). Ties go to the lower class index.
///
/// ```
/// use layers::metrics::topk_correct;
/// use autograd::Tensor;
/// let logits = Tensor::from_vec(vec![0.1f32, 0.7, 0.2, 0.5, 0.3, 0.2], &[2, 3]).unwrap();
/// let targets = Tensor::from_vec(vec![1i64, 2], &[2]).unwrap();
/// assert_eq!(topk_correct(&logits, &targets, &[1, 2, 5]).unwrap(), vec![1, 1, 2]);
/// ```
pub fn topk_correct(logits: &Tensor, targets: &Tensor, ks: &[usize]) -> Result<Vec<usize>> {
    const OP: &str = "topk_correct";
    let s = logits.shape();
    if s.len() != 2 || targets.shape() != [s[0]] || targets.dtype().is_float() {
        return Err(Error::invalid(
            OP,
            format!("expected logits [N, C] and integer targets [N], got {s:?} and {:?}", targets.shape()),
        ));
    }
    let (n, c) = (s[0], s[1]);
    let kmax = ks.iter().copied().max().unwrap_or(0).min(c);
    let (_, idx) = autograd::no_grad(|| logits.detach().topk(kmax, 1, true))?;
    let idx = idx.to_vec::<i64>()?;
    let tgt = targets.to_dtype(autograd::DType::I64)?.to_vec::<i64>()?;
    if let Some(bad) = tgt.iter().find(|&&t| t < 0 || t as usize >= c) {
        return Err(Error::invalid(OP, format!("target {bad} is not a class of logits {s:?}")));
    }
    // rank[i]: position of the target among the sorted top-kmax (kmax when absent).
    let rank: Vec<usize> =
        (0..n).map(|i| idx[i * kmax..(i + 1) * kmax].iter().position(|&j| j == tgt[i]).unwrap_or(kmax)).collect();
    Ok(ks.iter().map(|&k| rank.iter().filter(|&&r| r < k).count()).collect())
}

/// Top-1 correct count (`topk_correct(.., &[1])[0]`).
pub fn top1_correct(logits: &Tensor, targets: &Tensor) -> Result<usize> {
    Ok(topk_correct(logits, targets, &[1])?[0])
}

/// Top-5 correct count (every row when there are at most 5 classes).
pub fn top5_correct(logits: &Tensor, targets: &Tensor) -> Result<usize> {
    Ok(topk_correct(logits, targets, &[5])?[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_against_a_naive_ranking() {
        let (n, c) = (40, 7);
        let logits = Tensor::randn(&[n, c], 3).unwrap();
        let targets: Vec<i64> = (0..n).map(|i| (i * 5 % c) as i64).collect();
        let t = Tensor::from_vec(targets.clone(), &[n]).unwrap();
        let v = logits.to_vec::<f32>().unwrap();
        let got = topk_correct(&logits, &t, &[1, 3, 5, 7, 9]).unwrap();
        for (ki, k) in [1usize, 3, 5, 7, 9].into_iter().enumerate() {
            let expect = (0..n)
                .filter(|&i| {
                    let row = &v[i * c..(i + 1) * c];
                    let mine = row[targets[i] as usize];
                    row.iter().filter(|&&x| x > mine).count() < k
                })
                .count();
            assert_eq!(got[ki], expect, "k = {k}");
        }
        assert_eq!(got[3], n);
        assert_eq!(top1_correct(&logits, &t).unwrap(), got[0]);
        assert_eq!(top5_correct(&logits, &t).unwrap(), got[2]);
        assert!(topk_correct(&logits, &t.reshape_to(&[n, 1]).unwrap(), &[1]).unwrap_err().to_string().contains("topk"));
        let bad = Tensor::from_vec(vec![7i64; n], &[n]).unwrap();
        assert!(topk_correct(&logits, &bad, &[1]).unwrap_err().to_string().contains("target 7"));
    }
}
