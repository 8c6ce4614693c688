//! The spec's test list (`../shared/papers/dimensionality-reduced-training.md`, "How to test
//! the engine"), on tiny models:
//!
//! - [`scores`]: SNIP equals `|w·g|` and keeps exactly `k`; GraSP's `Hg` matches a finite
//!   difference of gradients (temperature applied on both sides); SynFlow's per-layer score sums
//!   are equal (to `R`) on a bias-free chain, and 100 rounds end at exactly the target density;
//! - [`masking`]: masked weights stay exactly 0 through SGD steps with momentum and weight decay
//!   and through AdamW steps (and do not without the state masking: the check can fail);
//! - [`dynamic`]: RigL and SET keep per-layer counts, RigL's grown set is the top-k of the dense
//!   gradient among inactive positions, grown weights and their momentum are 0, the drop
//!   fraction follows the cosine and stops at `T_end`; DSR keeps the total;
//! - [`trained`]: through the trainer: IMP rounds prune 20 % of the rest, masks are nested,
//!   rewound weights equal `θ_k` bit for bit, and a lottery run stopped in any phase resumes
//!   bit-identically; RigL's updates on a real run; frozen coordinates equal their
//!   initialization bit for bit after training and regenerate from the seed, with exactly
//!   `(1 − q)·N` trainable;
//! - [`compact`]: the compact checkpoint round trip (pruned and frozen) and its size.

mod compact;
mod dynamic;
mod exec;
mod masking;
mod scores;
mod trained;

use autograd::{DType, Tensor};
use layers::{BatchNorm2d, Conv2d, Conv2dOptions, Flatten, Linear, Module, ReLU, Sequential};

use super::engine::{wrap, Prunable};
use super::masked::Fixed;

/// conv 2->4 (3x3, pad 1, no bias) + BN + ReLU, conv 4->6 (3x3, stride 2, pad 1) + ReLU, linear
/// 54->3, for `[N, 2, 6, 6]` inputs; built from `seed`.
pub(crate) fn conv_net(seed: u64) -> Box<dyn Module> {
    layers::rng::with_seed(seed, || {
        let c1 = Conv2d::new(2, 4, 3, Conv2dOptions::default().padding(1).bias(false)).unwrap();
        let c2 = Conv2d::new(4, 6, 3, Conv2dOptions::default().stride(2).padding(1)).unwrap();
        Box::new(
            Sequential::new()
                .push(c1)
                .push(BatchNorm2d::new(4))
                .push(ReLU)
                .push(c2)
                .push(ReLU)
                .push(Flatten::default())
                .push(Linear::new(54, 3, true)),
        ) as Box<dyn Module>
    })
}

/// [`conv_net`] with every conv and linear layer masked (pruning).
pub(crate) fn masked_conv_net(seed: u64) -> Box<dyn Module> {
    let mut m = conv_net(seed);
    wrap(m.as_mut(), &Prunable::All, &|_, _| Fixed::Zero).unwrap();
    m
}

/// `n` random images for [`conv_net`] and labels in `0..3`.
pub(crate) fn sample(n: usize, seed: u64) -> (Tensor, Tensor) {
    let x = Tensor::randn(&[n, 2, 6, 6], seed).unwrap();
    let y: Vec<i64> = (0..n as i64).map(|i| (i * 7 + seed as i64) % 3).collect();
    (x, Tensor::from_vec(y, &[n]).unwrap())
}

/// The values of `t` as `f64`.
pub(crate) fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

/// The bits of `t` as `f32`.
pub(crate) fn bits(t: &Tensor) -> Vec<u32> {
    t.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap().iter().map(|x| x.to_bits()).collect()
}

/// Asserts two named bit lists are equal, naming the first entry that differs (not printing
/// whole tensors).
pub(crate) fn assert_same_bits(a: &[(String, Vec<u32>)], b: &[(String, Vec<u32>)], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: entry counts");
    for ((na, va), (nb, vb)) in a.iter().zip(b) {
        assert_eq!(na, nb, "{what}: names");
        if let Some(i) = (0..va.len().max(vb.len())).find(|&i| va.get(i) != vb.get(i)) {
            panic!(
                "{what}: {na}[{i}] differs: {:?} vs {:?}",
                va.get(i).map(|x| f32::from_bits(*x)),
                vb.get(i).map(|x| f32::from_bits(*x))
            );
        }
    }
}
