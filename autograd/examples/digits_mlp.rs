//! A 2-layer MLP trained by hand with the tape on the sklearn 8x8 digits (real data).
//!
//! `cargo run --release -p autograd --example digits_mlp` (data from `$LAMINA_DATA` or
//! `../shared/data`). Plain minibatch SGD written out with `backward` and `set_data`; prints the
//! test accuracy, which should exceed 95%.

use autograd::{no_grad, DType, Result, Tensor};
use datasets::{DataOptions, Split};

/// Pixels scaled to [0, 1] as an `[n, 64]` f32 tensor, labels as one-hot `[n, 10]`.
fn load(
    split: Split,
    opts: &DataOptions,
) -> std::result::Result<(Tensor, Tensor, Vec<i64>), Box<dyn std::error::Error>> {
    let ds = datasets::open("digits", split, opts)?;
    let (mut x, mut onehot, mut labels) = (vec![], vec![], vec![]);
    for i in 0..ds.len() {
        let s = ds.get(i)?;
        x.extend(s.pixels.iter().map(|&p| p as f32 / 16.0));
        onehot.extend((0..10).map(|c| if c == s.label { 1.0f32 } else { 0.0 }));
        labels.push(s.label);
    }
    let n = labels.len();
    Ok((Tensor::from_vec(x, &[n, 64])?, Tensor::from_vec(onehot, &[n, 10])?, labels))
}

/// The rows `rows` of a row-major `[_, width]` host matrix as a tensor.
fn take_rows(data: &[f32], width: usize, rows: &[usize]) -> Result<Tensor> {
    let v: Vec<f32> = rows.iter().flat_map(|&r| data[r * width..(r + 1) * width].iter().copied()).collect();
    Tensor::from_vec(v, &[rows.len(), width])
}

fn forward(x: &Tensor, params: &[Tensor]) -> Result<Tensor> {
    let h = x.matmul(&params[0])?.add(&params[1])?.tanh()?;
    h.matmul(&params[2])?.add(&params[3])
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var_os("LAMINA_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let opts = DataOptions::with_dir(dir);
    let (xtr, ytr, _) = load(Split::Train, &opts)?;
    let (xh, yh) = (xtr.to_vec::<f32>()?, ytr.to_vec::<f32>()?);
    let (xte, _, lte) = load(Split::Test, &opts)?;
    let n = xtr.shape()[0];
    // Xavier-style initialisation from seeded normals.
    let params = vec![
        Tensor::randn(&[64, 64], 1)?.mul_scalar((1.0f64 / 64.0).sqrt())?.requires_grad_(),
        Tensor::zeros(&[64]).requires_grad_(),
        Tensor::randn(&[64, 10], 2)?.mul_scalar((1.0f64 / 64.0).sqrt())?.requires_grad_(),
        Tensor::zeros(&[10]).requires_grad_(),
    ];
    let (batch, lr) = (32, 0.2);
    for epoch in 0..40 {
        // A seeded permutation of the training set each epoch (host side).
        let keys = Tensor::rand(&[n], 100 + epoch)?.to_vec::<f32>()?;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
        let mut total = 0.0;
        for start in (0..n).step_by(batch) {
            let len = batch.min(n - start);
            let rows = &order[start..start + len];
            let (xb, yb) = (take_rows(&xh, 64, rows)?, take_rows(&yh, 10, rows)?);
            // Cross-entropy: -mean(sum(onehot * log_softmax(logits))).
            let loss = forward(&xb, &params)?.log_softmax(1)?.mul(&yb)?.sum_all()?.div_scalar(-(len as f64))?;
            total += loss.item()? * len as f64;
            let grads = loss.backward_with(autograd::BackwardOptions::default())?;
            no_grad(|| -> Result<()> {
                for p in &params {
                    if let Some(g) = grads.get(p) {
                        p.set_data(&p.sub(&g.mul_scalar(lr)?)?)?;
                    }
                }
                Ok(())
            })?;
        }
        if epoch % 10 == 9 {
            println!("epoch {:>2}: train loss {:.4}", epoch + 1, total / n as f64);
        }
    }
    let pred = no_grad(|| forward(&xte, &params))?.argmax(1, false)?.to_dtype(DType::I64)?.to_vec::<i64>()?;
    let correct = pred.iter().zip(&lte).filter(|(a, b)| a == b).count();
    let acc = correct as f64 / lte.len() as f64;
    println!("test accuracy: {:.2}% ({correct}/{})", 100.0 * acc, lte.len());
    if acc < 0.95 {
        return Err(format!("test accuracy {acc:.4} is below 95%").into());
    }
    Ok(())
}
