//! A small training run: a CIFAR-style ResNet-8 on 512 MNIST images reaches at least 90% train
//! accuracy in a few epochs. The images come from `$LAMINA_DATA/mnist` or `../shared/data/mnist`;
//! when neither exists the test trains on generated images (class-dependent blobs) and says so.

use std::path::PathBuf;

use autograd::backends::CpuStorage;
use autograd::{Device, Tensor};
use datasets::{open, DataOptions, Split};
use layers::loss::{cross_entropy, CrossEntropyOptions};
use layers::metrics::top1_correct;
use layers::optim::{split_weight_decay, Optimizer, Sgd, SgdOptions};
use layers::{models, Mode, ModuleExt};

const N: usize = 512;

fn mnist_dir() -> Option<PathBuf> {
    let from_env = std::env::var_os("LAMINA_DATA").map(|d| PathBuf::from(d).join("mnist"));
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist");
    [from_env, Some(shared)].into_iter().flatten().find(|d| d.join("train-images-idx3-ubyte.gz").is_file())
}

/// `(images [N, 1, 28, 28] normalized, labels)`.
fn data() -> (Vec<f32>, Vec<i64>) {
    if let Some(dir) = mnist_dir() {
        let ds = open("mnist", Split::Train, &DataOptions::with_dir(dir)).expect("MNIST opens");
        let mut x = Vec::with_capacity(N * 784);
        let mut y = Vec::with_capacity(N);
        for i in 0..N {
            let s = ds.get(i).unwrap();
            x.extend(s.pixels.iter().map(|&p| (p as f32 / 255.0 - 0.1307) / 0.3081));
            y.push(s.label);
        }
        (x, y)
    } else {
        eprintln!("train_small: no MNIST under $LAMINA_DATA or ../shared/data; using generated images");
        let mut x = vec![0f32; N * 784];
        let y: Vec<i64> = (0..N as i64).map(|i| i % 10).collect();
        for (i, &c) in y.iter().enumerate() {
            let (cy, cx) = (4 + (c as usize % 5) * 5, 6 + (c as usize / 5) * 14);
            for r in 0..28 {
                for q in 0..28 {
                    let d2 = (r as f32 - cy as f32).powi(2) + (q as f32 - cx as f32).powi(2);
                    let noise = ((i * 784 + r * 28 + q) as f32 * 0.618).fract() - 0.5;
                    x[i * 784 + r * 28 + q] = (-d2 / 8.0).exp() * 2.0 + 0.3 * noise;
                }
            }
        }
        (x, y)
    }
}

#[test]
fn resnet8_fits_512_mnist_images() {
    let (x, y) = data();
    let model = models::build("resnet8", 10, 1, 0).unwrap();
    let groups = split_weight_decay(model.named_parameters(), 5e-4);
    let mut opt = Sgd::new(groups, SgdOptions::new(0.1).momentum(0.9)).unwrap();
    let batch = 64;
    let mut last_acc = 0.0;
    for epoch in 0..8 {
        let mut correct = 0;
        for b in 0..N / batch {
            let xs = x[b * batch * 784..(b + 1) * batch * 784].to_vec();
            let xb = Tensor::from_host(&CpuStorage::F32(xs), &[batch, 1, 28, 28], Device::Cpu).unwrap();
            let yb = Tensor::from_vec(y[b * batch..(b + 1) * batch].to_vec(), &[batch]).unwrap();
            let logits = model.forward(&xb, Mode::Train).unwrap();
            let loss = cross_entropy(&logits, &yb, CrossEntropyOptions::default()).unwrap();
            loss.backward().unwrap();
            opt.step().unwrap();
            opt.zero_grad();
            correct += top1_correct(&logits.detach(), &yb).unwrap();
        }
        last_acc = correct as f64 / N as f64;
        eprintln!("epoch {epoch}: train accuracy {:.1}%", 100.0 * last_acc);
    }
    assert!(last_acc >= 0.9, "train accuracy {last_acc} after 8 epochs");
}
